"""What every bridge shares: the registry entry of one library class (`Bridged`), its keyword
signature taken from the library's own configuration signature, YAML values made into what the
library wants, and short "did you mean" hints over a library's (long) list of names.

A bridge never imports a dotted path from YAML: each namespace resolves names only inside its
library's model namespace (composer/registry.py `Namespace`).
"""
from __future__ import annotations

import inspect

from composer.errors import did_you_mean
from composer.registry import Argument, Namespace

BRIDGE_KEYWORDS = (
    inspect.Parameter("pretrained", inspect.Parameter.KEYWORD_ONLY, default=None, annotation="str | None"),
    inspect.Parameter("allow_download", inspect.Parameter.KEYWORD_ONLY, default=False, annotation="bool"),
)
"""Every bridged block takes `pretrained:` (a local save_pretrained folder, a .safetensors file or a
hub id found in the local cache) and `allow_download:` (false: never reach the network)."""

YAML_DATA = (type(None), bool, int, float, str)


class Bridged:
    """The registry entry of one library class: called with a module's YAML keywords, it returns
    the bridge's adapter block. Its `__signature__` is the class's configuration keywords (all
    keyword-only, so `inspect.signature(entry).bind(**args)` checks YAML arguments as for any
    block) plus the bridge's own (`pretrained`, `allow_download`, and per family e.g.
    `timestep_scale`)."""

    def __init__(self, name: str, build, params: list[inspect.Parameter], doc: str, adapter):
        self.__name__ = self.__qualname__ = name
        self.__doc__ = doc
        self.meta_shapes = adapter.meta_shapes      # the adapter's: shapes on the meta device, else one CPU forward
        self.flow_methods = getattr(adapter, "flow_methods", ())   # what the flow may call: `vae.encode(x)`
        self.__signature__ = inspect.Signature(_unique(params))
        self._build = build

    def __call__(self, **kwargs):
        return self._build(**kwargs)

    def __repr__(self) -> str:
        return f"<bridged block {self.__name__}>"


def _unique(params: list[inspect.Parameter]) -> list[inspect.Parameter]:
    """Keyword-only parameters, first of each name kept (a bridge keyword wins over the library's)."""
    seen: dict[str, inspect.Parameter] = {}
    for p in params:
        if p.kind is p.VAR_KEYWORD:
            seen.setdefault("**", p)
        elif p.name not in seen:
            seen[p.name] = p.replace(kind=p.KEYWORD_ONLY)
    ordinary = [p for k, p in seen.items() if k != "**"]
    required = [p for p in ordinary if p.default is p.empty]
    return required + [p for p in ordinary if p.default is not p.empty] + [p for k, p in seen.items() if k == "**"]


def config_parameters(function, skip=()) -> list[inspect.Parameter]:
    """The keyword parameters of a library's configuration signature (a `register_to_config`
    `__init__`, a config class's `__init__`), without `self`, `*args`, `**kwargs` and `skip`."""
    params = inspect.signature(function).parameters.values()
    return [p for p in params if p.name != "self" and p.name not in skip
            and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]


def library_values(values: dict, params: dict[str, inspect.Parameter], what: str) -> dict:
    """YAML values as the library wants them: plain data only (never objects), lists become
    tuples where the library's default is a tuple or its annotation names one."""
    out = {}
    for key, value in values.items():
        _check_data(value, f"{what}: '{key}'")
        p = params.get(key)
        wants_tuple = p is not None and (isinstance(p.default, tuple) or "tuple" in str(p.annotation).lower())
        out[key] = _tuples(value) if wants_tuple else value
    return out


def _check_data(value, where: str) -> None:
    if isinstance(value, (list, tuple)):
        for v in value:
            _check_data(v, where)
    elif isinstance(value, dict):
        for k, v in value.items():
            _check_data(k, where)
            _check_data(v, where)
    elif not isinstance(value, YAML_DATA):
        raise TypeError(f"{where} takes YAML data (numbers, strings, lists, mappings), got {type(value).__name__}")


def _tuples(value):
    return tuple(_tuples(v) for v in value) if isinstance(value, (list, tuple)) else value


def suggest(name: str, names) -> str:
    """did_you_mean over a library's names, without listing hundreds of them when none is close."""
    hint = did_you_mean(name, names)
    return "" if hint.startswith(" (expected one of") and len(list(names)) > 12 else hint


def first_paragraph(obj) -> str:
    return " ".join(inspect.cleandoc(obj.__doc__ or "").split("\n\n")[0].split())


def on_meta() -> bool:
    """Whether blocks are being built on the meta device (composer validate, the shape check)."""
    import torch

    return torch.empty(0).device.type == "meta"


class ClassNamespace(Namespace):
    """A library's model classes as block names (`prefix.ClassName`): the classes that derive from
    the library's base model class (`base(lib)`, never the base itself) and that `usable` accepts,
    each bridged once by `_bridged(cls)` and cached. Nothing else of the library resolves."""

    arguments = (Argument("**config", None, ""), Argument("pretrained", "None", "str | None"),
                 Argument("allow_download", "False", "bool"))

    def __init__(self):
        self._entries: dict[str, Bridged] = {}

    def base(self, lib) -> type:
        raise NotImplementedError

    def usable(self, cls) -> bool:
        return True

    def _bridged(self, cls) -> Bridged:
        raise NotImplementedError

    def entry(self, name):
        lib = self.load()
        if name in self._entries:
            return self._entries[name]
        if not isinstance(name, str) or not name.isidentifier() or name.startswith("_"):
            raise KeyError(name)
        try:
            cls = getattr(lib, name)
        except Exception:  # noqa: BLE001 -- lazy modules raise what their imports raise
            raise KeyError(name) from None
        base = self.base(lib)
        if not (isinstance(cls, type) and issubclass(cls, base)) or cls is base or not self.usable(cls):
            raise KeyError(name)
        self._entries[name] = self._bridged(cls)
        return self._entries[name]
