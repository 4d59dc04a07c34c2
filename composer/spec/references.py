"""`${section.key}` references between the keys of one spec, resolved after `extends:` and
`key=value` overrides (so `modules.G.latent=64` changes every `${modules.G.latent}`).

    modules:
      G: {block: DCGANGenerator, latent: 32, image_size: 16, channels: 1}
      D: {block: DCGANDiscriminator, image_size: "${modules.G.image_size}", channels: 1}
    train: {name_tag: "G${modules.G.latent}"}      # inside a longer string: the value's text

A value that is exactly `${path}` takes the referenced value with its type (a number, a list, a
mapping); inside a longer string each `${path}` is replaced by the text of a scalar. `$${` writes a
literal `${`. A path is dotted keys; a whole number indexes a list (`${inputs.z.shape.0}`).
References may chain; cycles, unknown keys (with the nearest names) and malformed references are
errors located at the line that holds the reference. Only keys written in the spec (its files and
overrides) can be referenced, not defaults. The result is bounded like a file (yamlio limits).

Like OmegaConf's interpolation (which Hydra uses), without its resolvers: nothing is evaluated.
"""
from __future__ import annotations

import re

from composer.errors import Loc, SpecError, did_you_mean
from composer.spec.yamlio import MAX_BYTES, MAX_VALUES, Locs

TOKEN = re.compile(r"\$\$\{|\$\{([^{}]*)\}|\$\{")
PATH = re.compile(r"[A-Za-z0-9_\-]+(?:\.[A-Za-z0-9_\-]+)*")


def resolve(data: dict, locs: Locs) -> dict:
    """A copy of `data` with every `${...}` replaced by the value it names."""
    if "extends" in data:
        raise SpecError("'extends' is applied when a graph file is read (composer.spec.schema.load); "
                        "a spec built in Python or an override cannot extend a file", "extends",
                        locs.get(("extends",)))
    resolver = _Resolver(data, locs)
    return _copy(resolver.value((), data, resolved=False), [0], locs)


