"""The spec reference (docs/spec.md): every section and key of a graph file with its type, default
and meaning. Types and defaults come from the spec dataclasses (`dataclasses.fields` of
composer/spec/schema.py), meanings from `KEYS` below, so the page cannot drift: tests/spec/
test_spec_doc.py fails when a field has no entry here, an entry names no field, or the page is
stale. Regenerate with `python -m composer.spec.doc > docs/spec.md`.
"""
from __future__ import annotations

import dataclasses
import re

import yaml

from composer.spec import records
from composer.spec import schema as spec_module

INTERNAL = {"loc", "file", "data", "locs", "allowed"}      # bookkeeping fields, never written in a graph file

# class -> field -> (how the key is written when it is not `field:`, meaning)
KEYS: dict[str, dict[str, tuple[str | None, str]]] = {
    "Spec": {
        "name": (None, "The graph's name and its default run folder `runs/NAME`: letters, digits, `_`, `-`, `.` "
                       "(no path). Not inherited through `extends:`."),
        "plugins": (None, "Installed plugin packages whose blocks, recipes, ops, ... the file names."),
        "inputs": (None, "Tensors drawn fresh every step: batches of a data source, or noise."),
        "modules": (None, "Named networks: a block and its arguments, or an inline list of blocks."),
        "flow": (None, "Named tensors computed from inputs and other tensors: module calls and flow ops."),
        "objectives": (None, "Recipes that expand into loss terms, e.g. `adversarial`, `reconstruction`."),
        "optimizers": (None, "One optimizer per group of modules; each is a phase unless `phases:` says otherwise."),
        "phases": (None, "Optional explicit phases: which terms one backward minimises and which optimizers step."),
        "schedule": (None, "The order of the phases within one training step, repeats and periods."),
        "train": (None, "The training loop: steps, batch, seed, precision, logging, checkpoints, EMA."),
        "sample": (None, "What `composer sample` and the sample grids generate."),
        "eval": (None, "The metrics `composer eval` and the end of a run compute."),
    },
    "InputSpec": {
        "name": ("NAME", "The tensor's name in the flow; a data input also gives fields `NAME.y`, `NAME.target`, ..."),
        "kind": ("`source` / `noise`", "Exactly one: `source: SOURCE` draws batches of a data source, "
                                       "`noise: KIND` draws noise (`composer list sources`, `composer list noise`)."),
        "target": ("(its value)", "The source or noise name, e.g. `digits`, `normal`, `categorical`."),
        "args": ("other keys", "The source's or noise's arguments, e.g. `size: 16`, `shape: [32]`, `classes: 10`."),
        "batch": (None, "This input's batch size; null: `train.batch`."),
    },
    "ModuleSpec": {
        "name": ("NAME", "The module's name: flow entries call it (`G(z)`), optimizers list it in `params`."),
        "block": (None, "A block from the registry (`composer list blocks`); `NAME: BLOCK` alone is short for "
                        "`{block: BLOCK}`."),
        "args": ("other keys", "The block's keyword arguments, checked against its signature before anything "
                               "is built."),
        "layers": ("`NAME: [...]`", "Instead of `block`: a list of blocks (each `{block: ..., args}`) run in "
                                    "sequence."),
        "weights": (None, "A safetensors file to initialise the module from, relative to the folder of the "
                          "file that names it, inside the project (the working directory, that folder, or "
                          "one granted with --allow-path); `validate` checks its tensor names and shapes; "
                          "null: random initialisation."),
        "spectral_norm": (None, "Divide every Conv, ConvTranspose, Linear and Embedding weight of the block "
                                "by its largest singular value, one power iteration per training call "
                                "(Miyato et al. 2018; the final layer included); its u, v are checkpointed, "
                                "and an exported module has W / sigma folded into plain weights."),
    },
    "FlowSpec": {
        "name": ("NAME", "The tensor's name."),
        "target": ("`target(...)`", "A module name or a flow op (`composer list ops`): `fake: G(z)`, "
                                   "`h: cat(x, y, dim=1)`, `mu: stats[0]`; or a mapping `{module: G, inputs: [z]}` / "
                                   "`{op: cat, inputs: [x, y], dim: 1}`."),
        "inputs": ("`(a, b, ...)`", "The tensors passed in order: inputs, flow tensors or data fields (`real.y`)."),
        "args": ("`key=value`", "An op's arguments (constants); a single positional constant is `value` "
                                "(`mul(x, 0.5)`)."),
    },
    "ObjectiveSpec": {
        "name": ("NAME", "The objective's name; its terms are `NAME.TERM` (e.g. `gan.D_real`) in plans and logs."),
        "recipe": (None, "A recipe from the registry (`composer list recipes`)."),
        "args": ("other keys", "The recipe's arguments, e.g. `critic: D`, `real: real`, `fake: fake`, `loss: hinge`."),
        "weight": (None, "Scales every term: a number, or a weight schedule `{type: linear, steps: 2000, ...}` "
                         "(`composer list weight_schedules`)."),
        "every": (None, "Evaluate the terms every k steps with weight x k (lazy regularisation, Karras et al. 2020)."),
        "terms": (None, "Per-term options: `{D_r1: {every: 16}, G: {weight: 0.5, trains: [dec]}}` (keys `weight`, "
                        "`every`, `trains`)."),
        "trains": (None, "The modules every term of the objective moves, in place of the recipe's "
                                      "choice (default: what the recipe says, usually every trainable module the "
                                      "term's gradient reaches; the denoiser alone for `denoising`). A term's own "
                                      "`terms: {G: {trains: [dec]}}` wins."),
    },
    "PhaseSpec": {
        "name": ("NAME", "The phase's name (used by `schedule`)."),
        "terms": (None, "The terms this phase minimises: `objective` or `objective.term`; null: every term moving "
                        "the phase's optimizers' modules."),
        "optimizers": (None, "The optimizers stepped after this phase's backward; null: the optimizer named "
                             "like the phase."),
        "redraw": (None, "Inputs drawn afresh for this phase (e.g. new noise for the generator step)."),
    },
    "OptimizerSpec": {
        "name": ("NAME", "The optimizer's name, and the name of its phase by default."),
        "params": (None, "The modules whose parameters it updates (each parameter has exactly one optimizer)."),
        "type": (None, "An optimizer from the registry (`composer list optimizers`): adam, adamw, sgd, ..."),
        "lr": (None, "The learning rate: a positive number."),
        "args": ("other keys", "The optimizer's keyword arguments, e.g. `betas: [0.5, 0.999]`, `weight_decay`."),
        "lr_schedule": (None, "A learning-rate schedule `{type: cosine, warmup: 500, ...}` "
                              "(`composer list lr_schedules`); empty: constant."),
    },
    "ScheduleSpec": {
        "order": (None, "The phases in the order they run within one step; empty: the order of `optimizers` "
                        "(or `phases`)."),
        "repeat": (None, "Phase -> times it runs per step, e.g. `{D: 5}` (WGAN's n_critic)."),
        "every": (None, "Phase -> run it every k steps only."),
        "refresh_detached": (None, "Recompute values a phase reads through a gradient cut when a module upstream "
                                   "changed since (default: reuse them, as hand-written loops reuse their fakes)."),
    },
    "TrainSpec": {
        "steps": (None, "Training steps (one step runs every phase of the schedule)."),
        "batch": (None, "The batch size of every input without its own `batch`."),
        "seed": (None, "Seeds the modules' initialisation, the data order and the noise."),
        "precision": (None, "Mixed precision through Accelerate: `no`, `bf16`, `fp16` (GPU) or `fp8`."),
        "log_every": (None, "Log the mean of every loss term over the last k steps; 0: never."),
        "sample_every": (None, "Write a sample grid to RUN/samples/ every k steps; 0: only the final grid."),
        "checkpoint_every": (None, "Write a checkpoint every k steps; 0: only at the end."),
        "keep_checkpoints": (None, "How many periodic checkpoints to keep (the newest)."),
        "ema": (None, "Module -> decay of an exponential moving average of its weights, e.g. `{G: 0.999}`; "
                      "sampling and evaluation use the average."),
        "standing_stats": (None, "Batches over which an EMA copy's batch-norm statistics are re-estimated for its "
                                 "own weights before it generates (BigGAN's standing statistics); 0: keep the "
                                 "trained module's running statistics."),
        "grad_clip": (None, "Clip each optimizer's gradient norm to this value; null: no clipping."),
        "threads": (None, "torch's CPU threads; null: torch's default."),
        "compile": (None, "`torch.compile` the training modules: true, or its options "
                          "`{mode, dynamic, fullgraph, backend}`; `phase` (or `{scope: phase, ...}`): each "
                          "phase's forward and loss as one compiled region, its gradient penalties eager; "
                          "null or false: off."),
        "channels_last": (None, "Keep convolutional modules' weights in channels-last (NHWC) memory format."),
        "log_with": (None, "Accelerate trackers to log to besides metrics.jsonl, e.g. `[tensorboard]` "
                           "(files under RUN/<tracker>/)."),
        "callbacks": (None, "Callbacks to run besides the defaults, by name (`composer list callbacks`; plugins "
                            "register more); one named as a default replaces it."),
    },
    "SampleSpec": {
        "output": (None, "The flow tensor to generate (GANs, translation); a list: shown side by side."),
        "objective": (None, "The objective whose recipe generates (diffusion)."),
        "n": (None, "How many samples a grid holds."),
        "nrow": (None, "Images per row of a grid; null: the square root of n, rounded up."),
        "options": ("other keys", "The generating recipe's options (needs `objective`), e.g. `sampler: heun`, "
                                  "`steps: 50`, `guidance: 3`."),
    },
    "EvalSpec": {
        "metrics": (None, "Metric name -> options (`composer list metrics`), e.g. `{digits: {}}`."),
        "n": (None, "How many samples the metrics are computed on."),
        "reference": (None, "The data input whose data is the reference; null: the first data input."),
    },
}

