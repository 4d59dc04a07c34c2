"""Printing a compiled Plan: a table for people, JSON for tools (and golden tests)."""
from __future__ import annotations

from composer.graph.plan import Plan
from composer.graph.regions import split
from composer.text import aligned


def _computation(plan: Plan, name: str) -> str:
    node = plan.graph.nodes[name]
    if node.kind == "data":
        args = ", ".join(f"{k}={v}" for k, v in node.args.items())
        return f"{node.target}({args})"
    if node.kind == "noise":
        opts = {k: v for k, v in node.args.items()}
        return f"{node.target}({', '.join(f'{k}={v}' for k, v in opts.items())})"
    if node.kind == "term":
        weight = f"{node.weight:g}" + (f" * {node.schedule!r}" if node.schedule is not None else "")
        return f"{weight} * {node.op!r}({', '.join(node.inputs)})"
    if node.kind == "fn":
        return f"{node.op!r}({', '.join(node.inputs)})"
    return node.describe()


def _shape(plan: Plan, name: str) -> str:
    shape = plan.graph.shapes.get(name)
    return "" if shape is None else _format_shape(shape)


def _format_shape(shape) -> str:
    if isinstance(shape, list):      # a multi-output value
        return "(" + ", ".join(_format_shape(s) for s in shape) + ")"
    return "[B" + "".join(f", {d}" for d in shape) + "]"


def format_table(plan: Plan) -> str:
    """phase | op | node | computation | shape | note, one block per phase."""
    graph, lines = plan.graph, []
    names = tuple(p.name for p in plan.phases)
    program = dict(zip(names, plan.program(names)))
    lines.append(f"plan {plan.spec.name}: {len(plan.phases)} phase(s) per step, in order "
                 + " -> ".join(_label(p) for p in plan.phases))
    for phase in plan.phases:
        lines.append("")
        lines.append(f"phase {phase.name}   {_optimizers(plan, phase)}   trains: {', '.join(phase.trains)}"
                     f"   frozen: {', '.join(phase.frozen) or '-'}")
        rows = [("op", "node", "computation", "shape", "note")]
        shared = {op.via: op.node for op in program[phase.name] if op.via}
        for op in program[phase.name]:
            rows.append((op.action, op.node, _computation(plan, op.node), _shape(plan, op.node),
                         _note(plan, phase, op, shared)))
        lines += ["  " + line for line in aligned(rows)]
    calls = plan.forward_calls()
    lines.append("")
    lines.append("forward calls per step: " + ", ".join(f"{m} {n}" for m, n in calls.items()))
    lines.append("parameters: " + ", ".join(f"{m} {n:,}" for m, n in graph.param_counts.items()))
    spectral = [m.name for m in plan.spec.modules if _spectral(m)]
    if spectral:
        lines.append(f"spectral norm: {', '.join(spectral)} (every Conv, ConvTranspose, Linear and Embedding "
                     "weight divided by its largest singular value; one power iteration per training call)")
    lines += _regions(plan, names)
    bridged = _bridged(plan.spec)
    if bridged and graph.shapes_on:
        how = "on the meta device" if graph.shapes_on == "meta" else "by one forward on zero CPU tensors"
        lines.append(f"shapes: checked {how} (library blocks: {', '.join(bridged)})")
    return "\n".join(line.rstrip() for line in lines)


def _regions(plan: Plan, names: tuple) -> list[str]:
    """`train.compile: phase`: what each phase compiles as one region (composer/graph/regions.py)."""
    value = plan.spec.train.compile
    if value != "phase" and not (isinstance(value, dict) and value.get("scope") == "phase"):
        return []
    parts = {name: split(nodes, plan.phase(name).cuts) for name, nodes in zip(names, plan.evaluated(names))}
    return ["compiled per phase: " + "; ".join(f"{name} {p.describe()}" for name, p in parts.items())]


def _optimizers(plan: Plan, phase) -> str:
    """`optimizer adam lr 0.0002` for a derived phase; `optimizer ae (adam lr 0.001)` or
    `optimizers E (...), D (...)` when a declared phase steps other optimizers."""
    specs = {o.name: o for o in plan.spec.optimizers}
    if phase.optimizers == (phase.name,):
        opt = specs[phase.name]
        return f"optimizer {opt.type} lr {opt.lr:g}"
    shown = ", ".join(f"{n} ({specs[n].type} lr {specs[n].lr:g})" for n in phase.optimizers)
    return f"optimizer{'s' if len(phase.optimizers) > 1 else ''} {shown}"


def _label(phase) -> str:
    extra = []
    if phase.repeat > 1:
        extra.append(f"x{phase.repeat}")
    if phase.every > 1:
        extra.append(f"every {phase.every} steps")
    return phase.name + (f" ({', '.join(extra)})" if extra else "")


def _note(plan: Plan, phase, op, shared: dict) -> str:
    name = op.node
    node = plan.graph.nodes[name]
    notes = [f"detach {i}" for i in node.inputs if (i, name) in phase.cuts]
    if name in shared:
        notes.append(f"inputs require grad, shared with {shared[name]}")
    if op.via:
        notes.append(f"differentiates {op.via}")
    frozen = [m for m in node.uses if m in phase.frozen]
    if frozen:
        notes.append(f"{', '.join(frozen)} frozen")
    if name not in phase.live and node.kind not in ("data", "field", "noise"):
        notes.append("read as data")
    if node.kind == "term" and node.every > 1:
        notes.append(f"every {node.every} steps, weight x{node.every}")
    return "; ".join(notes)


def to_json(plan: Plan) -> dict:
    names = tuple(p.name for p in plan.phases)
    program = dict(zip(names, plan.program(names)))
    return {
        "name": plan.spec.name,
        "file": plan.spec.file,
        "phases": [{
            "name": p.name,
            "optimizers": {n: next(o.type for o in plan.spec.optimizers if o.name == n) for n in p.optimizers},
            "redraw": list(p.redraw),
            "trains": list(p.trains), "frozen": list(p.frozen),
            "terms": [{"name": t, "weight": plan.graph.nodes[t].weight, "every": plan.graph.nodes[t].every,
                       "schedule": repr(plan.graph.nodes[t].schedule) if plan.graph.nodes[t].schedule else None}
                      for t in p.terms],
            "cuts": [list(c) for c in p.cuts],
            "repeat": p.repeat, "every": p.every,
            "ops": [{"op": o.action, "node": o.node, "computation": _computation(plan, o.node),
                     **({"differentiates": o.via} if o.via else {})}
                    for o in program[p.name]],
        } for p in plan.phases],
        "parameters": dict(plan.graph.param_counts),
        "forward_calls_per_step": plan.forward_calls(),
        "shapes": {k: list(v) for k, v in plan.graph.shapes.items()},
    }


def _spectral(module) -> bool:
    """Whether `spectral_norm: true` is on the module or on one of its inline layers."""
    return module.spectral_norm or any(_spectral(layer) for layer in module.layers)


def _bridged(spec) -> list[str]:
    """The modules whose block comes from a library bridge (`diffusers.X`, `timm`, ...)."""
    from composer import registry
    from composer.blocks.bridges.common import Bridged

    blocks = registry.get("blocks")
    return [m.name for m in spec.modules if isinstance(m.block, str) and m.block in blocks
            and isinstance(blocks[m.block], Bridged)]
