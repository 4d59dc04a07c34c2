"""Spec -> Graph: resolve names against the registries, expand objectives into nodes,
check references, cycles, block arguments, optimizer coverage and (on the meta device) shapes.

Nothing here touches real tensors: a Graph is ready to compile before any weight exists.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from functools import cached_property

import networkx as nx

from composer.errors import SpecError, did_you_mean
from composer.graph.checks import check_metrics, check_sample, check_sample_shapes, check_training
from composer.graph.lower import bind_args, lower
from composer.graph.nodes import Node
from composer.spec.schema import ModuleSpec, Spec


@dataclass
class Graph:
    spec: Spec
    nodes: dict[str, Node]                 # in a topological order
    dag: nx.DiGraph
    owner: dict[str, str]                  # module -> optimizer
    param_counts: dict[str, int] = field(default_factory=dict)
    shapes: dict[str, tuple] = field(default_factory=dict)   # node -> per-sample shape
    generators: dict = field(default_factory=dict)           # objective -> its recipe's Generator
    shapes_on: str = ""                                      # "meta" or "cpu": how shapes were inferred

    @cached_property
    def upstream(self) -> dict[str, frozenset]:
        """Modules whose parameters each node depends on (noise only borrows a shape)."""
        up: dict[str, frozenset] = {}
        for name, node in self.nodes.items():
            deps = () if node.kind == "noise" else node.inputs
            up[name] = frozenset(node.uses).union(*(up[i] for i in deps))
        return up

    @cached_property
    def drawn_from(self) -> dict[str, frozenset]:
        """The inputs (data and noise nodes) each node's value is computed from."""
        up: dict[str, frozenset] = {}
        for name, node in self.nodes.items():
            own = {name} if node.kind in ("data", "noise") else set()
            up[name] = frozenset(own).union(*(up[i] for i in node.inputs))
        return up

    def data_inputs(self, name: str) -> frozenset:
        """The data inputs a node's value is computed from."""
        return frozenset(n for n in self.drawn_from[name] if self.nodes[n].kind == "data")

    @property
    def terms(self) -> list[Node]:
        return [n for n in self.nodes.values() if n.kind == "term"]

    def trainable(self, module: str) -> bool:
        return module in self.owner

    def term_trains(self, term: Node) -> tuple[str, ...]:
        """Modules a loss term moves: declared, or every trainable module upstream of it."""
        chosen = term.trains if term.trains is not None else sorted(self.upstream[term.name])
        return tuple(m for m in chosen if self.trainable(m) and m not in term.exclude)


def build(spec: Spec, check_shapes: bool = True) -> Graph:
    """Resolve and check a Spec; raise SpecError pointing at the YAML on any mistake."""
    from composer.blocks import BLOCKS

    from composer.plugins import load_plugins

    load_plugins(spec)
    for module in spec.modules:
        _check_block(spec, module, BLOCKS, ("modules", module.name))
    lowered = lower(spec)
    table = _merge_repeated_calls(_resolve(spec, _unique(spec, lowered.nodes), lowered.aliases))
    _check_references(spec, table)
    check_sample(spec, table, lowered.generators)
    check_metrics(spec, table)
    dag = nx.DiGraph()
    dag.add_nodes_from(table)
    dag.add_edges_from((i, n.name) for n in table.values() for i in n.inputs)
    _check_acyclic(spec, dag, table)
    ordered = {name: table[name] for name in nx.lexicographical_topological_sort(dag, key=_order(table))}
    graph = Graph(spec, ordered, dag, {}, generators=lowered.generators)
    from composer.graph.modules import build_modules, count_parameters
    from composer.graph.shapes import check_device, infer_shapes
    from composer.graph.weight_files import check_weight_files

    modules = build_modules(spec, "meta")
    check_weight_files(spec, modules)
    graph.param_counts = count_parameters(modules)
    graph.owner = _owners(spec, graph)
    _check_terms(spec, graph)
    check_training(spec, graph)
    if check_shapes:
        device = check_device(spec, graph.param_counts)
        graph.shapes, graph.shapes_on = infer_shapes(graph, device), device.type
        check_sample_shapes(spec, graph)
    return graph


def _order(table: dict[str, Node]):
    position = {name: i for i, name in enumerate(table)}
    return lambda name: position[name]


def _check_block(spec: Spec, module: ModuleSpec, blocks, path: tuple) -> None:
    if module.layers:
        for i, layer in enumerate(module.layers):
            _check_block(spec, layer, blocks, path + (i,))
        return
    if module.block not in blocks:
        raise spec.error(blocks.unknown(module.block), *path, "block")
    bind_args(spec, blocks[module.block], module.args, path, f"block {module.block}")


def _unique(spec: Spec, nodes: list[Node]) -> dict[str, Node]:
    table: dict[str, Node] = {}
    for node in nodes:
        if node.name in table:
            raise SpecError(f"'{node.name}' is defined twice (first at {table[node.name].loc})",
                            node.key, node.loc)
        table[node.name] = node
    return table


