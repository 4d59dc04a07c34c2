"""The Python API: everything the CLI does (the CLI is a thin face over these functions).

    spec = load("graphs/dcgan.yaml", ["train.steps=200"])     # or from_dict({...}), GraphBuilder
    plan = validate(spec)                                     # build + compile: every static check
    print(format_table(plan))
    results = train(spec, out="runs/dcgan", callbacks=[MyCallback()])
    run = open_run("runs/dcgan")                              # a Runner at the last checkpoint
    x = sample(run, 64, out="grid.png")                       # also inputs=, labels=, output=, sampler options
    scores = evaluate(run)
    export(run, "onnx", "G.onnx")                             # also torchscript, safetensors (module=)
    entries("blocks")                                         # what a graph file can name

Every function taking a graph accepts a Spec, a Plan (where it makes sense) or a path, and
applies `overrides` (`key.path=value` strings) to any of them.
"""
from __future__ import annotations

from pathlib import Path

import yaml

from composer.spec import schema as spec_module
from composer.spec.builder import GraphBuilder
from composer.errors import ComposerError
from composer.graph.build import Graph, build
from composer.graph.plan import Plan, compile
from composer.graph.view import format_table, to_json
from composer.plugins import register_plugin
from composer.spec.schema import Spec


def load(path: str | Path, overrides=(), allow_paths=()) -> Spec:
    """Read a graph file (with optional `key=value` overrides) into a Spec. The files it names
    (extends, weights, pretrained) must lie under the working directory, the file's folder,
    a folder of `allow_paths` (the CLI's --allow-path) or of $COMPOSER_ALLOW_PATHS; the Spec
    keeps the grant for its later checks."""
    return spec_module.load(path, overrides, allow_paths)


def from_dict(data: dict, overrides=(), name: str = "<python>") -> Spec:
    """A Spec from a plain dict, exactly as if it had been read from YAML (but the files it names
    may lie anywhere: the program that builds it could open them itself; composer/spec/paths.py)."""
    return spec_module.parse(data, None, name, overrides)


def to_yaml(spec: Spec, resolved: bool = False) -> str:
    """The YAML text of a Spec (round trip: from_dict(yaml.safe_load(to_yaml(s))) == s); with
    `resolved`, the resolved spec of `composer validate --print` (extends applied, references
    resolved, defaults filled in)."""
    if resolved:
        from composer.spec.dump import to_yaml as resolved_yaml

        return resolved_yaml(spec)
    return yaml.safe_dump(spec.data, sort_keys=False)


def resolved(source: Spec | str | Path, overrides=()) -> dict:
    """The spec as plain data with `extends:` applied, `${...}` references resolved and every
    default filled in (what `composer validate FILE --print` prints; from_dict(resolved(s)) == s)."""
    from composer.spec.dump import to_data

    return to_data(spec_of(source, overrides))


def spec_of(source: Spec | str | Path, overrides=()) -> Spec:
    """A Spec from a Spec or a path, with overrides applied either way."""
    if isinstance(source, Spec):
        return spec_module.with_overrides(source, overrides)
    return load(source, overrides)


def validate(source: Spec | str | Path, overrides=()) -> Plan:
    """Every check composer makes before training: parse, build (names, references, shapes on the
    meta device) and compile (phases, terms, schedule). Returns the plan; raises SpecError.
    Gradients are enabled meanwhile: shape checks run penalties that differentiate (R1), and a
    caller may be inside `torch.no_grad()`."""
    import torch

    with torch.enable_grad():
        return compile(build(spec_of(source, overrides)))


def plan(source: Spec | str | Path, overrides=()) -> Plan:
    return validate(source, overrides)


def runner(source, overrides=(), cpu: bool | None = None):
    """A Runner ready for `step(feed)` or training (from a Spec, a Plan or a path)."""
    from composer.run.runner import Runner

    if isinstance(source, Plan):
        compiled = plan(source.spec, overrides) if overrides else source
    else:
        compiled = plan(source, overrides)
    return Runner(compiled, cpu=cpu)


