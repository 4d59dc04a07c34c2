"""Safe YAML loading that remembers where every key came from, and `key=value` overrides.

Parsing is `yaml.SafeLoader` only: composing nodes and constructing plain scalars, lists and
dicts. Nothing in a spec can import or execute code.
"""
from __future__ import annotations

from pathlib import Path

import re

import yaml

from .errors import Loc, SpecError

Locs = dict[tuple, Loc]


class Loader(yaml.SafeLoader):
    """SafeLoader that also reads `3e-4` and `1e5` as floats (YAML 1.2 style, as users write)."""


Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)$"),
    list("-+0123456789."),
)


def load_text(text: str, file: str) -> tuple[dict, Locs]:
    """Parse YAML text into plain data plus a map from key path to source location."""
    try:
        root = yaml.compose(text, Loader=Loader)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        loc = Loc(file, mark.line + 1, mark.column + 1) if mark else Loc(file)
        problem = getattr(err, "problem", None) or str(err)
        raise SpecError(f"malformed YAML: {problem}", loc=loc) from None
    locs: Locs = {}
    data = _construct(root, (), file, locs) if root is not None else {}
    if not isinstance(data, dict):
        raise SpecError("a graph spec must be a mapping of sections", loc=Loc(file, 1, 1))
    return data, locs


def load_file(path: str | Path) -> tuple[dict, Locs]:
    path = Path(path)
    if not path.is_file():
        raise SpecError(f"no such graph file: {path}", loc=Loc(str(path)))
    return load_text(path.read_text(), str(path))


def _construct(node, path: tuple, file: str, locs: Locs):
    locs[path] = Loc(file, node.start_mark.line + 1, node.start_mark.column + 1)
    if node.tag not in PLAIN_TAGS:
        raise SpecError(f"unsupported YAML tag '{node.tag}': a graph file holds plain data only",
                        _dotted(path), _loc(node, file))
    if isinstance(node, yaml.MappingNode):
        out = {}
        for key_node, value_node in node.value:
            key = Loader(" ").construct_object(key_node)
            if not isinstance(key, (str, int)):
                raise SpecError("keys must be strings", loc=_loc(key_node, file))
            if key in out:
                raise SpecError(f"duplicate key '{key}'", _dotted(path + (key,)), _loc(key_node, file))
            out[key] = _construct(value_node, path + (key,), file, locs)
            locs[path + (key,)] = _loc(key_node, file)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_construct(item, path + (i,), file, locs) for i, item in enumerate(node.value)]
    return Loader(" ").construct_object(node)


PLAIN_TAGS = {f"tag:yaml.org,2002:{t}" for t in ("map", "seq", "str", "int", "float", "bool", "null")}


def _loc(node, file: str) -> Loc:
    return Loc(file, node.start_mark.line + 1, node.start_mark.column + 1)


def _dotted(path: tuple) -> str:
    return ".".join(str(p) for p in path)


def parse_override(text: str) -> tuple[tuple, object]:
    """`train.steps=200` -> (("train", "steps"), 200); the value is parsed as a YAML scalar."""
    if "=" not in text:
        raise SpecError(f"override '{text}' is not of the form key.path=value", key=text)
    key, raw = text.split("=", 1)
    if not key.strip():
        raise SpecError(f"override '{text}' has an empty key", key=text)
    try:
        value = yaml.load(raw, Loader=Loader) if raw.strip() else None
    except yaml.YAMLError:
        raise SpecError(f"override value '{raw}' is not valid YAML", key=key) from None
    return tuple(key.strip().split(".")), value


def apply_overrides(data: dict, locs: Locs, overrides) -> dict:
    """Set each `key.path=value` in a copy of `data` (creating missing mappings)."""
    import copy

    data = copy.deepcopy(data)
    for text in overrides or ():
        path, value = parse_override(text) if isinstance(text, str) else text
        node = data
        for depth, part in enumerate(path[:-1]):
            child = node.get(part) if isinstance(node, dict) else None
            if child is None:
                child = node[part] = {}
            if not isinstance(child, dict):
                raise SpecError(f"cannot set a key inside a {type(child).__name__}", _dotted(path[: depth + 1]))
            node = child
        node[path[-1]] = value
        for stale in [k for k in locs if k[:len(path)] == path]:
            del locs[stale]            # the file's locations inside the replaced value
        locs[path] = Loc("<override>")
    return data
