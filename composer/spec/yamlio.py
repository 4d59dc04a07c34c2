"""Safe YAML loading that remembers where every key came from, and `key=value` overrides.

Parsing is `yaml.SafeLoader` only: composing nodes and constructing plain scalars, lists and
dicts. Nothing in a spec can import or execute code.
"""
from __future__ import annotations

from pathlib import Path

import re

import yaml

from composer.errors import Loc, SpecError, did_you_mean

Locs = dict[tuple, Loc]

MAX_BYTES = 1 << 20       # a graph file is a page of text; 1 MiB is generous
MAX_VALUES = 20_000       # keys, items and scalars after alias expansion ("billion laughs")
MAX_DEPTH = 64            # nesting of mappings and lists
DELETE = "~delete"        # as a value in an extending file or an override: remove the key (composer/extends.py)


class Loader(yaml.SafeLoader):
    """SafeLoader that also reads `3e-4` and `1e5` as floats (YAML 1.2 style, as users write)."""


Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)$"),
    list("-+0123456789."),
)


def load_text(text: str, file: str) -> tuple[dict, Locs]:
    """Parse YAML text into plain data plus a map from key path to source location; bounded in
    size, nesting depth and alias expansion, so a hostile file fails fast."""
    if len(text) > MAX_BYTES:
        raise SpecError(f"the file has {len(text):,} characters; a graph file may have at most {MAX_BYTES:,}",
                        loc=Loc(file, 1, 1))
    too_deep = _too_deep(text)
    if too_deep is not None:
        raise SpecError(f"the file nests deeper than {MAX_DEPTH} levels", loc=_at(text, too_deep, file))
    try:
        root = yaml.compose(text, Loader=Loader)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        position = getattr(err, "position", None)        # a ReaderError (e.g. a NUL byte) has only this
        loc = (Loc(file, mark.line + 1, mark.column + 1) if mark else
               _at(text, position, file) if isinstance(position, int) else Loc(file, 1, 1))
        problem = getattr(err, "problem", None) or str(err)
        line = text.splitlines()[loc.line - 1] if 0 < loc.line <= len(text.splitlines()) else ""
        hint = (" (inside {...} or [...], quote a reference: \"${a.b}\")"
                if "${" in line and "\"${" not in line and "'${" not in line else "")
        raise SpecError(f"malformed YAML: {problem}{hint}", loc=loc) from None
    except RecursionError:
        raise SpecError(f"the file nests deeper than {MAX_DEPTH} levels", loc=Loc(file, 1, 1)) from None
    locs: Locs = {}
    data = _construct(root, (), file, locs, [0], Loader("")) if root is not None else {}
    if not isinstance(data, dict):
        raise SpecError("a graph spec must be a mapping of sections", loc=Loc(file, 1, 1))
    return data, locs


def load_file(path: str | Path) -> tuple[dict, Locs]:
    path = Path(path)
    if not path.exists():
        raise SpecError(f"no such graph file: {path}", loc=Loc(str(path)))
    if not path.is_file():       # a folder, a FIFO or a device: never read (a FIFO would block)
        raise SpecError(f"{path} is not a regular file", loc=Loc(str(path)))
    if path.stat().st_size > MAX_BYTES:
        raise SpecError(f"the file has {path.stat().st_size:,} bytes; a graph file may have at most {MAX_BYTES:,}",
                        loc=Loc(str(path), 1, 1))
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        good = raw[:err.start].decode("utf-8", "replace")
        raise SpecError(f"not UTF-8 text (byte {err.start}: {err.reason}); save the file as UTF-8",
                        loc=_at(good, len(good), str(path))) from None
    return load_text(text.removeprefix("\ufeff"), str(path))


def _too_deep(text: str) -> int | None:
    """The offset where flow brackets ([ {) nest deeper than MAX_DEPTH, found before parsing (a deep
    file would make the parser recurse for seconds before it fails); None when they do not."""
    depth = 0
    for offset, char in enumerate(text):
        if char in "[{":
            depth += 1
            if depth > MAX_DEPTH:
                return offset
        elif char in "]}":
            depth = max(0, depth - 1)
    return None


def _at(text: str, offset: int, file: str) -> Loc:
    """The location of a character offset: 1-based line and column."""
    line = text.count("\n", 0, offset)
    return Loc(file, line + 1, offset - (text.rfind("\n", 0, offset) + 1) + 1)


