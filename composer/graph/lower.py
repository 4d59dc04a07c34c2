"""Spec sections -> IR nodes: inputs (with their data fields), flow entries (module calls and
flow ops) and objectives (recipe expansions, with the options every objective takes).

Every argument written in YAML is checked against the keyword signature of the registry entry
it goes to, and every recipe argument annotated as a tensor name is checked to be one (or a
list, where a recipe takes several), before anything is built.
"""
from __future__ import annotations

import inspect
import typing
from dataclasses import dataclass, field, replace

from composer.errors import did_you_mean
from composer.graph.nodes import Expansion, Generator, Node, Tensor, Tensors
from composer.spec.schema import ObjectiveSpec, Spec


@dataclass
class Lowered:
    nodes: list[Node] = field(default_factory=list)
    aliases: dict[str, str] = field(default_factory=dict)       # `real.x` -> `real`
    generators: dict[str, Generator] = field(default_factory=dict)


def lower(spec: Spec) -> Lowered:
    out = Lowered()
    modules = {m.name for m in spec.modules}
    _input_nodes(spec, out)
    out.nodes += _flow_nodes(spec, modules)
    for obj in spec.objectives:
        _objective_nodes(spec, obj, out)
    return out


def bind_args(spec: Spec, fn, args: dict, path: tuple, what: str, supplied=()) -> None:
    """Check YAML arguments against a callable's keyword signature before calling it (`supplied`:
    arguments composer passes itself, never given in YAML)."""
    signature = inspect.signature(fn)
    params = [p for p in signature.parameters.values() if p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)
              and p.name not in supplied]
    open_keywords = any(p.kind is p.VAR_KEYWORD for p in signature.parameters.values())
    for key in args:
        if key in supplied or (key not in signature.parameters and not open_keywords):
            names = [p.name for p in params]
            raise spec.error(f"{what} has no argument '{key}'{did_you_mean(key, names)}", *path, key)
    missing = [p.name for p in params if p.default is p.empty and p.name not in args
               and p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)]
    if missing:
        raise spec.error(f"{what} needs argument(s): {', '.join(missing)}", *path)


def check_ranges(spec: Spec, fn, args: dict, path: tuple, what: str, sizes: bool = False) -> None:
    """Numbers within the ranges their arguments declare (composer/ranges.py: `hidden: Size`,
    `p: Fraction`; `sizes`: a plain `int` argument is a size >= 1, as for blocks and sources)."""
    from composer.ranges import problems

    for key, expected in problems(fn, args, sizes):
        raise spec.error(f"{what}: '{key}' takes {expected}, got {args[key]!r}", *path, key)


def check_tensor_args(spec: Spec, fn, args: dict, path: tuple, what: str) -> None:
    """Arguments are checked against their annotations: `Tensor` names one tensor, `Tensors` one
    or a non-empty list; `str`, `int`, `float`, `bool` (optionally `| None`) take such values."""
    kinds_of = annotated_kinds(fn)
    for key, value in args.items():
        kinds = kinds_of.get(key, {None})
        if Tensor in kinds and not isinstance(value, str):
            raise spec.error(f"{what}: '{key}' takes one tensor name, got {value!r}"
                             + (" (a list is accepted only where several tensors are)" if isinstance(value, list) else ""),
                             *path, key)
        if Tensors in kinds and not (isinstance(value, str) or (
                isinstance(value, list) and value and all(isinstance(v, str) for v in value))):
            raise spec.error(f"{what}: '{key}' takes a tensor name or a list of them, got {value!r}", *path, key)
        expected = _plain_type(kinds)
        if expected is not None and not _is(value, expected, type(None) in kinds):
            raise spec.error(f"{what}: '{key}' takes {SHOWN[expected]}, got {value!r}", *path, key)


def annotated_kinds(fn) -> dict[str, set]:
    """Each annotated argument's types, unions unpacked (`Tensor | None` -> {Tensor, NoneType});
    an entry without resolvable hints has none (it is not checked)."""
    try:
        hints = typing.get_type_hints(fn)
    except Exception:  # noqa: BLE001
        return {}
    return {key: {hint} | set(typing.get_args(hint)) for key, hint in hints.items()}


