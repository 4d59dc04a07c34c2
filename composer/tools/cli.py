"""`composer VERB ...`: one thin face over composer.api. Exit codes: 0 ok, 2 bad spec or arguments,
1 other user errors (missing files, bad run folders; `diff`: the files differ), 3 non-finite loss,
130 interrupted.

Each verb is its argument declaration and its handler side by side, and one line of `VERBS`; the
work is done by an `api` function, so the Python API covers everything the CLI does."""
from __future__ import annotations

import argparse
import json
import os
import sys
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Callable

from composer.errors import ComposerError, SpecError


@dataclass(frozen=True)
class Verb:
    help: str
    arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]


def main(argv=None) -> int:
    parser = _parser()
    args, rest = parser.parse_known_args(argv)
    unknown = [r for r in rest if "=" not in r or r.startswith("-")]
    if unknown:
        parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    args.overrides = [r for r in rest if r not in unknown]
    try:
        with _granted(getattr(args, "allow_path", None) or ()):
            return VERBS[args.command].run(args)
    except SpecError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except ComposerError as err:
        from composer.run.runner import NonFiniteLoss

        print(f"error: {err}", file=sys.stderr)
        return 3 if isinstance(err, NonFiniteLoss) else 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:      # `composer plan FILE | head`: the reader left; not an error
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="composer", description=__doc__.split(".")[0],
                                     epilog="Any KEY=VALUE argument overrides the graph file (values parse as YAML).")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, verb in VERBS.items():
        p = sub.add_parser(name, help=verb.help)
        verb.arguments(p)
        if name in READS_GRAPHS:
            p.add_argument("--allow-path", action="append", default=[], metavar="DIR",
                           help="let the graph file read files under DIR (extends, weights, pretrained) although "
                                "outside the working directory and its own folder; repeatable")
    return parser


@contextmanager
def _granted(folders):
    """`--allow-path DIR`: DIR joins $COMPOSER_ALLOW_PATHS for this command and the processes it
    starts (sweep trials), as if the user had exported it (composer/spec/paths.py)."""
    from composer.spec.paths import ENV

    before = os.environ.get(ENV)
    if folders:
        os.environ[ENV] = os.pathsep.join([*(os.path.abspath(f) for f in folders), *filter(None, [before])])
    try:
        yield
    finally:
        if folders and before is None:
            del os.environ[ENV]
        elif folders:
            os.environ[ENV] = before


# ------------------------------------------------------------------ graphs
def validate_arguments(p) -> None:
    p.add_argument("files", nargs="+", help="graph files, then optional key=value overrides")
    p.add_argument("--print", action="store_true", dest="print_spec",
                   help="print the resolved spec as YAML: extends applied, ${...} references resolved, "
                   "defaults filled in")


def validate(args) -> int:
    from composer import api

    files = [i for i in args.files if "=" not in i]
    overrides = [i for i in args.files if "=" in i] + args.overrides
    for file in files:
        compiled = api.validate(file, overrides)
        if args.print_spec:
            text = api.to_yaml(compiled.spec, resolved=True)
            print(("" if len(files) == 1 else f"--- # {file}\n") + text, end="")
            continue
        graph = compiled.graph
        total = sum(graph.param_counts.values())
        print(f"{file}: ok ({len(graph.nodes)} nodes, {len(graph.param_counts)} modules, {total:,} parameters, "
              f"{len(compiled.phases)} phase(s))")
    return 0


def plan_arguments(p) -> None:
    p.add_argument("file")
    p.add_argument("--json", action="store_true", help="print the plan as JSON")


def plan(args) -> int:
    from composer import api

    compiled = api.plan(args.file, args.overrides)
    print(json.dumps(api.to_json(compiled), indent=2) if args.json else api.format_table(compiled))
    return 0


def graph_arguments(p) -> None:
    p.add_argument("file")
    p.add_argument("-o", "--output", default=None, help="OUT.dot, OUT.svg or OUT.png (an image gets OUT.dot "
                   "beside it); default: the DOT text on stdout")


def graph(args) -> int:
    from composer import api

    drawn = api.draw(args.file, args.output, args.overrides)
    if args.output is None:
        sys.stdout.write(drawn)
    else:
        print("wrote " + ", ".join(str(p) for p in drawn))
    return 0


def diff_arguments(p) -> None:
    p.add_argument("a")
    p.add_argument("b")


def diff(args) -> int:
    """Exit 0 when the files compile to the same thing, 1 when they differ."""
    from composer import api

    lines = api.diff(args.a, args.b, args.overrides)
    if not lines:
        print(f"{args.a} and {args.b}: no differences")
        return 0
    print(f"{args.a} -> {args.b}: {len(lines)} difference(s)")
    print("\n".join("  " + line for line in lines))
    return 1