COMPOSING = """\
## Composing files: `extends`, `${...}` references, overrides

**`extends: base.yaml`** (or a list `[a.yaml, b.yaml]`, applied in order, then the file itself)
starts from other graph files (`.yaml`, `.yml`). Paths are relative to the folder of the file
that names them; absolute paths and URLs are refused, and a base (symlinks followed) must lie in
the working directory, the first file's folder or a folder granted with `--allow-path DIR` or
`$COMPOSER_ALLOW_PATHS`, so no graph file reads outside its project. Merging: mappings merge
key by key, recursively; anything else (a list, a number, a string, `null`) replaces the base's
value whole; the value `~delete` removes a key that a base sets (`null` is a value:
`grad_clip: null` sets no clipping). `name` is not inherited: an extending file is its own graph (`runs/<its name>`). Bases may extend
further; each base is complete (its own bases applied) before it is merged, so in
`extends: [a.yaml, b.yaml]` every key b.yaml ends up with wins over a.yaml. A base's `weights:`
paths keep naming the same files. Cycles, missing files and a `~delete` of a key no base sets are
errors. Every file is read with the same safe loader and limits, and errors point at the file and
line that hold the mistake.

```yaml
extends: ../graphs/dcgan.yaml
modules:
  G: {width: 64}                    # merges: G keeps its block and other arguments
optimizers:
  D: {betas: [0.0, 0.99]}           # a list replaces the base's list
train: {ema: ~delete, steps: 2000}  # no EMA
```

**`${section.key}` references** name another key of the same spec (after `extends:` and
overrides): `lr: ${optimizers.D.lr}`, `in_features: ${inputs.z.shape.0}` (a number indexes a
list). A value that is exactly `${...}` takes the referenced value with its type (a number, a
list, a mapping); inside a longer string the reference is replaced by the value's text.
`$${` writes a literal `${`. Inside a flow mapping `{...}` or list `[...]` quote the reference:
`{lr: "${optimizers.D.lr}"}`. Only keys written in the spec can be referenced (not defaults).
Cycles, unknown keys (with the nearest names) and malformed references are errors at the line of
the reference.

**Overrides** (`composer run FILE key.path=value`, `overrides=[...]` in the API) apply after
`extends:` and before references, so `optimizers.D.lr=1e-3` also changes every
`${optimizers.D.lr}`; `key.path=~delete` removes a key. The run folder's `spec.yaml` holds the
resolved spec.

**`composer validate FILE --print`** prints the spec as composer reads it: `extends:` applied,
references resolved, every default below filled in. It parses back to the same spec.
"""


