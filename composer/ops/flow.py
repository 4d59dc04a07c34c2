"""Flow ops: the small, closed set of pure tensor operations a flow entry may apply besides modules.

    h:      cat(x, onehot, dim=1)          concatenate along an axis
    s:      add(a, b)   add(a, 1.0)        sum (tensor or constant); sub, mul, div likewise
    r:      sqrt(a)                        elementwise; exp, log likewise
    c:      stop_gradient(x)               x, with no gradient back to what made it
    std:    exp(mul(logvar, 0.5))  -- no: one op per entry; write  half: mul(logvar, 0.5)
    mu:     h[0]                           element of a multi-output module (or chunk)
    parts:  chunk(h, 2)                    split into equal parts along an axis
    onehot: one_hot(y, num_classes=10)
    maps:   repeat(onehot, pattern="b c -> b c h w", h=16, w=16)     (einops)
    flat:   rearrange(x, pattern="b c h w -> b (c h w)")             (einops)
    z:      reparameterize(mu, logvar)     mu + exp(logvar / 2) * eps, eps ~ N(0, I)
    y_in:   drop_condition(y, p=0.1)       the null condition with probability p (CFG training)
    seen:   diffaugment(real)              DiffAugment: brightness, contrast, shift, cutout (diffaugment.py)

Each op's keyword arguments are exactly what YAML may give (checked against the signature);
its tensors are positional. Shapes are checked on the meta device like blocks, and the plan
shows each op with its arguments.
"""
from __future__ import annotations

import re

import einops
import torch

from composer.graph.nodes import FlowOp, Node
from composer.ops.diffaugment import DiffAugment
from composer.registry import Registry


class Cat(FlowOp):
    """Concatenate tensors along `dim` (1: channels or features)."""

    name = "cat"

    def __init__(self, *, dim: int = 1):
        super().__init__(dim=dim)

    def __call__(self, ctx, *xs):
        return torch.cat(xs, dim=self.args["dim"])


class _Binary(FlowOp):
    def __init__(self, *, value: float | None = None):
        super().__init__(**({} if value is None else {"value": value}))

    def __call__(self, ctx, a, *b):
        other = self.args.get("value")
        if (other is None) == (len(b) != 1):
            raise TypeError(f"{self.name} takes two tensors, or one tensor and a constant: "
                            f"got {1 + len(b)} tensor(s){' and a constant' if other is not None else ''}")
        return self.apply(a, b[0] if b else other)


class Add(_Binary):
    """a + b, or a + value."""

    name = "add"
    apply = staticmethod(torch.add)


class Sub(_Binary):
    """a - b, or a - value."""

    name = "sub"
    apply = staticmethod(torch.sub)


class Mul(_Binary):
    """a * b (elementwise, broadcasting), or a * value."""

    name = "mul"
    apply = staticmethod(torch.mul)


class Div(_Binary):
    """a / b (elementwise, broadcasting), or a / value.

    Example: `div(num, gamma)`"""

    name = "div"
    apply = staticmethod(torch.div)


class _Unary(FlowOp):
    """An elementwise function of one tensor, without arguments."""

    apply = staticmethod(torch.exp)

    def __init__(self):
        super().__init__()

    def __call__(self, ctx, x):
        return self.apply(x)


class Exp(_Unary):
    """exp(x), elementwise."""

    name = "exp"
    apply = staticmethod(torch.exp)


class Log(_Unary):
    """log(x), elementwise (NaN below 0, -inf at 0).

    Example: `log(var)`"""

    name = "log"
    apply = staticmethod(torch.log)


class Sqrt(_Unary):
    """sqrt(x), elementwise (NaN below 0; its gradient is infinite at 0).

    Example: `sqrt(var)`"""

    name = "sqrt"
    apply = staticmethod(torch.sqrt)


class StopGradient(_Unary):
    """x, through which no gradient flows back (`x.detach()`): the compiler treats the modules
    upstream of it as unreachable from any term that reads it, so no phase steps them for it.

    Example: `stop_gradient(feat_x)`"""

    name = "stop_gradient"
    apply = staticmethod(torch.Tensor.detach)


class Same(FlowOp):
    """The value of another node: a module call written twice on the same tensors (a flow entry
    and a recipe both calling `D(fake)`) is computed once, the repeat names the first."""

    name = "same"

    def __call__(self, ctx, x):
        return x


class Index(FlowOp):
    """Element `i` of a multi-output value (a module returning a tuple, `chunk`), or x[:, i] of a
    tensor (per-sample index along its first non-batch axis). Written `h[i]`."""

    name = "index"

    def __init__(self, *, i: int):
        super().__init__(i=i)

    def __call__(self, ctx, x):
        i = self.args["i"]
        if isinstance(x, (tuple, list)):
            if not -len(x) <= i < len(x):
                raise IndexError(f"index {i} out of range for {len(x)} outputs")
            return x[i]
        if x.dim() < 2:
            raise IndexError(f"[{i}] of one tensor of shape {list(x.shape)}: it has no axis to index (a module with "
                             "several outputs returns a tuple; this one returned one tensor)")
        return x[:, i]


_MODULE_OUTPUT = re.compile(r"([A-Za-z_]\w*)(?:\[(-?\d+)\])?")