def list_arguments(p) -> None:
    p.add_argument("kind", nargs="?", default=None, help="one registry (blocks, recipes, ops, sources, noise, "
                   "samplers, noise_schedules, metrics, optimizers, lr_schedules, weight_schedules, losses, penalties, weightings, callbacks)")
    p.add_argument("--json", action="store_true")
    p.add_argument("--markdown", action="store_true", help="the reference page (docs/reference.md is made with it)")


def list_entries(args) -> int:
    from composer import api

    if args.markdown:
        print(api.reference([args.kind] if args.kind else None))
        return 0
    listing = {args.kind: api.entries(args.kind)} if args.kind else api.entries()
    if args.json:
        print(json.dumps(listing if not args.kind else listing[args.kind], indent=2))
        return 0
    for kind, items in listing.items():
        print(f"{kind}:")
        for item in items:
            arguments = ", ".join(a["name"] + ("" if a["default"] is None else f"={a['default']}")
                                  for a in item["arguments"])
            origin = "" if item["origin"] == "composer" else f"  [{item['origin']}]"
            print(f"  {item['name']}({arguments}){origin}")
            if item["doc"]:
                print(f"      {item['doc']}")
    return 0


# ------------------------------------------------------------------ runs
def run_arguments(p) -> None:
    p.add_argument("file")
    p.add_argument("--out", default=None, help="run folder (default runs/NAME): new, empty or a composer run folder")
    p.add_argument("--resume", action="store_true", help="continue from the run folder's last checkpoint")
    p.add_argument("--accept-changes", action="store_true",
                   help="with --resume: continue although the spec changed (e.g. more steps, a new lr); recorded")
    p.add_argument("--overwrite", action="store_true",
                   help="replace the run in --out: deletes composer's files there (a folder composer marked as "
                        "its own only; other files are kept) and trains afresh")
    p.add_argument("--cpu", action="store_true", help="force the CPU even where a GPU exists")


def run(args) -> int:
    from composer import api
    from composer.run.ownership import RunFolderRefused

    try:
        api.train(args.file, args.out, args.overrides, resume=args.resume, cpu=args.cpu or None,
                  accept_changes=args.accept_changes, overwrite=args.overwrite)
    except RunFolderRefused as err:     # --out is a bad argument: exit 2
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


def sample_arguments(p) -> None:
    p.add_argument("run_dir")
    p.add_argument("-n", type=int, default=None, help="number of samples")
    p.add_argument("-o", "--output", required=True, help="OUT.png (grid) or OUT.npy (raw samples [N, ...])")
    p.add_argument("--input", action="append", default=[], metavar="NAME=PATH",
                   help="feed a data input from an image folder, an image or a .npy file (translation)")
    p.add_argument("--labels", action="append", default=[], metavar="NAME=LABELS",
                   help="class labels for a graph tensor (3, 0,1,2 or 0:10; repeated to -n): conditional generation")
    p.add_argument("--node", default=None, help="flow tensor to output (default sample.output)")
    p.add_argument("--seed", type=int, default=0)


def sample(args) -> int:
    from composer import api

    if args.n is not None and args.n < 1:
        raise SpecError(f"-n {args.n}: the number of samples must be a positive integer")
    run = api.open_run(args.run_dir, args.overrides)
    feed = {name: api.read_input(run, name, path) for name, path in (_pair("--input", i) for i in args.input)}
    labels = {name: _labels(text) for name, text in (_pair("--labels", i) for i in args.labels)}
    samples = api.sample(run, args.n, output=args.node, inputs=feed, labels=labels, seed=args.seed, out=args.output)
    print(f"wrote {args.output} ({tuple(samples.shape)})")
    return 0


def _pair(flag: str, text: str) -> tuple[str, str]:
    if "=" not in text:
        raise SpecError(f"{flag} {text}: expected NAME=VALUE")
    name, value = text.split("=", 1)
    return name, value


def _labels(text: str) -> list[int]:
    from composer import api

    try:
        return api.parse_labels(text)
    except ComposerError as err:
        raise SpecError(f"--{err}") from None


def eval_arguments(p) -> None:
    p.add_argument("run_dir")
    p.add_argument("--json", action="store_true")


def evaluate(args) -> int:
    from composer import api

    results = api.evaluate(api.open_run(args.run_dir, args.overrides))
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        for key, value in results.items():
            print(f"{key:32s} {value}")
    return 0


def runs_arguments(p) -> None:
    p.add_argument("dir", nargs="?", default="runs")
    p.add_argument("--sort", default=None, metavar="COLUMN", help="steps, time, a loss term, or eval.METRIC")
    p.add_argument("--desc", action="store_true", help="sort in descending order")
    p.add_argument("--columns", default=None, metavar="PATTERNS",
                   help="comma-separated column patterns, e.g. 'gan.*,eval.digits.*' (default: losses and the "
                        "first three metrics of each eval metric)")
    p.add_argument("--json", action="store_true")


