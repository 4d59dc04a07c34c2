"""`composer graph`: a drawing of the compiled DAG, one panel per phase.

Each phase of the plan is a Graphviz cluster (stacked in schedule order) holding the nodes that phase
reads: inputs (ellipses), flow tensors computed by modules or ops (boxes), loss terms (notes),
the nodes an objective added grouped in a cluster of their own. Fill colours say what the phase
does with a node's module: trained (green), frozen (blue: on the gradient path, not stepped),
read as data (grey: no gradient needed); a red dashed edge labelled `detach` is a cut edge; a
dashed border is a value reused from an earlier phase of the step. A cluster of modules shows
each module's block, parameter count and optimizer.

The DOT text is generated here (deterministic: nodes in the graph's topological order) and
rendered by Graphviz's `dot` (https://graphviz.org) when it is on PATH; otherwise matplotlib
draws the same panels from a layered layout (the layers are networkx's topological generations,
the first step of Sugiyama-style drawing).
"""
from __future__ import annotations

import shutil
import subprocess
import textwrap
from pathlib import Path

from composer.errors import ComposerError
from composer.graph.plan import Phase, Plan
from composer.graph.view import _computation

COLORS = {"trained": "#a6dba0", "frozen": "#9ecae1", "data": "#e0e0e0", "input": "#fff2ae",
          "op": "#ffffff", "term": "#fbb4ae", "module": "#f2f2f2"}
SHAPES = {"input": "ellipse", "term": "note"}
CUT = "#d62728"
LEGEND = ("green: trained by the phase; blue: frozen (on the gradient path, not stepped); grey: read as data; "
          "red dashed edge: cut (detached); dashed border: reused from an earlier phase")


def status(plan: Plan, phase: Phase, name: str) -> str:
    """What `phase` does with node `name`: input | term | trained | frozen | data | op."""
    node = plan.graph.nodes[name]
    if node.kind in ("data", "field", "noise"):
        return "input"
    if node.kind == "term":
        return "term"
    if set(node.uses) & set(phase.trains):
        return "trained"
    if set(node.uses) & set(phase.frozen):
        return "frozen"
    if name not in phase.live:
        return "data"
    return "op"


def to_dot(plan: Plan) -> str:
    """The DOT text of the plan: one cluster per phase, each flowing left to right, stacked in
    schedule order under a cluster of the modules."""
    spec = plan.spec
    order = " -> ".join(_phase_title(p) for p in plan.phases)
    lines = [f"digraph {_quote(spec.name)} {{",
             f"  graph [label={_quote(f'{spec.name}: {order} per step' + chr(10) + LEGEND)}, labelloc=t, "
             "fontname=Helvetica, fontsize=12, rankdir=LR, newrank=true, nodesep=0.2, ranksep=0.35];",
             "  node [fontname=Helvetica, fontsize=10, style=filled, shape=box];",
             "  edge [fontname=Helvetica, fontsize=9, color=\"#555555\"];"]
    for phase in reversed(plan.phases):      # dot stacks LR components bottom-up: the last written
        lines += _phase_cluster(plan, phase)  # is drawn on top, so modules, then the first phase
    lines += _modules_cluster(plan)
    lines.append("}")
    return "\n".join(lines) + "\n"


def _modules_cluster(plan: Plan) -> list[str]:
    graph, blocks = plan.graph, {m.name: m.block or "sequence" for m in plan.spec.modules}
    lines = ["  subgraph cluster_modules {", f"    label={_quote('modules')}; style=rounded; color=\"#999999\";"]
    for module, count in graph.param_counts.items():
        owner = graph.owner.get(module)
        text = f"{module}\n{blocks.get(module, '')}\n{count:,} params\n" + (f"optimizer {owner}" if owner else "not trained")
        lines.append(f"    {_quote('module:' + module)} [label={_quote(text)}, fillcolor={_quote(COLORS['module'])}];")
    lines.append("  }")
    return lines


