"""Spec -> Graph: resolve names against the registries, expand objectives into nodes,
check references, cycles, block arguments, optimizer coverage and (on the meta device) shapes.

Nothing here touches real tensors: a Graph is ready to compile before any weight exists.
"""
from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from functools import cached_property

import networkx as nx

from .errors import SpecError, did_you_mean
from .nodes import Node
from .spec import ModuleSpec, Spec


@dataclass
class Graph:
    spec: Spec
    nodes: dict[str, Node]                 # in a topological order
    dag: nx.DiGraph
    owner: dict[str, str]                  # module -> optimizer
    param_counts: dict[str, int] = field(default_factory=dict)
    shapes: dict[str, tuple] = field(default_factory=dict)   # node -> per-sample shape

    @cached_property
    def upstream(self) -> dict[str, frozenset]:
        """Modules whose parameters each node depends on (noise only borrows a shape)."""
        up: dict[str, frozenset] = {}
        for name, node in self.nodes.items():
            deps = () if node.kind == "noise" else node.inputs
            up[name] = frozenset(node.uses).union(*(up[i] for i in deps))
        return up

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

    for module in spec.modules:
        _check_block(spec, module, BLOCKS, ("modules", module.name))
    nodes = _input_nodes(spec) + _flow_nodes(spec) + _objective_nodes(spec)
    table = _unique(spec, nodes)
    _check_references(spec, table)
    _check_sample_output(spec, table)
    _check_sample_generator(spec)
    _check_metrics(spec)
    dag = nx.DiGraph()
    dag.add_nodes_from(table)
    dag.add_edges_from((i, n.name) for n in table.values() for i in n.inputs)
    _check_acyclic(spec, dag, table)
    ordered = {name: table[name] for name in nx.lexicographical_topological_sort(dag, key=_order(table))}
    graph = Graph(spec, ordered, dag, {})
    from .shapes import count_parameters, infer_shapes

    graph.param_counts = count_parameters(spec)
    graph.owner = _owners(spec, graph)
    _check_terms(spec, graph)
    if check_shapes:
        graph.shapes = infer_shapes(graph)
        _check_sample_shapes(spec, graph)
    return graph


def _order(table: dict[str, Node]):
    position = {name: i for i, name in enumerate(table)}
    return lambda name: position[name]


def _check_block(spec: Spec, module: ModuleSpec, blocks: dict, path: tuple) -> None:
    if module.layers:
        for i, layer in enumerate(module.layers):
            _check_block(spec, layer, blocks, path + (i,))
        return
    if module.block not in blocks:
        raise spec.error(f"unknown block '{module.block}'{did_you_mean(module.block, blocks)}", *path, "block")
    _bind(spec, blocks[module.block], module.args, path, f"block {module.block}")


def _bind(spec: Spec, fn, args: dict, path: tuple, what: str, supplied=()) -> None:
    """Check YAML arguments against a callable's keyword signature before calling it (`supplied`:
    arguments the caller passes itself, never given in YAML)."""
    signature = inspect.signature(fn)
    params = [p for p in signature.parameters.values() if p.kind is not p.VAR_KEYWORD and p.name not in supplied]
    for key in args:
        if key not in signature.parameters or key in supplied:
            names = [p.name for p in params]
            raise spec.error(f"{what} has no argument '{key}'{did_you_mean(key, names)}", *path, key)
    missing = [p.name for p in params if p.default is p.empty and p.name not in args
               and p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)]
    if missing:
        raise spec.error(f"{what} needs argument(s): {', '.join(missing)}", *path)


def _input_nodes(spec: Spec) -> list[Node]:
    from .inputs import NOISE, source_fn

    nodes = []
    for item in spec.inputs:
        path = ("inputs", item.name)
        if item.kind == "data":
            _bind(spec, source_fn(spec, item), item.args, path, f"source {item.target}")
            nodes.append(Node(item.name, "data", item.target, args=item.args, loc=item.loc, key=".".join(path)))
            continue
        if item.target not in NOISE:
            raise spec.error(f"unknown noise '{item.target}'{did_you_mean(item.target, NOISE)}", *path, "noise")
        _bind(spec, NOISE[item.target], item.args, path, f"noise {item.target}")
        like = item.args.get("like")
        nodes.append(Node(item.name, "noise", item.target, (like,) if like else (), item.args,
                          loc=item.loc, key=".".join(path)))
    return nodes


def _flow_nodes(spec: Spec) -> list[Node]:
    known = {m.name for m in spec.modules}
    nodes = []
    for entry in spec.flow:
        if entry.module not in known:
            raise spec.error(f"unknown module '{entry.module}'{did_you_mean(entry.module, known)}",
                             "flow", entry.name)
        nodes.append(Node(entry.name, "call", entry.module, entry.inputs, loc=entry.loc, key=f"flow.{entry.name}"))
    return nodes


def _objective_nodes(spec: Spec) -> list[Node]:
    from composer.recipes import RECIPES

    nodes = []
    for obj in spec.objectives:
        path = ("objectives", obj.name)
        if obj.recipe not in RECIPES:
            raise spec.error(f"unknown recipe '{obj.recipe}'{did_you_mean(obj.recipe, RECIPES)}", *path, "recipe")
        expand = RECIPES[obj.recipe]
        _bind(spec, expand, obj.args, path, f"recipe {obj.recipe}")
        try:
            made = expand(obj.name, **obj.args)
        except (ValueError, TypeError) as err:
            raise spec.error(str(err), *path) from None
        nodes += [_located(n, obj) for n in made]
    return nodes


