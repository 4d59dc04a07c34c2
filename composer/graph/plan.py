"""Graph -> Plan: the scheduler that derives each phase of the update recipe from the DAG and the
term tags, and the static forward program that shares results across phases.

A phase = one optimizer: the loss terms that move its modules, the modules it trains, the modules
it must freeze (on the gradient path but owned by another optimizer, or by none: fixed weights),
the edges it cuts (values carrying another optimizer's gradients) and an ordered list of ops. An
op either computes a node or reuses the value an earlier phase of the same round computed, which
is allowed only while no module upstream of it has been stepped since (parameter versions) and it
carries the gradients this phase needs. A value read only through a cut is data to this phase: it
is reused even if stale, as hand-written loops reuse their fakes (set schedule.refresh_detached to
recompute). Within a phase, a penalty on the gradient of a call's output that the phase computes
anyway (R1 on the loss term's D(real)) differentiates that call instead of making its own
(composer/graph/sharing.py).
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from functools import cached_property

from composer.errors import did_you_mean
from composer.graph.build import Graph
from composer.graph.nodes import Node
from composer.graph.sharing import runtime_nodes, shared_calls


@dataclass(frozen=True)
class Op:
    node: str
    action: str            # "compute" | "reuse" | "loss"
    via: str = ""          # a penalty computed from this call's output (composer/graph/sharing.py)


@dataclass(frozen=True)
class Phase:
    name: str
    optimizers: tuple[str, ...]
    terms: tuple[str, ...]
    trains: tuple[str, ...]
    frozen: tuple[str, ...]
    cuts: tuple[tuple[str, str], ...]
    live: frozenset        # nodes on this phase's gradient path
    needed: tuple[str, ...]  # every node it reads, in topological order
    repeat: int = 1
    every: int = 1
    redraw: tuple[str, ...] = ()   # inputs drawn afresh for this phase


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
        """Phases that run at `step`: due by their `every`, with at least one term due."""
        return tuple(p.name for p in self.phases if step % p.every == 0 and self.terms_at(p, step))

    def terms_at(self, phase: Phase, step: int) -> tuple[str, ...]:
        """The phase's terms evaluated at `step` (a term with `every: k` runs on multiples of k)."""
        return tuple(t for t in phase.terms if step % self.graph.nodes[t].every == 0)

    def view(self, name: str, step: int) -> Phase:
        """The phase as it runs at `step`: only its due terms, and only what they need."""
        phase = self.phase(name)
        terms = self.terms_at(phase, step)
        if terms == phase.terms:
            return phase
        return self._views.setdefault((name, terms), _restrict(self.graph, phase, terms))

    def program(self, names: tuple[str, ...], step: int = 0) -> tuple[tuple[Op, ...], ...]:
        """The ops of the round of phases `names` at `step` (compute, reuse, loss per node)."""
        key = (names, tuple(self.terms_at(self.phase(n), step) for n in names))
        if key not in self._programs:
            self._programs[key] = simulate(self, tuple(self.view(n, step) for n in names))
        return self._programs[key]

    def evaluated(self, names: tuple[str, ...], step: int = 0) -> tuple[tuple[Node, ...], ...]:
        """Per phase of the round, the nodes it evaluates, in order: its program without the
        reuses (a reused value is already in the round's environment), a shared call on inputs
        with their gradient enabled (composer/graph/sharing.py). What the training interpreter
        runs; built once per program."""
        key = (names, tuple(self.terms_at(self.phase(n), step) for n in names))
        if key not in self._evaluated:
            self._evaluated[key] = tuple(runtime_nodes(self.graph, ops) for ops in self.program(names, step))
        return self._evaluated[key]

    @cached_property
    def _programs(self) -> dict:
        return {}

    @cached_property
    def _evaluated(self) -> dict:
        return {}

    @cached_property
    def _views(self) -> dict:
        return {}

    def forward_calls(self) -> dict[str, int]:
        """Module calls in one full step (every phase and term active), counting repeats."""
        calls = {name: 0 for name in self.graph.param_counts}
        for names in self.rounds(tuple(p.name for p in self.phases)):
            for ops in self.program(names):
                for op in ops:
                    if op.action == "compute" and not op.via:
                        for module in self.graph.nodes[op.node].uses:
                            calls[module] += 1
        return calls