SHOWN = {str: "a name", int: "an integer", float: "a number", bool: "true or false"}


def _plain_type(kinds: set):
    """The one plain type an annotation allows (str, int, float, bool), else None (not checked)."""
    plain = {k for k in kinds if k in SHOWN}
    others = {k for k in kinds if k is not None and k is not type(None) and k not in SHOWN}
    return next(iter(plain)) if len(plain) == 1 and not others and plain != {None} else None


def _is(value, expected, optional: bool) -> bool:
    if value is None:
        return optional
    if expected is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if expected is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, expected)


# ------------------------------------------------------------------------------ inputs
def _input_nodes(spec: Spec, out: Lowered) -> None:
    from composer.data.inputs import fields, source_of
    from composer.data.noise import NOISE, NOISE_KEYS

    for item in spec.inputs:
        path, key = ("inputs", item.name), f"inputs.{item.name}"
        if item.kind == "data":
            source = source_of(spec, item)
            bind_args(spec, source, item.args, path, f"source {item.target}")
            check_tensor_args(spec, source.load, item.args, path, f"source {item.target}")
            check_ranges(spec, source.load, item.args, path, f"source {item.target}", sizes=True)
            names = list(fields(spec, item))
            out.nodes.append(Node(item.name, "data", item.target, args=item.args, loc=item.loc, key=key))
            out.nodes += [Node(f"{item.name}.{f}", "field", f, (item.name,), loc=item.loc, key=key) for f in names[1:]]
            out.aliases[f"{item.name}.{names[0]}"] = item.name
            continue
        if item.target not in NOISE:
            raise spec.error(NOISE.unknown(item.target), *path, "noise")
        options = {k: v for k, v in item.args.items() if k not in NOISE_KEYS}
        bind_args(spec, NOISE[item.target], options, path, f"noise {item.target}", NOISE.supplied)
        check_ranges(spec, NOISE[item.target], options, path, f"noise {item.target}", sizes=True)
        like = item.args.get("like")
        if like is not None and not isinstance(like, str):
            raise spec.error(f"'like' takes one tensor name, got {like!r}", *path, "like")
        out.nodes.append(Node(item.name, "noise", item.target, (like,) if like else (), item.args,
                              loc=item.loc, key=key))


# ------------------------------------------------------------------------------ flow
def _flow_nodes(spec: Spec, modules: set) -> list[Node]:
    from composer.ops.flow import OPS

    nodes = []
    for entry in spec.flow:
        path, key = ("flow", entry.name), f"flow.{entry.name}"
        if entry.target in modules and entry.target in OPS:
            raise spec.error(f"module '{entry.target}' has the name of a flow op: rename the module", *path)
        module, _, method = entry.target.partition(".")
        if method and module in modules:
            nodes.append(_method_call(spec, entry, module, method, path, key))
            continue
        if entry.target in modules:
            if entry.args:
                raise spec.error(f"module {entry.target} takes tensors only; its arguments "
                                 f"({', '.join(entry.args)}) belong under modules.{entry.target}", *path)
            nodes.append(Node(entry.name, "call", entry.target, entry.inputs, loc=entry.loc, key=key))
            continue
        if entry.target not in OPS:
            raise spec.error(f"unknown module or op '{entry.target}'"
                             f"{did_you_mean(entry.target, set(modules) | set(OPS))}", *path)
        bind_args(spec, OPS[entry.target], entry.args, path, f"op {entry.target}")
        check_tensor_args(spec, OPS[entry.target], entry.args, path, f"op {entry.target}")
        try:
            op = OPS[entry.target](**entry.args)
        except (ValueError, TypeError) as err:
            raise spec.error(f"op {entry.target}: {err}", *path) from None
        nodes.append(Node(entry.name, "fn", entry.target, entry.inputs, entry.args, op=op, loc=entry.loc, key=key))
    return nodes


