"""One registry type for every named thing a graph file can name.

Blocks, recipes, flow ops, data sources, noise kinds, samplers, diffusion schedules, metrics,
optimizers, LR and weight schedules, adversarial losses, penalties and DSM weightings all live in
`Registry` objects: a read-only mapping from name to entry with a "did you mean" lookup, the
keyword signature YAML arguments are checked against, a one-line doc per entry and a listing.

Entries are added explicitly, one line each, by the module that defines them (the built-ins) or
by a plugin's registration function (see composer/plugins.py). Nothing registers itself as a side
effect of being imported.

A registry can also hold *namespaces*: `registry.namespace("diffusers", resolver)` makes every
name `diffusers.X` (and the bare `diffusers`, where the resolver takes it) an entry that the
resolver finds on first use, inside one library's own model namespace (see `Namespace`). Lookup,
`unknown()`, `arguments()`, `accepts()` and `doc()` work for such names as for registered ones;
iteration and `len` cover registered entries only, and listings show one line per namespace.
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


class MissingLibrary(ComposerError):
    """A namespace's library is not installed (or fails to import)."""


class Namespace:
    """Resolves the names under one prefix of a registry (`prefix.Name`, or the bare `prefix`)
    to entries, importing its library only when a name under it is looked up. Subclasses set
    `library` (the import name), `extra` (the pip extra that installs it), `shown` (how a listing
    names the family, e.g. "diffusers.<ModelClass>"), `doc` (one line), `example` (a YAML snippet)
    and `arguments` (what every entry of the family takes besides its own, for listings), and
    implement `entry(name)` (raise KeyError for a name the library does not offer), `names()`
    (for "did you mean") and, optionally, `hint(name)`."""

    library = extra = shown = doc = example = ""
    arguments: tuple = ()

    def load(self):
        """The library module; MissingLibrary with the install command when it cannot import."""
        try:
            return importlib.import_module(self.library)
        except ImportError as err:
            raise MissingLibrary(f"needs the '{self.library}' library, which is not installed "
                                 f"({err}): pip install 'composer-graphs[{self.extra or self.library}]'") from None
        except Exception as err:  # noqa: BLE001 -- an installed library that fails to import (a mismatched build)
            raise MissingLibrary(f"needs the '{self.library}' library, which is installed but fails to import "
                                 f"({type(err).__name__}: {err}): reinstall it for this torch, e.g. "
                                 f"pip install --force-reinstall 'composer-graphs[{self.extra or self.library}]'") from None

    def entry(self, name: str | None):
        raise NotImplementedError

    def names(self) -> list[str]:
        return []

    def hint(self, name: str | None) -> str:
        """What to write instead of a name this namespace does not offer ("" for did-you-mean)."""
        return ""


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
        self.namespaces: dict[str, Namespace] = {}
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
        if name in self.namespaces:
            raise ComposerError(f"{self.kind} '{name}' is the name of a namespace ({self.namespaces[name].shown})")
        if name in self._entries and self._entries[name] is not entry:
            raise ComposerError(f"{self.kind} '{name}' is already registered (by {self.origin[name]}); "
                                f"{origin} cannot register another entry under that name")
        self._entries[name], self.origin[name] = entry, origin
        if doc:
            self._docs[name] = doc
        if example:
            self._examples[name] = example
        return entry

    def namespace(self, prefix: str, resolver: Namespace, *, origin: str = "composer") -> Namespace:
        """Make every name `prefix.X` (and the bare `prefix`, where the resolver takes it) resolve
        through `resolver`; a prefix is registered once and never shadows a registered entry."""
        if not prefix.isidentifier():
            raise ComposerError(f"{self.kind} namespace {prefix!r} must be an identifier")
        if prefix in self.namespaces and self.namespaces[prefix] is not resolver:
            raise ComposerError(f"{self.kind} namespace '{prefix}' is already registered")
        if prefix in self._entries:
            raise ComposerError(f"{self.kind} namespace '{prefix}' has the name of a registered {self.kind}")
        self.namespaces[prefix] = resolver
        self.origin.setdefault(f"{prefix}.*", origin)
        return resolver

    def _split(self, name) -> tuple[Namespace, str | None] | None:
        """(resolver, the name after the dot or None) for a name under a namespace, else None."""
        if not isinstance(name, str):
            return None
        prefix, dot, rest = name.partition(".")
        if prefix not in self.namespaces or (dot and not rest):
            return None
        return self.namespaces[prefix], (rest if dot else None)

    def remove(self, name: str) -> None:
        """Take an entry out (a failed plugin registration is undone with this)."""
        if name.endswith(".*"):
            self.namespaces.pop(name[:-2], None)
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
        except KeyError:
            found = self._split(name)
            if found is None:
                raise
        resolver, rest = found
        try:
            return resolver.entry(rest)
        except MissingLibrary:
            raise KeyError(name) from None

    def __contains__(self, name) -> bool:
        try:
            self[name]
        except KeyError:
            return False
        return True

    def __iter__(self):
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def unknown(self, name) -> str:
        """The message for a name that is not here: "unknown block 'X' (did you mean 'Y'?)"; under
        a namespace, the library's own names are suggested, or the install command is given."""
        found = self._split(name)
        if found is None:
            shown = list(self._entries) + [n.shown for n in self.namespaces.values()]
            return f"unknown {self.kind} '{name}'{did_you_mean(str(name), shown)}"
        resolver, rest = found
        prefix = name.partition(".")[0]
        try:
            resolver.load()
        except MissingLibrary as err:
            return f"{self.kind} '{name}' {err}"
        names = [f"{prefix}.{n}" if n else prefix for n in resolver.names()]
        hint = resolver.hint(rest) or did_you_mean(str(name), names)
        if hint.startswith(" (expected one of") and len(names) > 12:
            hint = f" ({resolver.doc})"
        return f"unknown {self.kind} '{name}'{hint}"

    def doc(self, name: str) -> str:
        """The entry's one-line doc: given at registration, else its docstring's first paragraph
        joined onto one line."""
        if name in self._docs:
            return self._docs[name]
        entry = self[name]
        own = entry.__dict__.get("__doc__") if isinstance(entry, type) else getattr(entry, "__doc__", None)
        text = inspect.cleandoc(own or "").strip()       # a class's own docstring, never a base's
        return " ".join(text.split("\n\n")[0].split())

    def example(self, name: str) -> str:
        """A YAML snippet that uses the entry: given at registration, else the first `quoted`
        text of the docstring line that starts with `Example:` (or the rest of that line); ""
        when it has neither."""
        if name in self._examples:
            return self._examples[name]
        entry = self[name]
        own = entry.__dict__.get("__doc__") if isinstance(entry, type) else getattr(entry, "__doc__", None)
        for line in inspect.cleandoc(own or "").splitlines():
            if line.startswith("Example:"):
                text = line[len("Example:"):].strip()
                return text.split("`")[1] if text.startswith("`") and text.count("`") >= 2 else text
        return ""

    def arguments(self, name: str) -> list[Argument]:
        """The YAML arguments of an entry: keyword parameters, minus those composer supplies."""
        try:
            params = inspect.signature(self[name]).parameters.values()
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
        --json`); a namespace is one line, named as its family (`diffusers.<ModelClass>`)."""
        own = [{"name": name, "doc": self.doc(name), "example": self.example(name), "origin": self.origin[name],
                "arguments": [vars(a) for a in self.arguments(name)]} for name in sorted(self)]
        return own + [{"name": n.shown, "doc": n.doc, "example": n.example, "origin": self.origin[f"{prefix}.*"],
                       "arguments": [vars(a) for a in n.arguments]}
                      for prefix, n in sorted(self.namespaces.items())]

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
    "noise_schedules": "composer.recipes",
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
