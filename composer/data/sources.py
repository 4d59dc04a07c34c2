"""What each input draws per step: data sources (registry `sources`) and noise kinds (`noise`).

An input with `source:` is a data input. Its source yields named fields drawn with the same
indices: the input's own name is the first field (`x`, the samples), `NAME.y` the labels,
`NAME.target` the paired image, ... (`Source.fields` says which, without reading any file).
An input with `noise:` draws fresh noise of a per-sample `shape` (or shaped `like` another
tensor) every step.
"""
from __future__ import annotations

import inspect
from functools import lru_cache

import torch

from composer.errors import ComposerError, SpecError
from composer.registry import Registry

INPUT_KEYS = ("batch",)            # keys of any input, not passed to its source or noise
NOISE_KEYS = ("shape", "like")     # keys of any noise input, not passed to the draw function


# ------------------------------------------------------------------------------ noise
def normal(size, *, generator, scale: float = 1.0) -> torch.Tensor:
    """N(0, scale^2 I) noise of a per-sample `shape`, or shaped `like` another tensor."""
    return torch.randn(size, generator=generator) * scale


def uniform(size, *, generator, low: float = 0.0, high: float = 1.0) -> torch.Tensor:
    """U(low, high) noise; `shape: []` gives one scalar per sample (e.g. diffusion time)."""
    return low + (high - low) * torch.rand(size, generator=generator)


def categorical(size, *, generator, classes: int) -> torch.Tensor:
    """Class labels drawn uniformly from 0 .. classes-1 (int64), e.g. to condition a generator."""
    if not isinstance(classes, int) or isinstance(classes, bool) or classes < 1:
        raise ValueError(f"classes must be a positive integer, got {classes!r}")
    return torch.randint(classes, size, generator=generator)


NOISE = Registry("noise", {
    "normal": normal,
    "uniform": uniform,
    "categorical": categorical,
}, supplied=("size", "generator"))


# ------------------------------------------------------------------------------ data
class Source:
    """A data source: `load(**args) -> Table`, and optionally `fields(args) -> {field: (shape,
    dtype)}` so that graphs validate and plan without reading the data (user folders), and
    `check(args)`, which raises a ComposerError (with `.key`, the argument) for arguments the
    source refuses, also before reading any data."""

    def __init__(self, load, fields=None, check=None):
        self.load, self.fields_of, self.check = load, fields, check
        self.__signature__ = inspect.signature(load)
        self.__doc__ = load.__doc__

    def __call__(self, **args):
        return self.load(**args)


def image_fields(channels, size, *, labels: bool = False, extra=()) -> dict:
    shape = (channels, size, size)
    out = {"x": (shape, torch.float32)}
    if labels:
        out["y"] = ((), torch.int64)
    out.update({name: (shape, torch.float32) for name in extra})
    return out


def point_fields(dim: int = 2, *, labels: bool = False) -> dict:
    out = {"x": ((dim,), torch.float32)}
    if labels:
        out["y"] = ((), torch.int64)
    return out


def fields(spec, item) -> dict:
    """{field: (per-sample shape, dtype)} of a data input, its primary field first."""
    source = source_of(spec, item)
    if source.fields_of is not None:
        bound = source.__signature__.bind(**item.args)
        bound.apply_defaults()
        _check_args(spec, item, source, bound.arguments)
        try:
            layout = source.fields_of(bound.arguments)
            if all(isinstance(n, int) and not isinstance(n, bool) and n > 0 for shape, _ in layout.values() for n in shape):
                return layout
        except (TypeError, ValueError, KeyError):
            pass
        raise spec.error(f"source {item.target}: its arguments do not give valid sample shapes "
                         f"({', '.join(f'{k}={v!r}' for k, v in item.args.items())}): sizes and channels are "
                         "positive integers", "inputs", item.name)
    table = load_table(spec, item)
    return {k: (tuple(v.shape[1:]), v.dtype) for k, v in table.columns().items()}


def _check_args(spec, item, source, arguments) -> None:
    """The source's own argument check, located at the argument's YAML line."""
    if source.check is None:
        return
    try:
        source.check(arguments)
    except SpecError:
        raise
    except ComposerError as err:
        key = [err.key] if getattr(err, "key", None) else []
        raise spec.error(f"source {item.target}: {err}", "inputs", item.name, *key) from None


def source_of(spec, item) -> Source:
    """The registered source of a data input (a bare loader function counts as a Source whose
    fields are learned by loading it)."""
    from composer.data import SOURCES

    if item.target not in SOURCES:
        raise spec.error(SOURCES.unknown(item.target), "inputs", item.name, "source")
    entry = SOURCES[item.target]
    return entry if isinstance(entry, Source) else Source(entry)


def load_table(spec, item, **override):
    """The in-memory Table of a data input (cached per source and arguments)."""
    args = {**item.args, **override}
    try:
        return _cached_table(item.target, tuple(sorted((k, _freeze(v)) for k, v in args.items())))
    except SpecError:
        raise
    except Exception as err:  # noqa: BLE001 -- reported at the input's YAML line
        raise spec.error(f"source '{item.target}' failed: {err}", "inputs", item.name) from None


@lru_cache(maxsize=16)
def _cached_table(source: str, frozen_args: tuple):
    from composer.data import SOURCES

    return SOURCES[source](**{k: _thaw(v) for k, v in frozen_args})


def _freeze(value):
    return tuple(value) if isinstance(value, list) else value


def _thaw(value):
    return list(value) if isinstance(value, tuple) else value