def _located(node: Node, obj) -> Node:
    from dataclasses import replace

    return replace(node, loc=obj.loc, key=f"objectives.{obj.name}", objective=obj.name)


def _unique(spec: Spec, nodes: list[Node]) -> dict[str, Node]:
    table: dict[str, Node] = {}
    for node in nodes:
        if node.name in table:
            raise SpecError(f"'{node.name}' is defined twice (first at {table[node.name].loc})",
                            node.key, node.loc)
        table[node.name] = node
    return table


def _check_references(spec: Spec, table: dict[str, Node]) -> None:
    known_modules = {m.name for m in spec.modules}
    for node in table.values():
        for name in node.inputs:
            if name not in table:
                raise SpecError(f"'{name}' is not an input, flow tensor or objective output"
                                f"{did_you_mean(name, table)}", node.key, node.loc)
        for module in node.modules + (node.trains or ()) + node.exclude:
            if module not in known_modules:
                raise SpecError(f"unknown module '{module}'{did_you_mean(module, known_modules)}",
                                node.key, node.loc)


def _check_sample_output(spec: Spec, table: dict[str, Node]) -> None:
    """`sample.output`: one node name, or a list of them shown side by side."""
    output = spec.sample.output
    names = [output] if isinstance(output, str) else output
    if output is None:
        return
    if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
        raise spec.error(f"expected a tensor name or a list of them, got {output!r}", "sample", "output")
    for i, name in enumerate(names):
        if name not in table:
            path = ("sample", "output") if isinstance(output, str) else ("sample", "output", i)
            raise spec.error(f"'{name}' is not a tensor of the graph{did_you_mean(name, table)}", *path)


def _check_sample_generator(spec: Spec) -> None:
    """`sample.objective` names an objective whose recipe generates; `sample.decode` a module;
    sampler options take the values that recipe allows; `sample.steps` is positive."""
    from composer.recipes import GENERATORS, SAMPLE_CHOICES

    sample = spec.sample
    modules = [m.name for m in spec.modules]
    if sample.decode is not None and sample.decode not in modules:
        raise spec.error(f"unknown module '{sample.decode}'{did_you_mean(str(sample.decode), modules)}",
                         "sample", "decode")
    if sample.steps < 1:
        raise spec.error(f"expected a positive number of sampler steps, got {sample.steps}", "sample", "steps")
    if sample.objective is None:
        return
    recipes = {o.name: o.recipe for o in spec.objectives}
    if sample.objective not in recipes:
        raise spec.error(f"unknown objective '{sample.objective}'{did_you_mean(str(sample.objective), recipes)}",
                         "sample", "objective")
    recipe = recipes[sample.objective]
    if recipe not in GENERATORS:
        raise spec.error(f"objective '{sample.objective}' (recipe {recipe}) does not generate; recipes that do: "
                         f"{', '.join(sorted(GENERATORS))}", "sample", "objective")
    for key, allowed in SAMPLE_CHOICES.get(recipe, {}).items():
        value = getattr(sample, key)
        if value is not None and value not in allowed:
            raise spec.error(f"unknown {key} '{value}'{did_you_mean(str(value), allowed)}", "sample", key)


def _check_metrics(spec: Spec) -> None:
    """`eval.metrics`: known names and options, checked before training rather than after it."""
    from composer.metrics import METRICS

    for name, options in (spec.eval.metrics or {}).items():
        path = ("eval", "metrics", name)
        if name not in METRICS:
            raise spec.error(f"unknown metric '{name}'{did_you_mean(name, METRICS)}", *path)
        if options is not None and not isinstance(options, dict):
            raise spec.error(f"expected a mapping of metric options, got {options!r}", *path)
        _bind(spec, METRICS[name], options or {}, path, f"metric {name}", supplied=("samples", "table", "runner"))
        if "samples" in inspect.signature(METRICS[name]).parameters and isinstance(spec.sample.output, list):
            raise spec.error(f"metric {name} scores generated samples: sample.output must name one tensor, "
                             "not a list", *path)


def _check_sample_shapes(spec: Spec, graph: Graph) -> None:
    output = spec.sample.output
    if isinstance(output, list) and len({graph.shapes.get(n) for n in output}) > 1:
        shapes = ", ".join(f"{n} {list(graph.shapes.get(n, ()))}" for n in output)
        raise spec.error(f"tensors shown side by side need one shape, got {shapes}", "sample", "output")


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
                                 "every parameter has exactly one optimizer", "optimizers", opt.name, "params")
            if graph.param_counts[name] == 0:
                raise spec.error(f"module '{name}' has no parameters to optimize", "optimizers", opt.name, "params")
            owner[name] = opt.name
    return owner


def _check_terms(spec: Spec, graph: Graph) -> None:
    used = set().union(*(graph.upstream[n] for n in graph.nodes)) if graph.nodes else set()
    for module in spec.modules:
        if graph.param_counts[module.name] and module.name not in graph.owner and module.name in used:
            trained_by_terms = any(module.name in (t.trains or ()) for t in graph.terms)
            if trained_by_terms or not module.weights:
                raise spec.error(f"module '{module.name}' has {graph.param_counts[module.name]:,} parameters "
                                 "but no optimizer updates it: add it to an optimizer's params "
                                 "(or give it 'weights:' to use it fixed)", "modules", module.name)
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
