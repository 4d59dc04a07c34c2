"""What each input draws per step: data sources (looked up in composer.data) and noise kinds."""
from __future__ import annotations

from functools import lru_cache

from .errors import SpecError, did_you_mean


def normal(*, shape: list | None = None, like: str | None = None, scale: float = 1.0):
    """N(0, scale^2 I) noise of a per-sample `shape`, or shaped like another tensor."""


def uniform(*, shape: list | None = None, like: str | None = None, low: float = 0.0, high: float = 1.0):
    """U(low, high) noise; `shape: []` gives one scalar per sample (e.g. diffusion time)."""


NOISE = {
    "normal": normal,
    "uniform": uniform,
}

# Per-sample shapes of the built-in sources, known without reading any file, so that
# graphs over user folders validate and plan on machines that do not have the folder.
SHAPES = {
    "digits": lambda a: (1, a.get("size", 8), a.get("size", 8)),
    "digit_styles": lambda a: (1, a.get("size", 16), a.get("size", 16)),
    "image_folder": lambda a: (a.get("channels", 3), a.get("size", 64), a.get("size", 64)),
    "unpaired_folder": lambda a: (a.get("channels", 3), a.get("size", 256), a.get("size", 256)),
    "ring": lambda a: (2,),
    "grid": lambda a: (2,),
    "moons": lambda a: (2,),
    "swiss_roll": lambda a: (2,),
}


def source_fn(spec, item):
    from composer.data import SOURCES

    if item.target not in SOURCES:
        raise spec.error(f"unknown source '{item.target}'{did_you_mean(item.target, SOURCES)}",
                         "inputs", item.name, "source")
    return SOURCES[item.target]


def data_shape(spec, item) -> tuple:
    if item.target in SHAPES:
        return tuple(SHAPES[item.target](item.args))
    return tuple(load_table(spec, item).x.shape[1:])


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