def _actions(plan: Plan, phase: Phase) -> dict[str, str]:
    """node -> compute | reuse | loss in the phase's program (one full step)."""
    names = tuple(p.name for p in plan.phases)
    return {op.node: op.action for op in dict(zip(names, plan.program(names)))[phase.name]}


def _phase_cluster(plan: Plan, phase: Phase) -> list[str]:
    actions = _actions(plan, phase)
    graph, prefix = plan.graph, phase.name + ":"
    lines = [f"  subgraph {_quote('cluster_phase_' + phase.name)} {{",
             f"    label={_quote(_phase_label(plan, phase))}; style=rounded; color=\"#333333\"; fontsize=11;"]
    groups: dict[str, list[str]] = {}
    for name in phase.needed:
        node = graph.nodes[name]
        groups.setdefault(node.objective, []).append(_node_line(plan, phase, name, actions.get(name)))
    lines += ["    " + line for line in groups.pop("", [])]
    recipes = {o.name: o.recipe for o in plan.spec.objectives}
    for objective, members in groups.items():
        title = f"objective {objective} ({recipes.get(objective, 'recipe')})"
        lines.append(f"    subgraph {_quote(f'cluster_{phase.name}_{objective}')} {{")
        lines.append(f"      label={_quote(title)}; style=dashed; color=\"#888888\";")
        lines += ["      " + line for line in members]
        lines.append("    }")
    for name in phase.needed:
        for source in graph.nodes[name].inputs:
            cut = (source, name) in phase.cuts
            attrs = f" [style=dashed, color={_quote(CUT)}, fontcolor={_quote(CUT)}, label=\"detach\"]" if cut else ""
            lines.append(f"    {_quote(prefix + source)} -> {_quote(prefix + name)}{attrs};")
    lines.append("  }")
    return lines


def _node_line(plan: Plan, phase: Phase, name: str, action: str | None) -> str:
    kind = status(plan, phase, name)
    node = plan.graph.nodes[name]
    notes = {"trained": f"trains {', '.join(node.uses)}", "frozen": f"{', '.join(node.uses)} frozen",
             "data": "read as data"}.get(kind, "")
    if action == "reuse":
        notes = ", ".join(n for n in (notes, "reused") if n)
    text = "\n".join(t for t in (name, _computation(plan, name), notes) if t)
    style = "filled,dashed" if action == "reuse" else "filled"
    return (f"{_quote(phase.name + ':' + name)} [label={_quote(text)}, shape={SHAPES.get(kind, 'box')}, "
            f"style={_quote(style)}, fillcolor={_quote(COLORS[kind])}];")


def _phase_title(phase: Phase) -> str:
    extra = ([f"x{phase.repeat}"] if phase.repeat > 1 else []) + ([f"every {phase.every}"] if phase.every > 1 else [])
    return phase.name + (f" ({', '.join(extra)})" if extra else "")


def _phase_label(plan: Plan, phase: Phase) -> str:
    head = f"phase {_phase_title(phase)}: steps {', '.join(phase.optimizers)}"
    trains = f"trains {', '.join(phase.trains) or '-'}; frozen {', '.join(phase.frozen) or '-'}"
    cuts = "; ".join(f"{a} -> {b}" for a, b in phase.cuts)
    return "\n".join([head, trains] + ([f"cuts {cuts}"] if cuts else []))


def _quote(text: str) -> str:
    """A DOT double-quoted string (backslashes and quotes escaped, newlines as \\n)."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def write(plan: Plan, out: str | Path) -> list[Path]:
    """Write the drawing to `out` (.dot, .svg or .png). An image also gets its DOT text beside it
    (OUT.dot). Returns the files written."""
    out = Path(out)
    if out.suffix not in (".dot", ".gv", ".svg", ".png"):
        raise ComposerError(f"{out}: expected a .dot, .svg or .png file")
    out.parent.mkdir(parents=True, exist_ok=True)
    text = to_dot(plan)
    dot_file = out if out.suffix in (".dot", ".gv") else out.with_suffix(".dot")
    dot_file.write_text(text)
    if out == dot_file:
        return [out]
    render(plan, text, out)
    return [out, dot_file]


def render(plan: Plan, text: str, out: Path) -> None:
    """SVG/PNG through Graphviz's `dot` when installed, else through matplotlib."""
    dot = shutil.which("dot")
    if dot is not None:
        done = subprocess.run([dot, f"-T{out.suffix[1:]}", "-o", str(out)], input=text, text=True,
                              capture_output=True, timeout=120)
        if done.returncode != 0:
            raise ComposerError(f"Graphviz dot failed on {out}: {done.stderr.strip()}")
        return
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise ComposerError(f"no renderer for {out.suffix}: install Graphviz (it provides `dot`: apt-get install "
                            "graphviz, brew install graphviz, conda install graphviz) or matplotlib "
                            "(pip install 'composer-graphs[plots]'); or write the DOT text with -o FILE.dot") from None
    draw_matplotlib(plan, out)


