"""One registry type for every named thing a graph file can name.

Blocks, recipes, flow ops, data sources, noise kinds, samplers, diffusion schedules, metrics,
optimizers, LR and weight schedules, adversarial losses, penalties and DSM weightings all live in
`Registry` objects: a read-only mapping from name to entry with a "did you mean" lookup, the
keyword signature YAML arguments are checked against, a one-line doc per entry and a listing.

Entries are added explicitly, one line each, by the module that defines them (the built-ins) or
by a plugin's registration function (see composer/plugins.py). Nothing registers itself as a side
effect of being imported.
"""
from __future__ import annotations

import importlib
import inspect
from collections.abc import Mapping
from dataclasses import dataclass

from composer.errors import ComposerError, did_you_mean


@dataclass(frozen=True)
class Argument:
    name: str
    default: str | None      # repr of the default; None when required
    annotation: str


class Registry(Mapping):
    """name -> entry. `kind` is the singular noun used in messages ("block", "recipe", ...);
    `supplied` names arguments composer passes itself, never written in YAML."""

    def __init__(self, kind: str, entries: dict | None = None, *, supplied: tuple = (),
                 docs: dict | None = None, examples: dict | None = None):
        self.kind, self.supplied = kind, tuple(supplied)
        self._entries: dict = {}
        self._docs: dict[str, str] = {}
        self._examples: dict[str, str] = {}
        self.origin: dict[str, str] = {}
        for name, entry in (entries or {}).items():
            self.add(name, entry, doc=(docs or {}).get(name), example=(examples or {}).get(name))

    # -------------------------------------------------------------- adding
    def add(self, name: str, entry, *, doc: str | None = None, origin: str = "composer",
            example: str | None = None):
        """Register `entry` under `name`; returns the entry (so it also works as a decorator
        through `registry.register(name)`). A name is registered once: a second, different
        entry is an error naming who registered the first. `example` is a YAML snippet that
        uses the entry (`{block: SirenMLP, features: 64}`), for entries whose docstring has no
        `Example:` line and no shipped graph file uses."""
        if not isinstance(name, str) or not name.isidentifier():
            raise ComposerError(f"{self.kind} name {name!r} must be an identifier")
        if name in self._entries and self._entries[name] is not entry:
            raise ComposerError(f"{self.kind} '{name}' is already registered (by {self.origin[name]}); "
                                f"{origin} cannot register another entry under that name")
        self._entries[name], self.origin[name] = entry, origin
        if doc:
            self._docs[name] = doc
        if example:
            self._examples[name] = example
        return entry

    def remove(self, name: str) -> None:
        """Take an entry out (a failed plugin registration is undone with this)."""
        self._entries.pop(name, None)
        self._docs.pop(name, None)
        self._examples.pop(name, None)
        self.origin.pop(name, None)

    def register(self, name: str | None = None, *, doc: str | None = None, origin: str = "composer",
                 example: str | None = None):
        """Decorator form of `add` for use inside a plugin's registration function."""
        return lambda entry: self.add(name or entry.__name__, entry, doc=doc, origin=origin, example=example)

    # -------------------------------------------------------------- reading
    def __getitem__(self, name):
        try:
            return self._entries[name]
        except TypeError:            # an unhashable name from YAML (a list, a mapping): not here
            raise KeyError(name) from None

    def __contains__(self, name) -> bool:
        try:
            return name in self._entries
        except TypeError:
            return False

    def __iter__(self):
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def unknown(self, name) -> str:
        """The message for a name that is not here: "unknown block 'X' (did you mean 'Y'?)"."""
        return f"unknown {self.kind} '{name}'{did_you_mean(str(name), self._entries)}"

    def doc(self, name: str) -> str:
        """The entry's one-line doc: given at registration, else its docstring's first paragraph
        joined onto one line."""
        if name in self._docs:
            return self._docs[name]
        entry = self._entries[name]
        own = entry.__dict__.get("__doc__") if isinstance(entry, type) else getattr(entry, "__doc__", None)
        text = inspect.cleandoc(own or "").strip()       # a class's own docstring, never a base's
        return " ".join(text.split("\n\n")[0].split())

    def example(self, name: str) -> str:
        """A YAML snippet that uses the entry: given at registration, else the first `quoted`
        text of the docstring line that starts with `Example:` (or the rest of that line); ""
        when it has neither."""
        if name in self._examples:
            return self._examples[name]
        entry = self._entries[name]
        own = entry.__dict__.get("__doc__") if isinstance(entry, type) else getattr(entry, "__doc__", None)
        for line in inspect.cleandoc(own or "").splitlines():
            if line.startswith("Example:"):
                text = line[len("Example:"):].strip()
                return text.split("`")[1] if text.startswith("`") and text.count("`") >= 2 else text
        return ""

    def arguments(self, name: str) -> list[Argument]:
        """The YAML arguments of an entry: keyword parameters, minus those composer supplies."""
        try:
            params = inspect.signature(self._entries[name]).parameters.values()
        except (TypeError, ValueError):
            return []
        out = []
        for p in params:
            if p.kind is p.VAR_KEYWORD:
                out.append(Argument(f"**{p.name}", None, ""))
                continue
            if p.kind in (p.VAR_POSITIONAL, p.POSITIONAL_ONLY) or p.name in self.supplied:
                continue
            default = None if p.default is p.empty else repr(p.default)
            annotation = "" if p.annotation is p.empty else str(p.annotation)
            out.append(Argument(p.name, default, annotation.replace("'", "")))
        return out

    def accepts(self, name: str, key: str) -> bool:
        """Whether the entry takes the YAML argument `key`: a keyword parameter of that name (not one
        composer supplies) or a `**options` catch-all."""
        return key not in self.supplied and any(a.name == key or a.name.startswith("**")
                                                for a in self.arguments(name))

    def describe(self) -> list[dict]:
        """Every entry as plain data: name, doc, example, arguments, origin (for `composer list
        --json`)."""
        return [{"name": name, "doc": self.doc(name), "example": self.example(name), "origin": self.origin[name],
                 "arguments": [vars(a) for a in self.arguments(name)]} for name in sorted(self)]

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}, {len(self)} entries)"


# kind (as `composer list KIND` spells it) -> the package that declares it: each package lists its
# own registries in `REGISTRIES`. Imported on first use so that `composer validate` does not import
# what a graph does not need.
KINDS = {
    "blocks": "composer.blocks",
    "recipes": "composer.recipes",
    "ops": "composer.ops",
    "sources": "composer.data",
    "noise": "composer.data",
    "samplers": "composer.recipes",
    "schedules": "composer.recipes",
    "weightings": "composer.recipes",
    "losses": "composer.recipes",
    "penalties": "composer.recipes",
    "metrics": "composer.metrics",
    "optimizers": "composer.run",
    "lr_schedules": "composer.run",
    "weight_schedules": "composer.graph",
    "callbacks": "composer.run.default_callbacks",
}


def get(kind: str) -> Registry:
    """The registry of `kind` ("blocks", "recipes", ...), from its package's `REGISTRIES`."""
    if kind not in KINDS:
        raise ComposerError(f"unknown registry '{kind}'{did_you_mean(kind, KINDS)}")
    return importlib.import_module(KINDS[kind]).REGISTRIES[kind]