def train(source, out: str | Path | None = None, overrides=(), resume: bool = False, quiet: bool = False,
          callbacks=(), cpu: bool | None = None, accept_changes: bool = False, overwrite: bool = False) -> dict:
    """Train to `train.steps` in the run folder `out` (default runs/NAME): logs, sample grids,
    checkpoints, final evaluation; `callbacks` (`composer.run.callbacks.Callback`s) join the default
    callbacks, one named as a default replacing it. A resume refuses a
    spec that changes training unless `accept_changes` (recorded in RUN/changes.jsonl). A folder
    holding a run, or files that are not composer's, is refused unless `resume`, or `overwrite`
    (which deletes a marked run's files only: composer/run/ownership.py)."""
    from composer.run.trainer import Trainer

    run = runner(source, overrides, cpu=cpu)
    folder = out if out is not None else Path("runs") / run.spec.name
    return Trainer(run, folder, resume=resume, quiet=quiet, callbacks=callbacks, accept_changes=accept_changes,
                   overwrite=overwrite).run()


def open_run(run_dir: str | Path, overrides=(), cpu: bool | None = None, allow_paths=()):
    """A Runner restored from a run folder's spec.yaml and latest checkpoint (the plugins the
    spec names are loaded again; `allow_paths` as for load)."""
    from composer.run import checkpoint
    from composer.run.folder import RunFolder

    folder = RunFolder(run_dir).require()
    if checkpoint.latest(folder.root) is None:
        raise ComposerError(f"{folder.root} has no checkpoint yet")
    run = runner(load(folder.spec, overrides, allow_paths), cpu=cpu)
    checkpoint.load_latest(run, folder.root, resume=False)
    return run


def sample(run, n: int | None = None, *, output: str | list | None = None, inputs: dict | None = None,
           labels: dict | None = None, seed: int = 0, out: str | Path | None = None, **options):
    """Generate from a Runner (EMA weights where kept): `n` samples (default `sample.n`, or the
    length of fed `inputs`), of `output` (default the spec's), with graph tensors fed from
    `inputs` ({name: tensor}) and class labels from `labels` ({name: int or list of ints, tiled
    to n}), and the generating recipe's sample `options` (sampler=, steps=, guidance=, ...).
    With `out` ending in .png (a grid, or a scatter for 2-D points) or .npy, also writes it."""
    import torch

    from composer.run.generate import generate

    feed = dict(inputs or {})
    n = n or (min(len(v) for v in feed.values()) if feed else run.spec.sample.n)
    if not isinstance(n, int) or n < 1:
        raise ComposerError(f"the number of samples must be a positive integer, got {n!r}")
    feed.update({name: tile_labels(values, n) for name, values in (labels or {}).items()})
    samples = generate(run, n, output=output, inputs=feed, generator=torch.Generator().manual_seed(seed), **options)
    if out is not None:
        write_samples(run, samples, Path(out))
    return samples