class _Resolver:
    def __init__(self, data: dict, locs: Locs):
        self.data, self.locs = data, locs
        self.done: dict[tuple, object] = {}        # reference site -> its resolved value
        self.stack: list[tuple] = []               # sites being resolved (for cycles)

    def value(self, path: tuple, raw, resolved: bool):
        """The subtree `raw` at `path` with its references resolved (as is when `resolved`)."""
        if resolved:
            return raw
        if isinstance(raw, dict):
            return {key: self.value(path + (key,), item, False) for key, item in raw.items()}
        if isinstance(raw, list):
            return [self.value(path + (i,), item, False) for i, item in enumerate(raw)]
        if isinstance(raw, str) and "${" in raw:
            return self.site(path, raw)
        return raw

    def site(self, path: tuple, text: str):
        """The value of the string `text` at `path` that holds references or escapes."""
        if path in self.done:
            return self.done[path]
        if path in self.stack:
            cycle = " -> ".join(_dotted(p) for p in self.stack[self.stack.index(path):] + [path])
            raise self.fail(f"reference cycle: {cycle}", path)
        self.stack.append(path)
        parts = self.parts(path, text)
        if len(parts) == 1 and isinstance(parts[0], tuple):
            result = self.lookup(path, parts[0])
        else:
            result = "".join(p if isinstance(p, str) else self.text(path, p) for p in parts)
            if len(result) > MAX_BYTES:
                raise self.fail(f"the value grows past {MAX_BYTES:,} characters through references", path)
        self.stack.pop()
        self.done[path] = result
        return result

    def parts(self, path: tuple, text: str) -> list:
        """`text` split into literal strings and referenced paths (tuples of keys)."""
        parts, end = [], 0
        for match in TOKEN.finditer(text):
            parts.append(text[end:match.start()])
            end = match.end()
            if match.group(0) == "$${":
                parts.append("${")
            elif match.group(1) is None:
                raise self.fail(f"'{text}': '${{' without its closing '}}' (references do not nest; write '$${{' for a "
                                "literal '${{')", path)
            elif not PATH.fullmatch(match.group(1).strip()):
                raise self.fail(f"'{match.group(0)}' is not a reference: expected '${{section.key}}' "
                                "(dotted keys; a number indexes a list)", path)
            else:
                parts.append(tuple(match.group(1).strip().split(".")))
        parts.append(text[end:])
        return [p for p in parts if p != ""]

    def lookup(self, site: tuple, target: tuple):
        """The resolved value that `target` names, for the reference at `site`."""
        name = "${" + ".".join(target) + "}"
        node, walked, resolved = self.data, (), False
        for part in target:
            node, key = self.child(site, name, node, walked, part)
            walked += (key,)
            if not resolved and isinstance(node, str) and "${" in node:
                node, resolved = self.site(walked, node), True
        if walked == site[:len(walked)]:
            raise self.fail(f"'{name}' refers to a value that contains this reference", site)
        return self.value(walked, node, resolved)

    def child(self, site: tuple, name: str, node, walked: tuple, part: str):
        """`node[part]`: a mapping's key (also a number key), or a list's index; else an error."""
        where = _dotted(walked) or "the spec"
        if isinstance(node, dict):
            for key in (part, int(part) if part.isdigit() else None):
                if key in node:
                    return node[key], key
            raise self.fail(f"'{name}': {where} has no key '{part}'{did_you_mean(part, node)}", site)
        if isinstance(node, list):
            if not part.isdigit() or int(part) >= len(node):
                raise self.fail(f"'{name}': {where} is a list of {len(node)} item(s); '{part}' is not an "
                                f"index 0..{len(node) - 1}", site)
            return node[int(part)], int(part)
        raise self.fail(f"'{name}': {where} is {_kind(node)}, it has no key '{part}'", site)

    def text(self, site: tuple, target: tuple) -> str:
        value = self.lookup(site, target)
        if isinstance(value, (dict, list)):
            name = "${" + ".".join(target) + "}"
            raise self.fail(f"'{name}' is {_kind(value)}: only a value that is exactly '{name}' can take "
                            "a mapping or a list (inside a longer string a reference is replaced by text)", site)
        if value is None or isinstance(value, bool):
            return {None: "null", True: "true", False: "false"}[value]
        return str(value)

    def fail(self, message: str, path: tuple) -> SpecError:
        return SpecError(message, _dotted(path), _nearest(self.locs, path))


def escape_literals(value):
    """A copy of resolved data in which every literal `${` is written `$${` again, so that the data
    resolves to itself (a Spec's `data`, the run folder's spec.yaml, `validate --print`)."""
    if isinstance(value, dict):
        return {k: escape_literals(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [escape_literals(v) for v in value]
    if isinstance(value, str):
        return value.replace("${", "$${")
    return value


def _copy(value, count: list, locs: Locs, path: tuple = ()):
    """A fresh tree (no shared parts, so YAML dumps it without aliases), at most MAX_VALUES values
    (references can repeat a subtree: `b: [${a}, ${a}]`, `c: [${b}, ${b}]`, ...)."""
    count[0] += 1
    if count[0] > MAX_VALUES:
        raise SpecError(f"more than {MAX_VALUES:,} values after resolving references", _dotted(path),
                        _nearest(locs, path))
    if isinstance(value, dict):
        return {k: _copy(v, count, locs, path + (k,)) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy(v, count, locs, path + (i,)) for i, v in enumerate(value)]
    return value


def _kind(value) -> str:
    kinds = {dict: "a mapping", list: "a list", str: "a string", bool: "a boolean", type(None): "null"}
    return kinds.get(type(value), f"a number ({value!r})" if isinstance(value, (int, float)) else type(value).__name__)


def _nearest(locs: Locs, path: tuple) -> Loc | None:
    return next((locs[path[:cut]] for cut in range(len(path), -1, -1) if path[:cut] in locs), None)


def _dotted(path: tuple) -> str:
    return ".".join(str(p) for p in path)