def spec_classes() -> dict[str, type]:
    """Every spec record (composer/spec/records.py), by name."""
    return {name: obj for name, obj in vars(records).items()
            if dataclasses.is_dataclass(obj) and isinstance(obj, type) and obj.__module__ == records.__name__}


def keys_of(cls: type) -> list[dataclasses.Field]:
    """The fields of a spec dataclass that a graph file writes."""
    return [f for f in dataclasses.fields(cls) if f.name not in INTERNAL]


def section_class(field: dataclasses.Field) -> type | None:
    """The dataclass one section of Spec holds (`tuple[InputSpec, ...]` -> InputSpec), else None."""
    match = re.fullmatch(r"(?:tuple\[)?'?(\w+)'?(?:, \.\.\.\])?", str(field.type))
    return spec_classes().get(match.group(1)) if match else None


def type_text(field: dataclasses.Field) -> str:
    """The annotation as a graph file sees it: tuples are YAML lists."""
    text = re.sub(r"tuple\[([^\]]+?), \.\.\.\]", r"list[\1]", str(field.type)).replace("'", "")
    return text


def default_text(field: dataclasses.Field) -> str:
    if field.default is not dataclasses.MISSING:
        value = field.default
    elif field.default_factory is not dataclasses.MISSING:
        value = field.default_factory()
    else:
        return "required"
    value = list(value) if isinstance(value, tuple) else value
    return yaml.safe_dump(value, default_flow_style=True, width=1000).replace("\n...", "").strip()


