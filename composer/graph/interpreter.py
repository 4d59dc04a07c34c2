"""The one interpreter of the graph's nodes, shared by training (composer/run/training.py), shape
inference on the meta device (composer/graph/shapes.py) and generation (composer/run/generate.py).

As torch.fx's `Interpreter`: one method per node kind (`data`, `field`, `noise`, `call`, `fn`,
`term`; the kinds are `composer.graph.nodes.KINDS`), `run_node` evaluating one node from an
environment (node name -> value) and `run` evaluating a sequence of nodes into it. A pass is a
subclass that overrides `run_node` (what to do around each node: feeding, detaching, error
reports) or a kind's method (training reduces loss terms). What else differs between passes is
the `Context`: which modules (training copies, meta copies, EMA copies), where data comes from
(the training streams, zero or meta tensors, held-out data), the RNG and the device. Adding a
node kind is its name in KINDS and one method here.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable, Iterable

import torch
from torch.nn.parallel import DistributedDataParallel

from composer.graph.nodes import KINDS

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
                  back (composer/run/precision.py)
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


class Interpreter:
    """Evaluates nodes in a `Context`: one method per node kind, `method(node, inputs) -> value`.

    `methods` maps each kind to its bound method, looked up once here so that evaluating a node
    costs one dict lookup (the training hot path); an instance may replace an entry to wrap one
    kind (tests/dist/virtual_ranks.py evaluates noise and ops per virtual rank).
    """

    def __init__(self, ctx: Context):
        self.ctx = ctx
        self.methods = {kind: getattr(self, kind) for kind in KINDS}

    def run(self, nodes: Iterable[Node], env: dict) -> dict:
        """Evaluate `nodes` in order, each from the values in `env`, into `env`; return it."""
        for node in nodes:
            env[node.name] = self.run_node(node, env)
        return env

    def run_node(self, node: Node, env: dict):
        """The value of `node` given the values of its inputs in `env`."""
        return self.methods[node.kind](node, [env[i] for i in node.inputs])

    def evaluate(self, node: Node, inputs: list):
        """The value of `node` given its inputs' values."""
        return self.methods[node.kind](node, inputs)

    # ------------------------------------------------------------------ the node kinds
    def data(self, node: Node, inputs: list) -> torch.Tensor:
        """One batch of a data source: its primary field; the draw's other fields are kept for
        the `field` nodes of the same input."""
        ctx = self.ctx
        record = ctx.draw(node.name)
        ctx.records[node.name] = record
        return next(iter(record.values())).to(ctx.device)

    def field(self, node: Node, inputs: list) -> torch.Tensor:
        """Another field (labels, a paired target) of the data input's last draw."""
        ctx, source = self.ctx, node.inputs[0]
        if source not in ctx.records:
            raise KeyError(f"'{node.name}' is a field of '{source}', whose value was given without its "
                           f"fields: give '{node.name}' too")
        return ctx.records[source][node.target].to(ctx.device)

    def noise(self, node: Node, inputs: list) -> torch.Tensor:
        """Fresh noise of the node's kind: shaped like its input, or [batch, *shape]."""
        from composer.data.noise import NOISE

        ctx, draw = self.ctx, NOISE[node.target]
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

    def call(self, node: Node, inputs: list):
        """The node's module applied to its inputs, or the method of it the node names (`vae.encode`:
        called on the module itself, inside any DDP wrapper, which wraps `forward` only)."""
        module = self.ctx.modules[node.target]
        if node.args:
            inner = module.module if isinstance(module, DistributedDataParallel) else module
            return getattr(inner, node.args["method"])(*inputs)
        return module(*inputs)

    def fn(self, node: Node, inputs: list):
        """The node's Op applied to its inputs (its `meta` on the meta device)."""
        return _apply(node, inputs, self.ctx)

    def term(self, node: Node, inputs: list) -> torch.Tensor:
        """A loss term's per-sample values, checked to be of shape [B]."""
        return checked_term(_apply(node, inputs, self.ctx), inputs)


def checked_term(value, inputs: list) -> torch.Tensor:
    """A loss term's value, refused unless of shape [B] (B: its first tensor input's batch)."""
    if not isinstance(value, torch.Tensor) or value.dim() != 1 or value.shape[0] != _batch(inputs):
        shape = list(value.shape) if isinstance(value, torch.Tensor) else type(value).__name__
        raise ValueError(f"a loss term must return one value per sample, shape [B], got {shape}")
    return value


def _apply(node: Node, inputs: list, ctx: Context):
    """An fn or term node's op on its inputs; a term's op is not an `fn` node, so a pass that
    wraps `fn` (virtual ranks) leaves terms whole."""
    return node.op.meta(ctx, *inputs) if ctx.meta else node.op(ctx, *inputs)


def _batch(inputs) -> int:
    for x in inputs:
        if isinstance(x, torch.Tensor):
            return x.shape[0]
    return 0
