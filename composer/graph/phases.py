"""Which phases a step has: derived from the optimizers, or declared under `phases:`.

By default every optimizer is one phase that minimises every term moving its modules. A graph
may also declare phases:

    phases:
      recon: {terms: [rec], optimizers: [ae]}        # a phase names its terms and the optimizers
      D:     {terms: [reg.D_real, reg.D_fake, reg.D_r1], optimizers: [D]}   # it steps on one backward
      G:     {terms: [reg.G], optimizers: [ae]}      # one optimizer may serve several phases
      D2:    {optimizers: [D]}                       # terms omitted: those moving D's modules
      G:     {redraw: [z]}                           # a derived phase with options only

A term is named `objective.term` or by its objective alone (all its terms). Declared phases run
first, in the order written; derived phases (one per optimizer no declared phase steps) follow in
the order of `optimizers:`; `schedule.order` overrides both. Whatever is declared, the compiler
checks that every term is minimised by some phase, that a phase's terms move what it steps, and
that no term's gradient is lost in a module no phase minimising it steps.
"""
from __future__ import annotations

from dataclasses import dataclass

from composer.errors import did_you_mean
from composer.graph.build import Graph


@dataclass(frozen=True)
class Chosen:
    name: str
    optimizers: tuple[str, ...]
    terms: tuple[str, ...]
    redraw: tuple[str, ...] = ()


def declared_phases(graph: Graph) -> list[Chosen]:
    spec = graph.spec
    optimizers = [o.name for o in spec.optimizers]
    written = {p.name: p for p in spec.phases}
    declared = [_declared(graph, p, optimizers) for p in spec.phases
                if p.terms is not None or p.optimizers is not None]
    stepped = {o for c in declared for o in c.optimizers}
    for c in declared:
        if c.name in optimizers and c.name not in c.optimizers:
            raise spec.error(f"phase '{c.name}' has the name of optimizer '{c.name}' but does not step it: "
                             "rename the phase", "phases", c.name)
    derived = []
    for opt in optimizers:
        if opt not in stepped:
            options = written.get(opt)
            redraw = _redraw(graph, options) if options else ()
            derived.append(Chosen(opt, (opt,), _derived_terms(graph, opt, (opt,), options is not None), redraw))
    for name, p in written.items():
        if p.terms is None and p.optimizers is None and name not in optimizers:
            raise spec.error(f"phase '{name}' is not an optimizer: give it 'optimizers' (and 'terms')"
                             f"{did_you_mean(name, optimizers)}", "phases", name)
        if p.terms is None and p.optimizers is None and name in stepped:
            raise spec.error(f"optimizer '{name}' is stepped by declared phases, so it has no phase of its own "
                             "to give options to", "phases", name)
    chosen = declared + derived
    _check(graph, chosen)
    return chosen


def _declared(graph: Graph, p, optimizers: list[str]) -> Chosen:
    spec = graph.spec
    if p.optimizers is None and p.name not in optimizers:
        raise spec.error(f"phase '{p.name}' needs 'optimizers' (it is not the name of an optimizer)"
                         f"{did_you_mean(p.name, optimizers)}", "phases", p.name)
    opts = p.optimizers if p.optimizers is not None else (p.name,)
    for i, opt in enumerate(opts):
        if opt not in optimizers:
            raise spec.error(f"unknown optimizer '{opt}'{did_you_mean(opt, optimizers)}",
                             "phases", p.name, "optimizers", i)
        if opt in opts[:i]:
            raise spec.error(f"optimizer '{opt}' is listed twice", "phases", p.name, "optimizers", i)
    terms = _terms(graph, p) if p.terms is not None else _derived_terms(graph, p.name, opts, True)
    return Chosen(p.name, tuple(opts), terms, _redraw(graph, p))


def _terms(graph: Graph, p) -> tuple[str, ...]:
    """`objective.term` names, or an objective's name for all its terms."""
    spec, out = graph.spec, []
    terms = [t.name for t in graph.terms]
    for i, name in enumerate(p.terms):
        matched = [t for t in terms if t == name or graph.nodes[t].objective == name]
        if not matched:
            raise spec.error(f"unknown term or objective '{name}'{did_you_mean(name, terms + [o.name for o in spec.objectives])}",
                             "phases", p.name, "terms", i)
        out += [t for t in matched if t not in out]
    if not out:
        raise spec.error("a phase needs at least one term", "phases", p.name, "terms")
    return tuple(out)


def _derived_terms(graph: Graph, name: str, opts, in_phases: bool) -> tuple[str, ...]:
    modules = {m for m, o in graph.owner.items() if o in opts}
    terms = tuple(t.name for t in graph.terms if set(graph.term_trains(t)) & modules)
    if not terms:
        path = ("phases", name) if in_phases else ("optimizers", name)
        raise graph.spec.error(f"optimizer(s) {', '.join(opts)} update {sorted(modules)} but no loss term "
                               "depends on them", *path)
    return terms


def _redraw(graph: Graph, p) -> tuple[str, ...]:
    inputs = [n for n, node in graph.nodes.items() if node.kind in ("data", "noise")]
    for i, name in enumerate(p.redraw):
        if name not in inputs:
            raise graph.spec.error(f"'{name}' is not an input (data or noise){did_you_mean(name, inputs)}",
                                   "phases", p.name, "redraw", i)
    return tuple(p.redraw)


def _check(graph: Graph, chosen: list[Chosen]) -> None:
    spec = graph.spec
    stepped = {o for c in chosen for o in c.optimizers}
    for opt in spec.optimizers:
        if opt.name not in stepped:
            raise spec.error(f"optimizer '{opt.name}' is stepped by no phase", "optimizers", opt.name)
    for c in chosen:
        trains = {m for m, o in graph.owner.items() if o in c.optimizers}
        for t in c.terms:
            moved = set(graph.term_trains(graph.nodes[t]))
            if not moved & trains:
                raise spec.error(f"phase '{c.name}' lists term '{t}', which moves {sorted(moved) or 'nothing'}, "
                                 f"but steps only {sorted(trains)}", "phases", c.name, "terms")
    for term in graph.terms:
        phases = [c for c in chosen if term.name in c.terms]
        if not phases:
            moved = graph.term_trains(term)
            why = f"it moves {list(moved)}" if moved else "it moves no module that an optimizer updates"
            raise spec.error(f"term '{term.name}' is minimised by no phase ({why})", *term.key.split("."))
        reached = {m for c in phases for m, o in graph.owner.items() if o in c.optimizers}
        for module in graph.term_trains(term):
            if module not in reached:
                raise spec.error(f"term '{term.name}' moves '{module}', but no phase minimising it steps "
                                 f"'{module}''s optimizer '{graph.owner[module]}': its gradient would be lost "
                                 f"(phases with this term: {', '.join(c.name for c in phases)})",
                                 *term.key.split("."))
