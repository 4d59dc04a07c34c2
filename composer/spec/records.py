"""The spec's records: the frozen dataclasses `composer.spec.schema` parses a graph file into,
one per section, each entry keeping its source location."""
from __future__ import annotations

from dataclasses import dataclass, field

from composer.errors import Loc, SpecError
from composer.spec.yamlio import Locs


@dataclass(frozen=True)
class InputSpec:
    """A tensor drawn fresh every step: a batch from a data `source`, or `noise`."""
    name: str
    kind: str                      # "data" | "noise"
    target: str                    # source name or noise kind
    args: dict = field(default_factory=dict)
    batch: int | None = None
    loc: Loc | None = field(default=None, compare=False)


@dataclass(frozen=True)
class ModuleSpec:
    """A named block instance, or an inline list of blocks run in sequence."""
    name: str
    block: str | None
    args: dict = field(default_factory=dict)
    layers: tuple["ModuleSpec", ...] = ()
    weights: str | None = None     # safetensors file to initialise from
    loc: Loc | None = field(default=None, compare=False)
    spectral_norm: bool = False    # every Conv/ConvTranspose/Linear/Embedding weight divided by its σ


@dataclass(frozen=True)
class FlowSpec:
    """`name: target(input, ..., key=value)`: one named tensor of the DAG, computed by a module
    (`target` names a module; `args` empty) or by a flow op (`target` names an op)."""
    name: str
    target: str
    inputs: tuple[str, ...]
    args: dict = field(default_factory=dict)
    loc: Loc | None = field(default=None, compare=False)


@dataclass(frozen=True)
class ObjectiveSpec:
    """A recipe and its arguments, plus what every objective takes: `weight` (a number or a
    weight schedule scaling all its terms), `every` (evaluate its terms every k steps), `trains`
    (the modules its terms move, in place of the recipe's choice) and `terms` (per-term
    `weight`/`every`/`trains`, e.g. `terms: {D_r1: {every: 16}, G: {trains: [dec]}}`)."""
    name: str
    recipe: str
    args: dict = field(default_factory=dict)
    weight: float | dict = 1.0
    every: int = 1
    terms: dict = field(default_factory=dict)
    trains: tuple[str, ...] | None = None
    loc: Loc | None = field(default=None, compare=False)


@dataclass(frozen=True)
class PhaseSpec:
    """An explicit phase: the terms it minimises and the optimizers it steps on one backward
    (defaults: derived from the phase's name as an optimizer), and inputs it draws afresh."""
    name: str
    terms: tuple[str, ...] | None = None
    optimizers: tuple[str, ...] | None = None
    redraw: tuple[str, ...] = ()
    loc: Loc | None = field(default=None, compare=False)


@dataclass(frozen=True)
class OptimizerSpec:
    name: str
    params: tuple[str, ...]
    type: str = "adam"
    lr: float = 1e-3
    args: dict = field(default_factory=dict)       # betas, weight_decay, ...
    lr_schedule: dict = field(default_factory=dict)
    loc: Loc | None = field(default=None, compare=False)


@dataclass(frozen=True)
class ScheduleSpec:
    order: tuple[str, ...] = ()
    repeat: dict = field(default_factory=dict)     # phase -> times per step (n_critic)
    every: dict = field(default_factory=dict)      # phase -> run every k steps
    refresh_detached: bool = False                 # recompute values read through a cut
    loc: Loc | None = field(default=None, compare=False)


@dataclass(frozen=True)
class TrainSpec:
    steps: int = 1000
    batch: int = 64
    seed: int = 0
    precision: str = "no"
    log_every: int = 50
    sample_every: int = 0
    checkpoint_every: int = 0
    keep_checkpoints: int = 2
    ema: dict = field(default_factory=dict)        # module -> decay
    standing_stats: int = 32                       # batches re-estimating an EMA copy's batch norms
    grad_clip: float | None = None
    threads: int | None = None
    compile: bool | str | dict | None = None       # torch.compile modules or phases (composer/run/fast.py)
    channels_last: bool = False                    # NHWC weights for convolutional modules
    log_with: list = field(default_factory=list)   # Accelerate tracker names (composer/trackers.py)
    callbacks: list = field(default_factory=list)  # registered callback names (composer/run/callbacks.py)
    loc: Loc | None = field(default=None, compare=False)


@dataclass(frozen=True)
class SampleSpec:
    """What every generator shares; `options` are the keys of the generating recipe (e.g. the
    denoising recipe's sampler, steps, spacing, decode, guidance), checked when the graph is built."""
    output: str | list | None = None  # flow tensor(s) to generate (GANs, translation); a list: side by side
    objective: str | None = None   # objective whose recipe generates (diffusion)
    n: int = 64
    nrow: int | None = None
    options: dict = field(default_factory=dict)
    loc: Loc | None = field(default=None, compare=False)


@dataclass(frozen=True)
class EvalSpec:
    metrics: dict = field(default_factory=dict)    # metric name -> options
    n: int = 2500
    reference: str | None = None                   # input whose data is the reference
    loc: Loc | None = field(default=None, compare=False)


@dataclass(frozen=True)
class Spec:
    name: str
    inputs: tuple[InputSpec, ...]
    modules: tuple[ModuleSpec, ...]
    flow: tuple[FlowSpec, ...]
    objectives: tuple[ObjectiveSpec, ...]
    optimizers: tuple[OptimizerSpec, ...]
    schedule: ScheduleSpec
    train: TrainSpec
    sample: SampleSpec
    eval: EvalSpec
    plugins: tuple[str, ...] = ()
    phases: tuple[PhaseSpec, ...] = ()
    file: str = field(default="<spec>", compare=False)
    data: dict = field(default_factory=dict, repr=False, compare=False)
    locs: dict = field(default_factory=dict, repr=False, compare=False)
    allowed: tuple[str, ...] = field(default=(), repr=False, compare=False)   # granted folders (spec/paths.py)

    def loc(self, *path) -> Loc:
        return nearest_loc(self.locs, self.file, path)

    def error(self, message: str, *path) -> SpecError:
        return SpecError(message, ".".join(str(p) for p in path), self.loc(*path))

    def input(self, name: str) -> InputSpec | None:
        return next((i for i in self.inputs if i.name == name), None)

    def batch_of(self, name: str) -> int:
        """Batch size of an input: its own `batch`, else `train.batch`."""
        item = self.input(name)
        return (item.batch if item else None) or self.train.batch


def nearest_loc(locs: Locs, file: str, path: tuple) -> Loc:
    """Location of a key path, falling back to its nearest located parent (the file's start)."""
    for cut in range(len(path), -1, -1):
        if path[:cut] in locs:
            return locs[path[:cut]]
    return Loc(file, 1, 1) if file and not file.startswith("<") else Loc(file)