def _method_call(spec: Spec, entry, module: str, method: str, path: tuple, key: str) -> Node:
    """`vae.encode(x)`: a method the module's block offers to the flow (its `flow_methods`)."""
    offered = flow_methods(spec, module)
    if method not in offered:
        known = f": it offers {', '.join(offered)}" if offered else ": its block offers none (only calls, 'M(x)')"
        raise spec.error(f"module {module} has no flow method '{method}'{did_you_mean(method, offered)}{known}",
                         *path)
    if entry.args:
        raise spec.error(f"{entry.target} takes tensors only, got {', '.join(entry.args)}", *path)
    return Node(entry.name, "call", module, entry.inputs, {"method": method}, loc=entry.loc, key=key)


def flow_methods(spec: Spec, module: str) -> tuple[str, ...]:
    """The methods a module's block lets the flow call (`flow_methods` on the block class)."""
    from composer import registry

    found = next(m for m in spec.modules if m.name == module)
    blocks = registry.get("blocks")
    if not isinstance(found.block, str) or found.block not in blocks:
        return ()
    return tuple(getattr(blocks[found.block], "flow_methods", ()))


# ------------------------------------------------------------------------------ objectives
def _objective_nodes(spec: Spec, obj: ObjectiveSpec, out: Lowered) -> None:
    from composer.recipes import RECIPES

    path = ("objectives", obj.name)
    if obj.recipe not in RECIPES:
        raise spec.error(RECIPES.unknown(obj.recipe), *path, "recipe")
    expand = RECIPES[obj.recipe]
    bind_args(spec, expand, obj.args, path, f"recipe {obj.recipe}")
    check_tensor_args(spec, expand, obj.args, path, f"recipe {obj.recipe}")
    check_ranges(spec, expand, obj.args, path, f"recipe {obj.recipe}")
    try:
        made = expand(obj.name, **obj.args)
    except (ValueError, TypeError) as err:
        raise spec.error(str(err), *path) from None
    made = made if isinstance(made, Expansion) else Expansion(tuple(made))
    terms = {n.name[len(obj.name) + 1:] for n in made.nodes if n.kind == "term"}
    for term in obj.terms:
        if term not in terms:
            raise spec.error(f"objective '{obj.name}' has no term '{term}'{did_you_mean(str(term), terms)}",
                             *path, "terms", term)
    for node in made.nodes:
        node = replace(node, loc=obj.loc, key=f"objectives.{obj.name}", objective=obj.name)
        out.nodes.append(_term_options(spec, obj, node) if node.kind == "term" else node)
    if made.generator is not None:
        out.generators[obj.name] = made.generator


def _term_options(spec: Spec, obj: ObjectiveSpec, node: Node) -> Node:
    """Apply the objective's `weight`/`every`/`trains` and the term's own entry under `terms:`
    (`trains` replaces the modules the recipe lets the term move)."""
    short = node.name[len(obj.name) + 1:]
    own = obj.terms.get(short) or {}
    weight, schedule = node.weight, None
    for where, value in ((("weight",), obj.weight), (("terms", short, "weight"), own.get("weight", 1.0))):
        if isinstance(value, dict):
            if schedule is not None:
                raise spec.error("one weight schedule per term: the objective already has one",
                                 "objectives", obj.name, *where)
            schedule = _schedule(spec, value, ("objectives", obj.name, *where))
        else:
            weight *= float(value)
    every = own.get("every", obj.every)
    trains = own.get("trains", obj.trains)
    if trains is not None:
        node = replace(node, trains=(trains,) if isinstance(trains, str) else tuple(trains))
    return replace(node, weight=weight, schedule=schedule, every=every)


def _schedule(spec: Spec, value: dict, path: tuple):
    from composer.graph.weights import WEIGHT_SCHEDULES, WeightSchedule

    options = {k: v for k, v in value.items() if k != "type"}
    if value["type"] not in WEIGHT_SCHEDULES:
        raise spec.error(WEIGHT_SCHEDULES.unknown(value["type"]), *path, "type")
    bind_args(spec, WEIGHT_SCHEDULES[value["type"]], options, path, f"weight schedule {value['type']}",
              WEIGHT_SCHEDULES.supplied)
    check_ranges(spec, WEIGHT_SCHEDULES[value["type"]], options, path, f"weight schedule {value['type']}")
    try:
        return WeightSchedule(value["type"], options)
    except (ValueError, TypeError, ZeroDivisionError) as err:
        raise spec.error(f"weight schedule {value['type']}: {err}", *path) from None