def runs(args) -> int:
    from composer import api
    from composer.run.runs import format_table, jsonable, shown_columns

    rows = api.runs(args.dir, args.sort, args.desc)
    if args.json:
        print(json.dumps(jsonable(rows), indent=2, allow_nan=False))
    else:
        patterns = [p for p in (args.columns or "").split(",") if p]
        print(format_table(rows, shown_columns(rows, patterns, args.sort)) if rows else f"no runs under {args.dir}")
    return 0


def sweep_arguments(p) -> None:
    p.add_argument("file")
    p.add_argument("--grid", action="append", default=[], metavar="KEY=[A,B]",
                   help="a setting to vary (values as YAML); several --grid: every combination")
    p.add_argument("--seeds", type=int, default=1, help="train seeds FIRST..FIRST+N-1 per setting (default 1)")
    p.add_argument("--first-seed", type=int, default=0)
    p.add_argument("--jobs", type=int, default=1, help="trials trained at once, each its own process")
    p.add_argument("--out", default=None, help="sweep folder (default sweeps/NAME)")
    p.add_argument("--metric", default=None, help="the eval metric shown and plotted (default: all; a search's objective)")
    p.add_argument("--trials", type=int, default=None, help="an Optuna search of this many settings instead of a grid")
    p.add_argument("--search", action="append", default=[], metavar="KEY=SPACE",
                   help="float:LOW:HIGH[:log], int:LOW:HIGH[:log] or choice:[A,B] (with --trials)")
    p.add_argument("--direction", choices=("minimize", "maximize"), default=None, help="with --trials")
    p.add_argument("--storage", default=None, help="Optuna storage URL (default sqlite:///OUT/optuna.db)")
    p.add_argument("--study", default=None, help="Optuna study name (default: the file's name)")


def sweep(args) -> int:
    from composer import api

    result = api.sweep(args.file, args.grid, args.seeds, args.out, args.jobs, args.overrides, args.first_seed,
                       args.metric, args.search, args.trials, args.direction, args.storage, args.study)
    from composer.run.sweep import report_table

    print(report_table(result["settings"], [args.metric] if args.metric else result["metrics"]))
    if "best" in result:
        print(f"best: {result['best']['setting']} -> {result['best']['value']:.4g}")
    return 0


def plot_arguments(p) -> None:
    p.add_argument("run_dir")
    p.add_argument("-o", "--output", default=None, help="OUT.png (default RUN/loss.png)")


def plot(args) -> int:
    from composer import api

    print(f"wrote {api.plot(args.run_dir, args.output)}")
    return 0


def export_arguments(p) -> None:
    p.add_argument("run_dir")
    p.add_argument("--format", required=True, help="onnx, torchscript, safetensors or diffusers")
    p.add_argument("-o", "--output", required=True,
                   help="the file to write (PATH.json is written beside it); diffusers: the pipeline folder")
    p.add_argument("--node", default=None, help="onnx/torchscript: flow tensor to output (default sample.output)")
    p.add_argument("--module", default=None, help="one module alone (safetensors: required)")
    p.add_argument("--ema", action=argparse.BooleanOptionalAction, default=True,
                   help="EMA weights where kept (default); --no-ema: the trained weights")


def export(args) -> int:
    from composer import api

    files = api.export(args.run_dir, args.format, args.output, node=args.node, module=args.module,
                       ema=args.ema, overrides=args.overrides)
    print("wrote " + ", ".join(str(f) for f in files))
    return 0


READS_GRAPHS = ("validate", "plan", "run", "sample", "export", "eval", "graph", "diff", "sweep")  # get --allow-path
VERBS = {   # name -> what `composer --help` says, its arguments, its handler (in `composer --help` order)
    "validate": Verb("parse, build and shape-check graph files", validate_arguments, validate),
    "plan": Verb("print the compiled update plan", plan_arguments, plan),
    "run": Verb("train a graph", run_arguments, run),
    "sample": Verb("generate from a trained run", sample_arguments, sample),
    "export": Verb("write a run's generator (ONNX, TorchScript) or a module (safetensors) for use without composer",
                   export_arguments, export),
    "eval": Verb("compute the graph's declared metrics on fresh samples", eval_arguments, evaluate),
    "list": Verb("what a graph file can name: blocks, recipes, ops, sources, ...", list_arguments, list_entries),
    "graph": Verb("draw the compiled graph, one panel per phase (DOT, SVG or PNG)", graph_arguments, graph),
    "diff": Verb("what differs between two graph files and their compiled plans", diff_arguments, diff),
    "runs": Verb("a table of the run folders under DIR", runs_arguments, runs),
    "sweep": Verb("train a graph over settings x seeds (grid or Optuna), tabulate its eval metrics",
                  sweep_arguments, sweep),
    "plot": Verb("loss curves of a run per phase (PNG; needs composer-graphs[plots])", plot_arguments, plot),
}