def draw_matplotlib(plan: Plan, out: Path) -> None:
    """The phase panels side by side, each laid out in layers (networkx's topological
    generations), drawn with matplotlib's object API (no pyplot state, no GUI backend)."""
    from matplotlib.figure import Figure

    panels = [(phase, _layers(plan, phase)) for phase in plan.phases]
    width = sum(max(len(layer) for layer in layers) for _, layers in panels)
    depth = max(len(layers) for _, layers in panels)
    inches = max(4.0, 1.9 * width + 1)
    figure = Figure(figsize=(inches, 0.95 * depth + 1.4))
    for i, (phase, layers) in enumerate(panels):
        weight = max(len(layer) for layer in layers)
        left = sum(max(len(layer) for layer in ls) for _, ls in panels[:i]) / width
        _draw_panel(plan, phase, layers, figure.add_axes((left, 0.0, weight / width, 0.8)))
    order = " -> ".join(_phase_title(p) for p in plan.phases)
    figure.suptitle(f"{plan.spec.name}: {order} per step\n" + textwrap.fill(LEGEND, int(inches * 16)), fontsize=7)
    figure.savefig(out, dpi=150)


def _layers(plan: Plan, phase: Phase) -> list[list[str]]:
    import networkx as nx

    position = {name: i for i, name in enumerate(plan.graph.nodes)}
    dag = plan.graph.dag.subgraph(phase.needed)
    return [sorted(layer, key=position.__getitem__) for layer in nx.topological_generations(dag)]


def _draw_panel(plan: Plan, phase: Phase, layers: list[list[str]], axes) -> None:
    actions = _actions(plan, phase)
    xy = {name: (j - (len(layer) - 1) / 2, -i) for i, layer in enumerate(layers) for j, name in enumerate(layer)}
    for name in phase.needed:
        for source in plan.graph.nodes[name].inputs:
            cut = (source, name) in phase.cuts
            axes.annotate("", xy=xy[name], xytext=xy[source], zorder=1,
                          arrowprops=dict(arrowstyle="-|>", color=CUT if cut else "#555555", lw=0.8,
                                          linestyle="--" if cut else "-", shrinkA=11, shrinkB=11))
    boxes = {"input": "round,pad=0.3", "term": "round4,pad=0.3"}
    for name, (x, y) in xy.items():
        kind, modules = status(plan, phase, name), ", ".join(plan.graph.nodes[name].uses)
        notes = {"trained": f"{modules} trains", "frozen": f"{modules} frozen", "data": "read as data"}.get(kind)
        text = "\n".join(t for t in (name, notes, "reused" if actions.get(name) == "reuse" else None) if t)
        axes.text(x, y, text, ha="center", va="center", fontsize=6, zorder=3,
                  bbox=dict(boxstyle=boxes.get(kind, "square,pad=0.3"), facecolor=COLORS[kind], edgecolor="#333333",
                            linestyle="--" if actions.get(name) == "reuse" else "-", linewidth=0.6))
    widest = max(len(layer) for layer in layers)
    axes.set_xlim(-widest / 2, widest / 2)
    axes.set_ylim(-len(layers) + 0.4, 0.8)
    axes.set_title(_phase_label(plan, phase), fontsize=7)
    axes.axis("off")