def _construct(node, path: tuple, file: str, locs: Locs, count: list, scalars: Loader):
    count[0] += 1
    if count[0] > MAX_VALUES:
        raise SpecError(f"more than {MAX_VALUES:,} values (aliases expanding?): a graph file holds plain data",
                        _dotted(path), _loc(node, file))
    if len(path) > MAX_DEPTH:
        raise SpecError(f"nested deeper than {MAX_DEPTH} levels", _dotted(path[:MAX_DEPTH]), _loc(node, file))
    locs[path] = Loc(file, node.start_mark.line + 1, node.start_mark.column + 1)
    if node.tag not in PLAIN_TAGS:
        raise SpecError(f"unsupported YAML tag '{node.tag}': a graph file holds plain data only",
                        _dotted(path), _loc(node, file))
    if isinstance(node, yaml.MappingNode):
        out = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode) or key_node.tag not in PLAIN_TAGS:
                raise SpecError("keys must be plain strings (YAML merge keys '<<', tags and complex keys "
                                "are not supported)", _dotted(path), _loc(key_node, file))
            key = _scalar(scalars, key_node, path, file)
            if not isinstance(key, (str, int)) or isinstance(key, bool):
                raise SpecError(f"keys must be strings, got {key!r}", _dotted(path), _loc(key_node, file))
            if key in out:
                raise SpecError(f"duplicate key '{key}'", _dotted(path + (key,)), _loc(key_node, file))
            out[key] = _construct(value_node, path + (key,), file, locs, count, scalars)
            locs[path + (key,)] = _loc(key_node, file)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_construct(item, path + (i,), file, locs, count, scalars) for i, item in enumerate(node.value)]
    return _scalar(scalars, node, path, file)


def _scalar(scalars: Loader, node, path: tuple, file: str):
    """A plain scalar's value; a standard tag on a value it cannot take (`!!int abc`) is an error."""
    try:
        return scalars.construct_object(node)
    except (ValueError, KeyError, IndexError, TypeError, yaml.YAMLError):
        raise SpecError(f"'{node.value}' cannot be read as {node.tag.rsplit(':', 1)[-1]}", _dotted(path),
                        _loc(node, file)) from None


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
    path = tuple(key.strip().split("."))
    return path, (_override_value(raw, path) if raw.strip() else None)


def _override_value(raw: str, path: tuple):
    """An override's value, parsed under the same bounds as a graph file (size, nesting, alias
    expansion, plain tags only): `train.ema={...}` with a billion laughs fails at once."""
    where = Loc("<override>")
    if len(raw) > MAX_BYTES:
        raise SpecError(f"the value has {len(raw):,} characters; an override may have at most {MAX_BYTES:,}",
                        _dotted(path), where)
    if _too_deep(raw) is not None:
        raise SpecError(f"the value nests deeper than {MAX_DEPTH} levels", _dotted(path), where)
    try:
        node = yaml.compose(raw, Loader=Loader)
    except (yaml.YAMLError, RecursionError):
        raise SpecError(f"override value '{raw[:200]}' is not valid YAML", _dotted(path), where) from None
    try:
        return _construct(node, (), "<override>", {}, [0], Loader("")) if node is not None else None
    except SpecError as err:
        inner = f".{err.key}" if err.key else ""
        raise SpecError(err.message, _dotted(path) + inner, where) from None


def check_unique(overrides) -> None:
    """A key given twice on the command line is a mistake (the last one would silently win). In
    Python, `api.load(file, [*base, *more])` composes lists: there a later key replaces an earlier."""
    given = set()
    for text in overrides:
        key = text.split("=", 1)[0].strip()
        if key in given:
            raise SpecError("the key is given twice on the command line: give each key once", key,
                            Loc("<override>"))
        given.add(key)


def apply_overrides(data: dict, locs: Locs, overrides) -> dict:
    """Set each `key.path=value` in a copy of `data` (creating missing mappings); the value
    `~delete` removes the key instead. Applied before `${...}` references are resolved, so an
    override of a referenced key changes every reference."""
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
        for stale in [k for k in locs if k[:len(path)] == path]:
            del locs[stale]            # the file's locations inside the replaced value
        if value == DELETE:
            if path[-1] not in node:
                raise SpecError(f"'{DELETE}': there is no such key to delete{did_you_mean(str(path[-1]), node)}",
                                _dotted(path), Loc("<override>"))
            del node[path[-1]]
            continue
        node[path[-1]] = value
        locs[path] = Loc("<override>")
    return data