def tile_labels(values, n: int):
    """Class labels for n samples: an int, or a list repeated to length n."""
    import torch

    values = [values] if isinstance(values, int) else list(values)
    if not values or not all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        raise ComposerError(f"labels must be integers, got {values!r}")
    return torch.tensor(values, dtype=torch.int64).repeat(n // len(values) + 1)[:n]


def write_samples(run, samples, out: Path) -> Path:
    """`.npy`: the raw samples; `.png`: an image grid or a 2-D scatter."""
    import numpy as np

    from composer.run.grids import save_grid_or_scatter

    if out.suffix not in (".png", ".npy"):
        raise ComposerError(f"{out}: expected a .png or .npy file")
    if out.parent.exists() and not out.parent.is_dir():
        raise ComposerError(f"{out}: {out.parent} is not a folder")
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix == ".npy":
        np.save(out, samples.numpy())
        return out
    return save_grid_or_scatter(run, samples, out)


def read_input(run, name: str, path: str | Path):
    """A data input's values from files, to feed `sample(inputs=...)`: an image folder or image
    (resized to the input's shape; transparency on the input's `background:`) or a .npy array."""
    import numpy as np
    import torch

    from composer.data.images import load_images

    nodes = run.graph.nodes
    if name not in nodes or nodes[name].kind not in ("data", "field"):
        inputs = [n for n, node in nodes.items() if node.kind in ("data", "field")]
        raise ComposerError(f"--input {name}: not a data input or field of the graph (expected one of {inputs})")
    file = Path(path)
    if not file.exists():
        raise ComposerError(f"--input {name}: no such file or folder: {file}")
    if file.suffix == ".npy":
        return torch.from_numpy(np.load(file, allow_pickle=False))
    shape, source = run.graph.shapes[name], run.spec.input(name)
    background = source.args.get("background") if source is not None else None
    return load_images(file, size=shape[-1], channels=shape[0], background=background)


def export(run, format: str, out: str | Path, *, node: str | None = None, module: str | None = None,
           ema: bool = True, overrides=()) -> list[Path]:
    """Write a trained run (a Runner or a run folder) for use without composer; returns the files.
    `format`: "onnx" or "torchscript" (the generating flow up to `sample.output` or `node`, or one
    `module` alone; PATH plus a PATH.json sidecar naming the inputs), "safetensors" (one `module`'s
    weights plus its block description) or "diffusers" (a DDPMPipeline folder `out`, from a run whose
    denoiser is a diffusers.UNet2DModel).
    EMA weights where kept unless `ema=False`."""
    from composer.run.export import export as write

    runner = open_run(run, overrides, cpu=True) if isinstance(run, (str, Path)) else run
    return write(runner, format, out, node=node, module=module, ema=ema)


def load_module(source, name: str | None = None, ema: bool = True, overrides=()):
    """A plain nn.Module in eval mode: module `name` of a run (a Runner or a run folder; EMA
    weights where kept unless `ema=False`), or the module of a file written by
    `export(..., "safetensors", ...)` (built from its block and keyword arguments, weights loaded strictly)."""
    from composer.run.module_file import load_module as build

    if isinstance(source, (str, Path)) and Path(source).is_dir():
        source = open_run(source, overrides, cpu=True)
    return build(source, name, ema)


def evaluate(run, n: int | None = None) -> dict:
    """The metrics the graph declares (`eval.metrics`), on fresh samples."""
    from composer.run.evaluate import evaluate as run_metrics

    return run_metrics(run, n)


def entries(kind: str | None = None) -> dict:
    """What a graph file can name: {kind: [{name, doc, arguments, origin}]} for every registry
    (installed plugins included), or the list of one kind."""
    from composer import plugins, registry

    plugins.load_installed()
    if kind is not None:
        return registry.get(kind).describe()
    return {k: registry.get(k).describe() for k in registry.KINDS}


def reference(kinds: list | None = None, plugins: bool = True) -> str:
    """The reference page in Markdown: every registry entry with its arguments and one-line doc,
    installed plugins' entries too unless `plugins=False` (docs/reference.md is
    `composer list --markdown` without plugins)."""
    from composer import registry

    listing = {kind: [e for e in entries(kind) if plugins or e["origin"] == "composer"]
               for kind in (kinds or list(registry.KINDS))}
    lines = ["# Reference: what a graph file can name", "",
             "Generated by `composer list --markdown` from the registries (do not edit by hand; "
             "tests/test_reference_doc.py checks it is current). Arguments are the YAML keys.", ""]
    for kind, items in listing.items():
        lines += [f"## {kind}", "", "| name | arguments | what |", "|---|---|---|"]
        for item in items:
            arguments = ", ".join(f"`{a['name']}`" + ("" if a["default"] is None else f"={a['default']}")
                                  for a in item["arguments"])
            doc = item["doc"].replace("|", "\\|")
            lines.append(f"| `{item['name']}` | {arguments or '-'} | {doc} |")
        lines.append("")
    return "\n".join(lines)


def parse_labels(text: str) -> list[int]:
    """Class labels written as `3`, `0,1,2` or a range `0:10` (what `composer sample --labels` takes)."""
    try:
        if ":" in text:
            start, stop = text.split(":", 1)
            return list(range(int(start), int(stop)))
        return [int(v) for v in text.split(",")]
    except ValueError:
        raise ComposerError(f"labels: expected integers like 3, 0,1,2 or 0:10, got '{text}'") from None


def draw(source, out: str | Path | None = None, overrides=()):
    """The compiled graph drawn one panel per phase: the DOT text, or with `out` (.dot, .svg, .png)
    the files written."""
    from composer.graph.draw import to_dot, write

    compiled = source if isinstance(source, Plan) else plan(source, overrides)
    return to_dot(compiled) if out is None else write(compiled, out)


def diff(a, b, overrides=()) -> list[str]:
    """What differs between two graphs, in sentences: written keys and the compiled plans."""
    from composer.graph.diff import diff as diff_plans

    return diff_plans(*(x if isinstance(x, Plan) else plan(x, overrides) for x in (a, b)))


def runs(folder: str | Path = "runs", sort: str | None = None, descending: bool = False) -> list[dict]:
    """One row per run folder under `folder`: graph, status, steps, time, final losses, eval metrics."""
    from composer.run.runs import collect

    return collect(folder, sort, descending)


def plot(run_dir: str | Path, out: str | Path | None = None) -> Path:
    """The loss curves of a run, one panel per phase (default RUN/loss.png); needs matplotlib."""
    from composer.run.plots import plot_run

    return plot_run(run_dir, out)


def sweep(file: str | Path, grid=(), seeds: int = 1, out: str | Path | None = None, jobs: int = 1, overrides=(),
          first_seed: int = 0, metric: str | None = None, search=(), trials: int | None = None,
          direction: str | None = None, storage: str | None = None, study: str | None = None,
          quiet: bool = False) -> dict:
    """Train a graph file over settings x seeds, each trial its own `composer run` process (up to
    `jobs` at once), and write OUT/sweep.json, sweep.md (mean ± s.e. over seeds per setting) and
    sweep.png. `grid`: {key: [values]} or ["KEY=[a, b]", ...]; or an Optuna search with
    `trials`, `search` ({key: (kind, args)} or ["KEY=float:LOW:HIGH[:log]", ...]), `metric` and
    `direction`, its study in `storage` (default sqlite in OUT). A rerun resumes."""
    from composer.run import search as searching
    from composer.run import sweep as sweeping

    progress = (lambda line: None) if quiet else print
    if trials is None:
        if search:
            raise ComposerError("a search space (--search) needs --trials: how many settings Optuna tries")
        grid = grid if isinstance(grid, dict) else sweeping.parse_grid(list(grid))
        return sweeping.run_sweep(file, grid, seeds, out, jobs, overrides, first_seed, metric, progress)
    if grid:
        raise ComposerError("--grid and --trials do not mix: a grid sweep tries every setting, a search --trials of them")
    if not search or metric is None or direction is None:
        raise ComposerError("an Optuna search (--trials) needs --search KEY=..., --metric NAME and "
                            "--direction minimize|maximize")
    space = search if isinstance(search, dict) else searching.parse_space(list(search))
    return searching.run_search(file, space, trials, metric, direction, seeds, out, jobs, overrides, first_seed,
                                storage, study, progress)


__all__ = ["Graph", "GraphBuilder", "Plan", "Spec", "build", "compile", "diff", "draw", "entries", "evaluate",
           "export", "format_table", "from_dict", "load", "load_module", "open_run", "parse_labels", "plan", "plot",
           "read_input", "reference", "register_plugin", "runner", "runs", "sample", "spec_of", "sweep", "to_json",
           "to_yaml", "train", "validate", "write_samples"]
