"""The IR: a closed set of node kinds. Specs and objectives both lower to these.

The node kinds are `KINDS`, declared here with `Node`; how each is evaluated is one method of
`composer.graph.interpreter.Interpreter` per kind. What a recipe may return (`Expansion`: nodes,
and a `Generator` when it generates) and the base of every computation a node carries (`Op`)
live here too.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, NewType

from composer.errors import Loc


KINDS = ("data", "field", "noise", "call", "fn", "term")
"""The closed set of node kinds; the Interpreter has exactly one method per kind."""

Tensor = NewType("Tensor", str)
"""Annotation of a recipe/metric argument that names one tensor of the graph."""
Tensors = NewType("Tensors", str)
"""Annotation of an argument that names one tensor or a list of them (several module inputs)."""


@dataclass(frozen=True)
class Node:
    """One named value of the DAG.

    data  -- one batch of a data source's primary field (`target` = source name)
    field -- another field of the same draw (`inputs` = the data node, `target` = field name)
    noise -- fresh noise (`target` = noise kind, `args` = its options)
    call  -- `target` module applied to `inputs`
    fn    -- an `Op` applied to `inputs` (flow ops, forward marginal, image pool, penalty)
    term  -- a loss term `op(ctx, *inputs) -> [B]` per-sample values, minimised by `trains`;
             scaled by `weight` (times `schedule(step)` when given), evaluated every `every` steps
    """

    name: str
    kind: str
    target: str = ""
    inputs: tuple[str, ...] = ()
    args: dict = field(default_factory=dict)
    op: Any = None
    modules: tuple[str, ...] = ()          # modules an fn node calls itself
    trains: tuple[str, ...] | None = None  # term: modules it moves (None: all trainable upstream)
    exclude: tuple[str, ...] = ()          # term: modules it never moves
    weight: float = 1.0
    schedule: Any = None                   # term: step -> weight factor (KL warm-up)
    every: int = 1                         # term: evaluated on steps divisible by `every`
    objective: str = ""
    loc: Loc | None = None
    key: str = ""

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"node '{self.name}' has kind '{self.kind}'; the node kinds are {', '.join(KINDS)}")

    @property
    def uses(self) -> tuple[str, ...]:
        """Modules whose parameters this node's own computation reads."""
        return (self.target,) if self.kind == "call" else self.modules

    def describe(self) -> str:
        if self.kind == "call" and self.args.get("method"):
            return f"{self.target}.{self.args['method']}({', '.join(self.inputs)})"
        if self.kind in ("call", "fn", "term"):
            return f"{self.target}({', '.join(self.inputs)})"
        if self.kind == "field":
            return f"{self.inputs[0]}.{self.target}"
        return self.target

    def weight_at(self, step: int) -> float:
        """The term's weight at `step`: weight x schedule(step) x every (lazy regularisation
        keeps its average strength, Karras et al. 2020)."""
        factor = self.schedule(step) if self.schedule is not None else 1.0
        return self.weight * factor * self.every


class Op:
    """The computation of an `fn` or `term` node: `op(ctx, *inputs)`.

    `ctx` is an interpreter Context (modules, RNG, saved state, device, step, phase). On the meta
    device (shape inference) the interpreter calls `meta` instead, which by default runs the op
    itself on meta tensors; an op whose work cannot run there (autograd, RNG on the CPU, Python
    control flow on values) overrides `meta` to return its output's shape.

    An op that differentiates inside the graph with `create_graph=True` (a gradient penalty) sets
    `double_backward = True`: `train.compile: phase` keeps it, and the nodes it differentiates
    through, out of the compiled region (composer/graph/regions.py).
    """

    double_backward = False

    def __call__(self, ctx, *inputs):
        raise NotImplementedError

    def meta(self, ctx, *inputs):
        return self(ctx, *inputs)


class InputGradient(Op):
    """An op on the gradient of `module`'s output (output `output` when it has several) with
    respect to its floating-point inputs: R1 on the critic's real inputs, R2 on its fake ones.

    By itself it calls the module on its inputs with their gradient enabled. When a phase also
    calls the module on the same inputs (the loss term's `D(real)`), the plan makes that one call
    with the inputs' gradient enabled and evaluates `from_output` on its output instead
    (composer/graph/sharing.py): one forward for both, as a careful hand-written loop does it.
    """

    def __init__(self, *, module: str, output: int | None = None):
        self.module, self.output = module, output

    def __call__(self, ctx, *inputs):
        inputs = requires_grad(inputs)
        return self.from_output(ctx, ctx.modules[self.module](*inputs), *inputs)

    def from_output(self, ctx, out, *inputs):
        """The op's value from the module's output `out` on `inputs` (gradient enabled on the
        floating-point ones)."""
        raise NotImplementedError


def requires_grad(inputs) -> tuple:
    """The floating-point inputs detached, with their gradient enabled; the others (class labels)
    as they are."""
    return tuple(x.detach().requires_grad_(True) if x.is_floating_point() else x for x in inputs)


class FlowOp(Op):
    """An op with a name and keyword arguments, printed as `name[k=v](inputs)` in the plan."""

    name = "op"

    def __init__(self, **args):
        self.args = args

    def __repr__(self) -> str:
        shown = ", ".join(f"{k}={v!r}" if isinstance(v, str) else f"{k}={v}" for k, v in self.args.items())
        return f"{self.name}[{shown}]" if shown else self.name


class Loss(Op):
    """A term op around a plain per-sample loss callable `fn(*tensors) -> [B]`."""

    def __init__(self, fn, label: str):
        self.fn, self.label = fn, label

    def __call__(self, ctx, *inputs):
        return self.fn(*inputs)

    def __repr__(self) -> str:
        return self.label


class OptionError(ValueError):
    """A bad `sample:` option value, raised by `Generator.check` with the key it is about."""

    def __init__(self, key: str, message: str):
        super().__init__(message)
        self.key, self.message = key, message


class Generator:
    """How a recipe generates samples (diffusion: a sampler over its denoiser).

    `__call__(gen, n, **options)` returns `[n, ...]` samples; `gen` is a composer.run.generate
    Generation (modules for generation, node shapes, the shared interpreter). The keyword options
    of `__call__` are the `sample:` keys this recipe accepts; `check` validates their values
    when the graph is built (raise OptionError with the bad value and what is allowed)."""

    def __call__(self, gen, n: int, **options):
        raise NotImplementedError

    def check(self, options: dict, modules: set) -> None:
        """Validate sample options at build time; `modules` are the graph's module names."""


@dataclass(frozen=True)
class Expansion:
    """What a recipe returns: its nodes, and its generator when it generates."""

    nodes: tuple[Node, ...]
    generator: Generator | None = None
