"""Graph -> Plan: the scheduler that derives each phase of the update recipe from the DAG and the
term tags, and the static forward program that shares results across phases.

A phase = one optimizer: the loss terms that move its modules, the modules it trains, the modules
it must freeze (on the gradient path but owned by another optimizer), the edges it cuts (values
carrying another optimizer's gradients) and an ordered list of ops. An op either computes a node
or reuses the value an earlier phase of the same round computed, which is allowed only while no
module upstream of it has been stepped since (parameter versions) and it carries the gradients
this phase needs. A value read only through a cut is data to this phase: it is reused even if
stale, as hand-written loops reuse their fakes (set schedule.refresh_detached to recompute).
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

from .errors import SpecError, did_you_mean
from .graph import Graph


@dataclass(frozen=True)
class Op:
    node: str
    action: str            # "compute" | "reuse" | "loss"


@dataclass(frozen=True)
class Phase:
    name: str
    terms: tuple[str, ...]
    trains: tuple[str, ...]
    frozen: tuple[str, ...]
    cuts: tuple[tuple[str, str], ...]
    live: frozenset        # nodes on this phase's gradient path
    needed: tuple[str, ...]  # every node it reads, in topological order
    repeat: int = 1
    every: int = 1


@dataclass(frozen=True, eq=False)
class Plan:
    graph: Graph
    phases: tuple[Phase, ...]

    @property
    def spec(self):
        return self.graph.spec

    def phase(self, name: str) -> Phase:
        return next(p for p in self.phases if p.name == name)

    def rounds(self, active: tuple[str, ...]) -> tuple[tuple[str, ...], ...]:
        """Split one step's active phases into rounds that share freshly drawn inputs: the
        extra repeats of a phase (n_critic) each get their own inputs, the last shares."""
        out, current = [], []
        for name in active:
            for _ in range(self.phase(name).repeat - 1):
                out.append((name,))
            current.append(name)
        return tuple(out) + ((tuple(current),) if current else ())

    def active(self, step: int) -> tuple[str, ...]:
        return tuple(p.name for p in self.phases if step % p.every == 0)

    def program(self, names: tuple[str, ...]) -> tuple[tuple[Op, ...], ...]:
        return self._programs.setdefault(names, simulate(self, names))

    @cached_property
    def _programs(self) -> dict:
        return {}

    def forward_calls(self) -> dict[str, int]:
        """Module calls in one full step (every phase active), counting repeats."""
        calls = {name: 0 for name in self.graph.param_counts}
        for names in self.rounds(tuple(p.name for p in self.phases)):
            for ops in self.program(names):
                for op in ops:
                    if op.action == "compute":
                        for module in self.graph.nodes[op.node].uses:
                            calls[module] += 1
        return calls


def compile(graph: Graph) -> Plan:
    """Derive the phases; raise SpecError if the schedule or the terms cannot be satisfied."""
    spec = graph.spec
    optimizers = [o.name for o in spec.optimizers]
    order = list(spec.schedule.order) or optimizers
    for i, name in enumerate(order):
        if name not in optimizers:
            raise spec.error(f"unknown phase '{name}': phases are named after optimizers"
                             f"{did_you_mean(name, optimizers)}", "schedule", "order", i)
    missing = [o for o in optimizers if o not in order]
    if missing:
        raise spec.error(f"optimizer(s) {', '.join(missing)} missing from the order: every optimizer is a phase",
                         "schedule", "order")
    for key in ("repeat", "every"):
        for name in getattr(spec.schedule, key):
            if name not in order:
                raise spec.error(f"unknown phase '{name}'{did_you_mean(name, order)}", "schedule", key, name)
    phases = tuple(_phase(graph, name) for name in order)
    if not phases:
        raise SpecError("nothing to train: add optimizers and objectives", "optimizers", spec.loc("optimizers"))
    return Plan(graph, phases)


def _phase(graph: Graph, name: str) -> Phase:
    spec = graph.spec
    trains = tuple(m for m, o in graph.owner.items() if o == name)
    terms = tuple(t.name for t in graph.terms if set(graph.term_trains(t)) & set(trains))
    if not terms:
        raise spec.error(f"optimizer '{name}' updates {list(trains)} but no loss term depends on them",
                         "optimizers", name)
    live, needed, cuts = _walk(graph, terms, set(trains))
    frozen = sorted({m for n in live for m in graph.nodes[n].uses if graph.trainable(m) and m not in trains})
    ordered = tuple(n for n in graph.nodes if n in needed)
    return Phase(name, terms, trains, tuple(frozen), tuple(sorted(cuts)), frozenset(live), ordered,
                 spec.schedule.repeat.get(name, 1), spec.schedule.every.get(name, 1))


def _walk(graph: Graph, terms, trains: set):
    """Nodes on the gradient path (live), every node read (needed), and the cut edges."""
    trainable = set(graph.owner)
    live, needed, cuts = set(), set(), set()
    stack = [(t, True) for t in terms]
    while stack:
        name, on_path = stack.pop()
        if (name in live) or (name in needed and not on_path):
            continue
        needed.add(name)
        node = graph.nodes[name]
        if on_path:
            live.add(name)
        for i in node.inputs:
            up = graph.upstream[i]
            carries_other = not (up & trains) and bool(up & trainable)
            if on_path and carries_other and node.kind != "noise":
                cuts.add((i, name))
            stack.append((i, on_path and not carries_other and node.kind != "noise"))
    return live, needed, cuts


def simulate(plan: Plan, names: tuple[str, ...]) -> tuple[tuple[Op, ...], ...]:
    """The ops of one round: which nodes each phase computes and which it reuses."""
    graph, refresh = plan.graph, plan.spec.schedule.refresh_detached
    versions = {m: 0 for m in graph.param_counts}
    env: dict[str, tuple] = {}          # node -> (upstream versions, modules it carries grads of)
    program = []
    for name in names:
        phase = plan.phase(name)
        ops = []
        for node_name in phase.needed:
            node = graph.nodes[node_name]
            if node.kind == "term":
                ops.append(Op(node_name, "loss"))
                continue
            stamp = tuple(versions[m] for m in sorted(graph.upstream[node_name]))
            if _reusable(env.get(node_name), stamp, node_name, phase, graph, refresh):
                ops.append(Op(node_name, "reuse"))
                continue
            ops.append(Op(node_name, "compute"))
            env[node_name] = (stamp, _grads(graph, phase, node_name, env))
        program.append(tuple(ops))
        for module in phase.trains:
            versions[module] += 1
    return tuple(program)


def _reusable(entry, stamp, name, phase: Phase, graph: Graph, refresh: bool) -> bool:
    if entry is None:
        return False
    if name not in phase.live:
        return not refresh or entry[0] == stamp
    required = graph.upstream[name] & set(phase.trains)
    return entry[0] == stamp and required <= entry[1]


def _grads(graph: Graph, phase: Phase, name: str, env: dict) -> frozenset:
    node = graph.nodes[name]
    own = {m for m in node.uses if graph.trainable(m) and m not in phase.frozen}
    if node.kind == "noise":
        return frozenset()
    through = set()
    for i in node.inputs:
        if (i, name) not in phase.cuts and i in env:
            through |= env[i][1]
    return frozenset(own | through)
