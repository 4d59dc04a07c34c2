"""What a data source is: `Source` (a loader returning a `Table`, the fields it yields and their
per-sample shapes known from its arguments alone, and an optional argument check), and the field
layouts of image and point sources."""
from __future__ import annotations

import inspect

import torch


class Source:
    """A data source: `load(**args) -> Table`, and optionally `fields(args) -> {field: (shape,
    dtype)}` so that graphs validate and plan without reading the data (user folders),
    `check(args)`, which raises a ComposerError (with `.key`, the argument) for arguments the
    source refuses, also before reading any data, `paths`, the arguments naming files or folders
    that a relative value finds next to the graph file first (`inputs.resolve_paths`), and
    `held_out(args) -> {argument: value}`, the arguments that load its held-out data for metrics
    and plots (default: split="test" when the source takes a split)."""

    def __init__(self, load, fields=None, check=None, paths=(), held_out=None):
        self.load, self.fields_of, self.check, self.paths = load, fields, check, tuple(paths)
        self.held_out = held_out
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
