"""What each data input draws per step, from its source in the registry `sources`.

An input with `source:` is a data input. Its source yields named fields drawn with the same
indices: the input's own name is the first field (`x`, the samples), `NAME.y` the labels,
`NAME.target` the paired image, ... (`Source.fields` says which, without reading any file).
"""
from __future__ import annotations

import inspect
import os
from functools import lru_cache
from pathlib import Path

from composer.data.lazy import ArgumentError, LazyTable, bounded
from composer.data.source import Source
from composer.errors import ComposerError, SpecError

INPUT_KEYS = ("batch",)            # keys of any input, not passed to its source or noise


def fields(spec, item) -> dict:
    """{field: (per-sample shape, dtype)} of a data input, its primary field first."""
    source = source_of(spec, item)
    if source.fields_of is not None:
        bound = source.__signature__.bind(**resolve_paths(spec, source, item.args))
        bound.apply_defaults()
        _check_args(spec, item, source, bound.arguments)
        try:
            layout = _located_fields(spec, item, source, bound.arguments)
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
        raise _located(spec, item, err) from None


def _located_fields(spec, item, source, arguments) -> dict:
    """`source.fields_of(arguments)`; a source that must look at its data's schema to know a shape
    reports what it cannot read at the argument's YAML line (as `_check_args`)."""
    try:
        return source.fields_of(arguments)
    except ArgumentError as err:
        raise _located(spec, item, err) from None


def _located(spec, item, err):
    """A source's refusal at its argument's YAML line (`err.key`, when it names one)."""
    key = [err.key] if getattr(err, "key", None) else []
    return spec.error(f"source {item.target}: {_unprefixed(err, item)}", "inputs", item.name, *key)


def _unprefixed(err, item) -> str:
    """An error's message without its own leading "SOURCE: " (the located message names the source)."""
    return str(err).removeprefix(f"{item.target}: ")


def resolve_paths(spec, source, args: dict) -> dict:
    """`args` with each relative file argument of the source (`Source.paths`) that exists next to the
    graph file made absolute there; others stay as given (the working directory, or a name such as
    a hub dataset's)."""
    base = Path(spec.file).parent if spec.file and not spec.file.startswith("<") else None
    out = dict(args)
    for key in getattr(source, "paths", ()):
        value = out.get(key)
        if base is not None and isinstance(value, str) and not Path(value).expanduser().is_absolute() \
                and (base / value).exists():
            out[key] = os.path.normpath(base / value)
    return out


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
    args = {**resolve_paths(spec, source_of(spec, item), item.args), **override}
    try:
        return _cached_table(item.target, tuple(sorted((k, _freeze(v)) for k, v in args.items())))
    except SpecError:
        raise
    except Exception as err:  # noqa: BLE001 -- reported at the input's YAML line
        key = [err.key] if isinstance(err, ArgumentError) else []
        raise spec.error(f"source '{item.target}' failed: {_unprefixed(err, item)}", "inputs", item.name,
                         *key) from None


@lru_cache(maxsize=16)
def _cached_table(source: str, frozen_args: tuple):
    from composer.data import SOURCES

    return SOURCES[source](**{k: _thaw(v) for k, v in frozen_args})


def _freeze(value):
    return tuple(value) if isinstance(value, list) else value


def _thaw(value):
    return list(value) if isinstance(value, tuple) else value


def held_out_table(spec, item):
    """The held-out data of an input: what the source's `held_out(args)` overrides, else `split:
    test` when its source takes a split: a `Table`, or a `LazyTable` for a streamed folder."""
    source = source_of(spec, item)
    if source.held_out is not None:
        try:
            override = source.held_out(resolve_paths(spec, source, item.args))
        except ArgumentError as err:
            raise _located(spec, item, err) from None
        return load_table(spec, item, **override)
    if "split" in inspect.signature(source).parameters:
        return load_table(spec, item, split="test")
    return load_table(spec, item)


def reference_table(spec, item):
    """The held-out data of an input in memory, for readers of whole tables (metrics, plots): of
    a streamed folder a seeded subset of at most `lazy.STREAM_BYTES` decoded (`lazy.bounded`)."""
    table = held_out_table(spec, item)
    return _bounded(table) if isinstance(table, LazyTable) else table


@lru_cache(maxsize=2)
def _bounded(table):
    return bounded(table)