def markdown() -> str:
    """The page docs/spec.md."""
    lines = ["# Spec reference: the keys of a graph file", "",
             "Generated by `python -m composer.spec.doc > docs/spec.md` from the spec dataclasses in "
             "composer/spec/schema.py (types, defaults) and composer/spec/doc.py (meanings); "
             "tests/spec/test_spec_doc.py checks it is current. What a key can *name* (blocks, recipes, "
             "ops, sources, ...) is in [reference.md](reference.md); a worked example is the "
             "[tutorial](tutorial.md).", "",
             "| section | holds |", "|---|---|"]
    order = {name: i for i, name in enumerate(spec_module.SECTIONS)}
    spec_fields = sorted(keys_of(spec_module.Spec), key=lambda f: order.get(f.name, len(order)))
    lines += [f"| [`{f.name}`](#{f.name}) | {_cell(KEYS['Spec'][f.name][1])} |" for f in spec_fields]
    lines.append("")
    for field in spec_fields:
        lines += _section(field)
    return "\n".join(lines + [COMPOSING])


def _section(field: dataclasses.Field) -> list[str]:
    cls = section_class(field)
    lines = [f"## {field.name}", "", KEYS["Spec"][field.name][1], ""]
    if cls is None:
        default = "the file name" if field.name == "name" else f"`{default_text(field)}`"
        return lines + [f"Type `{type_text(field)}`, default {default}.", ""]
    if "name" in {f.name for f in dataclasses.fields(cls)}:
        lines += [f"A mapping `NAME: entry`; each entry ({cls.__name__}):", ""]
    lines += ["| key | type | default | meaning |", "|---|---|---|---|"]
    for key in keys_of(cls):
        written, meaning = KEYS[cls.__name__][key.name]
        cells = [written or f"`{key.name}`", f"`{type_text(key)}`", f"`{default_text(key)}`", meaning]
        lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    return lines + [""]


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


if __name__ == "__main__":
    print(markdown())