def module_output(ref: str) -> tuple[str, int | None]:
    """A module a recipe calls, `D`, or one output of a multi-output module, `D[1]` (a critic
    with an auxiliary head: `critic: D[0]`, and the flow reads `D(fake)` -> `[1]`)."""
    match = _MODULE_OUTPUT.fullmatch(ref.strip()) if isinstance(ref, str) else None
    if match is None:
        raise ValueError(f"'{ref}' is not a module: expected a module name, or NAME[i] for output i of a "
                         "module with several outputs")
    return match[1], None if match[2] is None else int(match[2])


def call_output(name: str, ref: str, inputs: tuple[str, ...]) -> list[Node]:
    """The nodes of `name = ref(*inputs)`: one call, or for `D[i]` the call `name.out` and
    output i of it as `name`."""
    module, i = module_output(ref)
    if i is None:
        return [Node(name, "call", module, inputs)]
    return [Node(f"{name}.out", "call", module, inputs),
            Node(name, "fn", "index", (f"{name}.out",), op=Index(i=i))]


class Chunk(FlowOp):
    """Split into `chunks` equal parts along `dim`: a multi-output value, indexed with `h[i]`."""

    name = "chunk"

    def __init__(self, *, value: int | None = None, chunks: int | None = None, dim: int = 1):
        chunks = chunks if chunks is not None else value
        if not isinstance(chunks, int) or chunks < 1:
            raise ValueError(f"chunk needs a positive number of chunks, got {chunks!r}")
        super().__init__(chunks=chunks, dim=dim)

    def __call__(self, ctx, x):
        size = x.shape[self.args["dim"]]
        if size % self.args["chunks"]:
            raise ValueError(f"axis {self.args['dim']} of size {size} does not split into {self.args['chunks']}")
        return tuple(torch.chunk(x, self.args["chunks"], dim=self.args["dim"]))


class OneHot(FlowOp):
    """Integer labels [B] -> float one-hot [B, num_classes]; the null label -1 -> all zeros."""

    name = "one_hot"

    def __init__(self, *, num_classes: int):
        if not isinstance(num_classes, int) or num_classes < 1:
            raise ValueError(f"num_classes must be a positive integer, got {num_classes!r}")
        super().__init__(num_classes=num_classes)

    def __call__(self, ctx, y):
        classes = torch.arange(self.args["num_classes"], device=y.device)
        return (y.long().unsqueeze(-1) == classes).float()


class Rearrange(FlowOp):
    """`einops.rearrange(x, pattern, **axes)`, e.g. pattern "b (c h w) -> b c h w", c=1, h=8, w=8."""

    name = "rearrange"

    def __init__(self, *, pattern: str, **axes: int):
        super().__init__(pattern=pattern, **axes)

    def __call__(self, ctx, x):
        return einops.rearrange(x, **_einops_args(self.args))


class Repeat(FlowOp):
    """`einops.repeat(x, pattern, **axes)`, e.g. labels as maps: "b c -> b c h w", h=16, w=16."""

    name = "repeat"

    def __init__(self, *, pattern: str, **axes: int):
        super().__init__(pattern=pattern, **axes)

    def __call__(self, ctx, x):
        return einops.repeat(x, **_einops_args(self.args))


def _einops_args(args: dict) -> dict:
    return {"pattern": args["pattern"], **{k: v for k, v in args.items() if k != "pattern"}}


class Reparameterize(FlowOp):
    """z = mu + exp(logvar / 2) * eps, eps ~ N(0, I) from the run's generator (Kingma & Welling
    2014): a sample of the diagonal Gaussian that gradients flow through."""

    name = "reparameterize"

    def __init__(self):
        super().__init__()

    def __call__(self, ctx, mu, logvar):
        eps = torch.randn(mu.shape, generator=ctx.generator).to(mu)
        return mu + torch.exp(0.5 * logvar) * eps

    def meta(self, ctx, mu, logvar):
        return torch.empty(torch.broadcast_shapes(mu.shape, logvar.shape), dtype=mu.dtype, device="meta")


class DropCondition(FlowOp):
    """Replace each sample's condition by the null condition with probability `p` (classifier-free
    guidance training, Ho & Salimans 2022): -1 for integer labels, zeros for float conditions."""

    name = "drop_condition"

    def __init__(self, *, p: float = 0.1):
        if not 0 <= p <= 1:
            raise ValueError(f"p must be in [0, 1], got {p!r}")
        super().__init__(p=p)

    def __call__(self, ctx, y):
        drop = torch.rand(y.shape[0], generator=ctx.generator).to(y.device) < self.args["p"]
        drop = drop.reshape((-1,) + (1,) * (y.dim() - 1))
        null = torch.full_like(y, -1) if not y.is_floating_point() else torch.zeros_like(y)
        return torch.where(drop, null, y)

    def meta(self, ctx, y):
        return torch.empty_like(y)


OPS = Registry("op", {
    "cat": Cat,
    "add": Add,
    "sub": Sub,
    "mul": Mul,
    "div": Div,
    "exp": Exp,
    "log": Log,
    "sqrt": Sqrt,
    "stop_gradient": StopGradient,
    "index": Index,
    "chunk": Chunk,
    "one_hot": OneHot,
    "rearrange": Rearrange,
    "repeat": Repeat,
    "reparameterize": Reparameterize,
    "drop_condition": DropCondition,
    "diffaugment": DiffAugment,
})
