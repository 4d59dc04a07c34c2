"""One node evaluator, shared by training (composer/runtime.py), shape inference on the meta
device (composer/shapes.py) and generation (composer/generate.py).

Each node kind is evaluated by one function of `EVALUATE`; what differs between the three
callers is only the `Context`: which modules (training copies, meta copies, EMA copies), where
data comes from (the training streams, empty meta tensors, held-out data), the RNG and the
device. Adding a node kind is one function here and its name in `EVALUATE`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable

import torch

if TYPE_CHECKING:
    from composer.graph.nodes import Node


@dataclass
class Context:
    """What evaluating a node may touch.

    modules  -- name -> nn.Module
    draw     -- input name -> one batch of that data input: {field: tensor}
    batch    -- input name -> its batch size (noise without `like`)
    state    -- node name -> state dict (image pools); saved with checkpoints
    step, phase -- where training is (ops and term schedules may depend on them)
    grad_scale -- fp16: scale outputs by it before torch.autograd.grad, divide the gradients
                  back (composer/precision.py)
    """

    modules: dict
    generator: torch.Generator | None
    device: torch.device
    draw: Callable[[str], dict]
    batch: Callable[[str], int]
    state: dict = field(default_factory=dict)
    step: int = 0
    phase: str | None = None
    records: dict = field(default_factory=dict)   # data input -> the fields of its last draw
    grad_scale: float = 1.0   # fp16: the phase's loss scale, for gradients taken inside the graph

    @property
    def meta(self) -> bool:
        return self.device.type == "meta"

    def state_of(self, name: str) -> dict:
        return self.state.setdefault(name, {})


def evaluate(node: Node, inputs: list, ctx: Context):
    """The value of `node` given its inputs' values."""
    return EVALUATE[node.kind](node, inputs, ctx)


def _data(node: Node, inputs, ctx: Context):
    record = ctx.draw(node.name)
    ctx.records[node.name] = record
    return next(iter(record.values())).to(ctx.device)


def _field(node: Node, inputs, ctx: Context):
    source = node.inputs[0]
    if source not in ctx.records:
        raise KeyError(f"'{node.name}' is a field of '{source}', whose value was given without its "
                       f"fields: give '{node.name}' too")
    return ctx.records[source][node.target].to(ctx.device)


def _noise(node: Node, inputs, ctx: Context):
    from composer.data.noise import NOISE

    draw = NOISE[node.target]
    options = {k: v for k, v in node.args.items() if k not in ("shape", "like")}
    if inputs:
        size, dtype = tuple(inputs[0].shape), inputs[0].dtype
    else:
        size, dtype = (ctx.batch(node.name),) + tuple(node.args.get("shape") or ()), None
    if ctx.meta:   # draw one real sample on the CPU to learn the dtype, then the meta shape
        one = draw((1,) + size[1:], generator=torch.Generator(), **options)
        dtype = dtype if dtype is not None and one.is_floating_point() else one.dtype
        return torch.empty(size, dtype=dtype, device="meta")
    value = draw(size, generator=ctx.generator, **options)
    if dtype is not None and value.is_floating_point():
        value = value.to(dtype)
    return value.to(ctx.device)


def _call(node: Node, inputs, ctx: Context):
    return ctx.modules[node.target](*inputs)


def _fn(node: Node, inputs, ctx: Context):
    return node.op.meta(ctx, *inputs) if ctx.meta else node.op(ctx, *inputs)


def _term(node: Node, inputs, ctx: Context):
    value = _fn(node, inputs, ctx)
    if not isinstance(value, torch.Tensor) or value.dim() != 1 or value.shape[0] != _batch(inputs):
        shape = list(value.shape) if isinstance(value, torch.Tensor) else type(value).__name__
        raise ValueError(f"a loss term must return one value per sample, shape [B], got {shape}")
    return value


def _batch(inputs) -> int:
    first = next((x for x in inputs if isinstance(x, torch.Tensor)), None)
    return first.shape[0] if first is not None else 0


EVALUATE = {
    "data": _data,
    "field": _field,
    "noise": _noise,
    "call": _call,
    "fn": _fn,
    "term": _term,
}
