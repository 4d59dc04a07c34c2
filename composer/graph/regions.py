"""Which of a phase's nodes `train.compile: phase` puts in one compiled region.

A phase's computed nodes run in three parts (composer/run/phase_compile.py runs them):

    before  -- eager: the drawn and fed inputs (data, fields, noise: their RNG stays outside the
               region), nodes off the loss's gradient path (a fake computed for a later phase and
               read here only through a cut edge: its backward is that later phase's), and the
               double-backward nodes (gradient penalties) with what they read and what reads them
    region  -- compiled as one torch.compile region: the rest of the loss's gradient path, its
               terms included; AOTAutograd compiles its backward
    after   -- eager: nodes off the region that read it (none in the shipped graphs)

A double-backward op (`Op.double_backward`: R1, WGAN-GP take `autograd.grad(..., create_graph=True)`)
cannot sit in a region or read one: AOTAutograd has no double backward. A phase whose region
would read a value computed after it, or that has no loss term to compile, is not split (`reason`).
"""
from __future__ import annotations

from dataclasses import dataclass

from composer.graph.nodes import Node

SOURCES = ("data", "field", "noise")


@dataclass(frozen=True)
class Split:
    before: tuple[Node, ...]
    region: tuple[Node, ...]    # empty: the phase is not compiled whole (`reason` says why)
    after: tuple[Node, ...]
    eager: tuple[str, ...]      # double-backward nodes and the nodes tied to them, kept eager
    reason: str = ""

    def describe(self) -> str:
        if not self.region:
            return f"per module ({self.reason})"
        return f"region of {len(self.region)} nodes" + (f", eager: {', '.join(self.eager)}" if self.eager else "")


def split(nodes, cuts, fed=()) -> Split:
    """The parts of a phase's computed `nodes` (in order), given its cut edges and fed names."""
    nodes, cuts, fed = tuple(nodes), frozenset(cuts), frozenset(fed)
    computed = {n.name: n for n in nodes if n.kind not in SOURCES and n.name not in fed}
    tied = _tied(computed, cuts)
    cone = _cone(computed, cuts) - tied
    region = tuple(n for n in nodes if n.name in cone)
    reason = ""
    if not any(n.kind == "term" for n in region):
        reason = "no loss term outside its gradient penalties" if tied else "no loss term"
    reads_region = _downstream(computed, cone) - cone
    if any(i in reads_region for n in region for i in n.inputs):
        reason = "its region would read a value computed after it"
    if reason:
        return Split(nodes, (), (), tuple(n.name for n in nodes if n.name in tied), reason)
    before = tuple(n for n in nodes if n.name not in cone and n.name not in reads_region)
    after = tuple(n for n in nodes if n.name in reads_region)
    return Split(before, region, after, tuple(n.name for n in nodes if n.name in tied))


def _tied(computed: dict, cuts: frozenset) -> set:
    """Double-backward nodes, the computed nodes their gradients reach (uncut inputs, upstream)
    and the nodes that read them."""
    roots = {name for name, n in computed.items() if getattr(n.op, "double_backward", False)}
    return _upstream(computed, cuts, roots) | _downstream(computed, roots)


def _cone(computed: dict, cuts: frozenset) -> set:
    """The computed nodes on the loss terms' gradient path: the terms and their uncut inputs, upstream."""
    return _upstream(computed, cuts, {name for name, n in computed.items() if n.kind == "term"})


def _upstream(computed: dict, cuts: frozenset, roots: set) -> set:
    """`roots` and the computed nodes a gradient from them reaches: their uncut inputs, transitively."""
    found, stack = set(roots), list(roots)
    while stack:
        node = computed[stack.pop()]
        for i in node.inputs:
            if i in computed and (i, node.name) not in cuts and i not in found:
                found.add(i)
                stack.append(i)
    return found


def _downstream(computed: dict, roots) -> set:
    """The computed nodes reading any of `roots`, transitively (the roots included)."""
    found = set(roots)
    for name, node in computed.items():   # nodes are in topological order
        if any(i in found for i in node.inputs):
            found.add(name)
    return found
