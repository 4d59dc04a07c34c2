"""Penalties share the critic's forward: one call of the critic serves a loss term and a penalty
on the gradient of the same output (R1's ½‖∇_x D(x)‖² beside the loss term's D(real)).

A penalty op is an `InputGradient` (composer/graph/nodes.py): by itself it calls its module on its
inputs with their gradient enabled. When the same phase calls that module on the same inputs (a
loss term's `D(real)`, computed in this phase rather than reused), the plan computes that call
once, on the inputs with their gradient enabled, and the penalty differentiates its output:

    careful hand-written loop                    plan, phase D
    x = real.detach().requires_grad_(True)       compute  gan.real_logits  D(real)   shared with gan.r1
    logits = D(x)                                ...
    (g,) = autograd.grad(logits.sum(), x,        compute  gan.r1           r1[D](real)  differentiates
                         create_graph=True)                                             gan.real_logits

Shared only where it changes nothing else: the inputs carry no gradient the phase needs (data,
or values cut from another optimizer's modules: enabling an input's gradient detaches it), and
the call comes first in the phase. On a step where the penalty is not due (`every: k`, lazy R1)
the phase has no penalty, so nothing is shared and no input requires grad. A penalty whose inputs
are not the loss term's (WGAN-GP's interpolates) calls the critic itself.
"""
from __future__ import annotations

from dataclasses import replace

from composer.graph.nodes import InputGradient, Node, Op, requires_grad


def shared_calls(graph, phase) -> dict[str, str]:
    """Penalty node -> the call node of `phase` whose output it can differentiate."""
    trains, calls, found = set(phase.trains), {}, {}
    for name in phase.needed:
        node = graph.nodes[name]
        if node.kind == "call" and not node.args:
            calls.setdefault((node.target, _canonical(graph, node.inputs)), name)
        elif node.kind == "fn" and isinstance(node.op, InputGradient):
            call = calls.get((node.op.module, _canonical(graph, node.inputs)))
            if call is not None and not any(graph.upstream[i] & trains for i in node.inputs):
                found[name] = call
    return found


def _canonical(graph, names: tuple[str, ...]) -> tuple[str, ...]:
    """Input names with repeated calls (`same(first)`) resolved to the value they name."""
    out = []
    for name in names:
        node = graph.nodes[name]
        while node.kind == "fn" and node.target == "same":
            name = node.inputs[0]
            node = graph.nodes[name]
        out.append(name)
    return tuple(out)


def runtime_nodes(graph, ops) -> tuple[Node, ...]:
    """The nodes a phase evaluates, from its program `ops` (reuses left out): a shared call reads
    its inputs with their gradient enabled (one `requires_grad` node per input, in front of it),
    and a sharing penalty is evaluated on the call's output and those inputs, calling nothing."""
    calls = {op.via: op.node for op in ops if op.via}
    grad_inputs: dict[str, tuple[str, ...]] = {}
    out = []
    for op in ops:
        if op.action == "reuse":
            continue
        node = graph.nodes[op.node]
        if op.node in calls:
            names = tuple(f"{op.node}:grad:{i}" for i in node.inputs)
            out += [Node(n, "fn", "requires_grad", (i,), op=RequiresGrad()) for n, i in zip(names, node.inputs)]
            grad_inputs[op.node] = names
            node = replace(node, inputs=names)
        elif op.via:
            node = replace(node, inputs=(op.via, *grad_inputs[op.via]), op=FromOutput(node.op), modules=())
        out.append(node)
    return tuple(out)


class RequiresGrad(Op):
    """A floating-point tensor detached with its gradient enabled (other tensors as they are)."""

    def __call__(self, ctx, x):
        return requires_grad((x,))[0]

    def __repr__(self) -> str:
        return "requires_grad"


class FromOutput(Op):
    """An `InputGradient` op evaluated on a call made for it: `(output, *inputs)`."""

    def __init__(self, op: InputGradient):
        self.op = op
        self.double_backward = op.double_backward   # still differentiates with create_graph=True

    def __call__(self, ctx, out, *inputs):
        return self.op.from_output(ctx, out, *inputs)

    def __repr__(self) -> str:
        return f"{self.op!r}, shared"