def compile(graph: Graph) -> Plan:
    """Derive the phases (or take the declared ones); raise SpecError if the schedule, the
    phases or the terms cannot be satisfied."""
    from composer.graph.phases import declared_phases

    spec = graph.spec
    chosen = declared_phases(graph)
    names = [c.name for c in chosen]
    order = list(spec.schedule.order) or names
    for i, name in enumerate(order):
        if name not in names:
            raise spec.error(f"unknown phase '{name}'{did_you_mean(name, names)} (phases: {', '.join(names)})",
                             "schedule", "order", i)
    missing = [n for n in names if n not in order]
    if missing:
        raise spec.error(f"phase(s) {', '.join(missing)} missing from the order: every phase runs",
                         "schedule", "order")
    for key in ("repeat", "every"):
        for name in getattr(spec.schedule, key):
            if name not in names:
                raise spec.error(f"unknown phase '{name}'{did_you_mean(name, names)}", "schedule", key, name)
    if not chosen:
        raise spec.error("nothing to train: add optimizers and objectives", "optimizers")
    by_name = {c.name: c for c in chosen}
    return Plan(graph, tuple(_phase(graph, by_name[name]) for name in order))


def _phase(graph: Graph, chosen) -> Phase:
    spec = graph.spec
    moved = {m for t in chosen.terms for m in graph.term_trains(graph.nodes[t])}
    trains = tuple(m for m, o in graph.owner.items() if o in chosen.optimizers and m in moved)
    live, needed, cuts = _walk(graph, chosen.terms, set(trains))
    frozen = sorted({m for n in live for m in graph.nodes[n].uses if m not in trains and _has_weights(graph, m)})
    ordered = tuple(n for n in graph.nodes if n in needed)
    return Phase(chosen.name, chosen.optimizers, chosen.terms, trains, tuple(frozen), tuple(sorted(cuts)),
                 frozenset(live), ordered, spec.schedule.repeat.get(chosen.name, 1),
                 spec.schedule.every.get(chosen.name, 1), chosen.redraw)


def _has_weights(graph: Graph, module: str) -> bool:
    """Whether a module not trained by a phase is frozen there: it is trained by another
    optimizer, or no optimizer owns it and it has parameters (fixed weights, e.g. an autoencoder
    loaded with `weights:`); the runner freezes the latter once, when it is built."""
    return graph.trainable(module) or bool(graph.param_counts.get(module))


def _restrict(graph: Graph, phase: Phase, terms: tuple[str, ...]) -> Phase:
    live, needed, cuts = _walk(graph, terms, set(phase.trains))
    ordered = tuple(n for n in graph.nodes if n in needed)
    return replace(phase, terms=terms, live=frozenset(live), needed=ordered, cuts=tuple(sorted(cuts)))


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


def simulate(plan: Plan, phases: tuple[Phase, ...]) -> tuple[tuple[Op, ...], ...]:
    """The ops of one round: which nodes each phase computes and which it reuses. A value is
    stamped with the parameter versions of the modules upstream of it and the draw count of the
    inputs it comes from; a phase's `redraw` bumps its inputs' draw counts."""
    graph, refresh = plan.graph, plan.spec.schedule.refresh_detached
    versions = {m: 0 for m in graph.param_counts}
    draws = {n: 0 for n, node in graph.nodes.items() if node.kind in ("data", "noise")}
    env: dict[str, tuple] = {}          # node -> (stamp, modules it carries grads of)
    program = []
    for phase in phases:
        for name in phase.redraw:
            draws[name] += 1
        ops = []
        for node_name in phase.needed:
            node = graph.nodes[node_name]
            if node.kind == "term":
                ops.append(Op(node_name, "loss"))
                continue
            stamp = (tuple(versions[m] for m in sorted(graph.upstream[node_name])),
                     tuple(draws[i] for i in sorted(graph.drawn_from[node_name])))
            if _reusable(env.get(node_name), stamp, node_name, phase, graph, refresh):
                ops.append(Op(node_name, "reuse"))
                continue
            ops.append(Op(node_name, "compute"))
            env[node_name] = (stamp, _grads(graph, phase, node_name, env))
        program.append(_share(graph, phase, ops))
        for module in phase.trains:
            versions[module] += 1
    return tuple(program)


def _share(graph: Graph, phase: Phase, ops: list[Op]) -> tuple[Op, ...]:
    """A penalty differentiates the output of a call of the same phase on its inputs, where that
    call is computed here (a reused value's autograd graph may be gone)."""
    computed = {op.node for op in ops if op.action == "compute"}
    pairs = {p: c for p, c in shared_calls(graph, phase).items() if p in computed and c in computed}
    return tuple(replace(op, via=pairs[op.node]) if op.node in pairs else op for op in ops)


def _reusable(entry, stamp, name, phase: Phase, graph: Graph, refresh: bool) -> bool:
    if entry is None:
        return False
    if entry[0][1] != stamp[1]:        # an input it comes from was drawn again
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