def _resolve(spec: Spec, table: dict[str, Node], aliases: dict[str, str]) -> dict[str, Node]:
    """Rewrite references to a data input's primary field (`real.x`) to the input (`real`)."""
    for alias in aliases:
        if alias in table:
            raise SpecError(f"'{alias}' is the input's own field: choose another name", table[alias].key,
                            table[alias].loc)
    return {name: replace(node, inputs=tuple(aliases.get(i, i) for i in node.inputs))
            for name, node in table.items()}


def _merge_repeated_calls(table: dict[str, Node]) -> dict[str, Node]:
    """A module applied to the same tensors is one value: a later call (a recipe's `D(fake)` beside
    the flow's) becomes `same(first)`, so each phase computes it once and every name stays valid.
    Merged values count as the same tensors, so whole repeated chains merge (`N(M(x))` twice).
    (Written twice, a module with dropout is still called once: feed it two inputs for two draws.)"""
    from composer.ops.flow import Same

    alias: dict[str, str] = {}
    merged = True
    while merged:   # again until nothing merges: a merge may make earlier calls' inputs the same
        merged, first = False, {}
        for name, node in table.items():
            if node.kind == "call" and name not in alias:
                key = (node.target, node.args.get("method"), tuple(_root(alias, i) for i in node.inputs))
                if first.setdefault(key, name) != name:
                    alias[name], merged = first[key], True
    return {name: replace(node, kind="fn", target="same", inputs=(alias[name],), op=Same()) if name in alias else node
            for name, node in table.items()}


def _root(alias: dict[str, str], name: str) -> str:
    while name in alias:
        name = alias[name]
    return name


def _check_references(spec: Spec, table: dict[str, Node]) -> None:
    known_modules = {m.name for m in spec.modules}
    for node in table.values():
        for name in node.inputs:
            if name not in table:
                raise SpecError(f"'{name}' is not an input, input field, flow tensor or objective output"
                                f"{did_you_mean(name, table)}", node.key, node.loc)
        called = (node.target,) if node.kind == "call" else ()
        for module in called + node.modules + (node.trains or ()) + node.exclude:
            if module not in known_modules:
                raise SpecError(f"unknown module '{module}'{did_you_mean(module, known_modules)}",
                                node.key, node.loc)


def _check_acyclic(spec: Spec, dag: nx.DiGraph, table: dict[str, Node]) -> None:
    try:
        cycle = nx.find_cycle(dag)
    except nx.NetworkXNoCycle:
        return
    path = " -> ".join([edge[0] for edge in cycle] + [cycle[0][0]])
    first = table[cycle[0][1]]
    raise SpecError(f"the flow has a cycle: {path}", first.key, first.loc)


def _owners(spec: Spec, graph: Graph) -> dict[str, str]:
    modules = {m.name: m for m in spec.modules}
    owner: dict[str, str] = {}
    for opt in spec.optimizers:
        for name in opt.params:
            if name not in modules:
                raise spec.error(f"unknown module '{name}'{did_you_mean(name, modules)}",
                                 "optimizers", opt.name, "params")
            if name in owner:
                raise spec.error(f"module '{name}' is already updated by optimizer '{owner[name]}'; "
                                 "every parameter has exactly one optimizer (to step one optimizer in several phases, "
                                 "declare them under 'phases:')", "optimizers", opt.name, "params")
            if graph.param_counts[name] == 0:
                raise spec.error(f"module '{name}' has no parameters to optimize", "optimizers", opt.name, "params")
            owner[name] = opt.name
    return owner


def _check_terms(spec: Spec, graph: Graph) -> None:
    used = set().union(*(graph.upstream[n] for n in graph.nodes)) if graph.nodes else set()
    for module in spec.modules:
        if graph.param_counts[module.name] and module.name not in graph.owner and module.name in used:
            trained_by_terms = any(module.name in (t.trains or ()) for t in graph.terms)
            if trained_by_terms or not (module.weights or module.args.get("pretrained")):
                raise spec.error(f"module '{module.name}' has {graph.param_counts[module.name]:,} parameters "
                                 "but no optimizer updates it: add it to an optimizer's params "
                                 "(or give it 'weights:', or a bridged block 'pretrained:', to use it fixed)",
                                 "modules", module.name)
    for term in graph.terms:
        moved = set(graph.term_trains(term))
        for module in graph.upstream[term.name]:
            opt = graph.owner.get(module)
            if opt is None or module in moved:
                continue
            if any(graph.owner.get(m) == opt for m in moved):
                raise SpecError(f"term '{term.name}' moves {sorted(moved)} but also depends on '{module}', which "
                                f"optimizer '{opt}' updates too: give '{module}' its own optimizer",
                                term.key, term.loc)
