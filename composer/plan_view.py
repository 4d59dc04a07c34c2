"""Printing a compiled Plan: a table for people, JSON for tools (and golden tests)."""
from __future__ import annotations

from .plan import Plan


def _computation(plan: Plan, name: str) -> str:
    node = plan.graph.nodes[name]
    if node.kind == "data":
        args = ", ".join(f"{k}={v}" for k, v in node.args.items())
        return f"{node.target}({args})"
    if node.kind == "noise":
        opts = {k: v for k, v in node.args.items()}
        return f"{node.target}({', '.join(f'{k}={v}' for k, v in opts.items())})"
    if node.kind == "term":
        return f"{node.weight:g} * {node.op!r}({', '.join(node.inputs)})"
    if node.kind == "fn":
        return f"{node.op!r}({', '.join(node.inputs)})"
    return node.describe()


def _shape(plan: Plan, name: str) -> str:
    shape = plan.graph.shapes.get(name)
    return "" if shape is None else "[B" + "".join(f", {d}" for d in shape) + "]"


def format_table(plan: Plan) -> str:
    """phase | op | node | computation | shape | note, one block per phase."""
    graph, lines = plan.graph, []
    names = tuple(p.name for p in plan.phases)
    program = dict(zip(names, plan.program(names)))
    lines.append(f"plan {plan.spec.name}: {len(plan.phases)} phase(s) per step, in order "
                 + " -> ".join(_label(p) for p in plan.phases))
    for phase in plan.phases:
        opt = next(o for o in plan.spec.optimizers if o.name == phase.name)
        lines.append("")
        lines.append(f"phase {phase.name}   optimizer {opt.type} lr {opt.lr:g}   trains: {', '.join(phase.trains)}"
                     f"   frozen: {', '.join(phase.frozen) or '-'}")
        rows = [("op", "node", "computation", "shape", "note")]
        for op in program[phase.name]:
            rows.append((op.action, op.node, _computation(plan, op.node), _shape(plan, op.node),
                         _note(plan, phase, op.node)))
        widths = [max(len(r[i]) for r in rows) for i in range(4)]
        for row in rows:
            lines.append("  " + "  ".join(c.ljust(w) for c, w in zip(row, widths)) + "  " + row[4])
    calls = plan.forward_calls()
    lines.append("")
    lines.append("forward calls per step: " + ", ".join(f"{m} {n}" for m, n in calls.items()))
    lines.append("parameters: " + ", ".join(f"{m} {n:,}" for m, n in graph.param_counts.items()))
    return "\n".join(line.rstrip() for line in lines)


def _label(phase) -> str:
    extra = []
    if phase.repeat > 1:
        extra.append(f"x{phase.repeat}")
    if phase.every > 1:
        extra.append(f"every {phase.every} steps")
    return phase.name + (f" ({', '.join(extra)})" if extra else "")


def _note(plan: Plan, phase, name: str) -> str:
    node = plan.graph.nodes[name]
    notes = [f"detach {i}" for i in node.inputs if (i, name) in phase.cuts]
    frozen = [m for m in node.uses if m in phase.frozen]
    if frozen:
        notes.append(f"{', '.join(frozen)} frozen")
    if name not in phase.live and node.kind not in ("data", "noise"):
        notes.append("read as data")
    return "; ".join(notes)


def to_json(plan: Plan) -> dict:
    names = tuple(p.name for p in plan.phases)
    program = dict(zip(names, plan.program(names)))
    return {
        "name": plan.spec.name,
        "file": plan.spec.file,
        "phases": [{
            "name": p.name,
            "optimizer": next(o.type for o in plan.spec.optimizers if o.name == p.name),
            "trains": list(p.trains), "frozen": list(p.frozen),
            "terms": [{"name": t, "weight": plan.graph.nodes[t].weight} for t in p.terms],
            "cuts": [list(c) for c in p.cuts],
            "repeat": p.repeat, "every": p.every,
            "ops": [{"op": o.action, "node": o.node, "computation": _computation(plan, o.node)}
                    for o in program[p.name]],
        } for p in plan.phases],
        "parameters": dict(plan.graph.param_counts),
        "forward_calls_per_step": plan.forward_calls(),
        "shapes": {k: list(v) for k, v in plan.graph.shapes.items()},
    }
