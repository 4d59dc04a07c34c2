"""`LazyTable`: a folder source whose file list (and labels, and paired partner files) is known at
start and whose pixels are decoded on demand, row by row, by the same functions the in-memory
`Table` is built with, so row i of either is bitwise the same tensor.

When a folder source is lazy (its `stream` argument): `"auto"` (the default) keeps a folder in
memory up to `STREAM_BYTES` of decoded float32 pixels and streams a larger one; `true` always
streams; `false` always decodes everything at start. A lazy table's batches come from a torch
DataLoader with `workers` processes (`composer.run.feeds.BatchStream`); what reads a whole table for
evaluation gets a bounded, decoded subset (`bounded`).
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field, replace

import torch

from composer.data.table import Table
from composer.errors import ComposerError

STREAM_BYTES = 256 * 2**20   # stream: auto streams a folder whose decoded pixels exceed this
STREAM_CHOICES = (True, False, "auto")
MAX_AUTO_WORKERS = 4         # workers: auto = min(4, CPUs - 1)


class ArgumentError(ComposerError):
    """A source argument the source refuses; `key` names it (for the YAML location)."""

    def __init__(self, message: str, key: str):
        super().__init__(message)
        self.key = key


def check_streaming(args: dict, where: str = "") -> None:
    """The `stream` and `workers` arguments of a folder source (`Source.check`: at validation,
    before any file is read)."""
    check_stream(where, args.get("stream", "auto"))
    check_workers(where, args.get("workers", "auto"))


def check_stream(where: str, stream) -> None:
    """`stream` is true, false or "auto"."""
    if not any(stream is c or (isinstance(c, str) and stream == c) for c in STREAM_CHOICES):
        raise ArgumentError(f"{where}{': ' if where else ''}stream={stream!r} is not allowed; expected "
                            "true (decode images on demand), false (decode all at start) or auto (stream "
                            f"when the decoded images exceed {STREAM_BYTES // 2**20} MiB)", "stream")


def check_workers(where: str, workers) -> None:
    """`workers` is "auto" or an integer >= 0 (0: decode in the training process)."""
    if workers == "auto" and isinstance(workers, str):
        return
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 0:
        raise ArgumentError(f"{where}{': ' if where else ''}workers={workers!r}; expected an integer >= 0 "
                            "(0 decodes in the training process) or auto (min(4, CPUs - 1))", "workers")


def resolve_workers(workers) -> int:
    """The number of DataLoader worker processes `workers` asks for ("auto": min(4, CPUs - 1))."""
    if workers != "auto":
        return int(workers)
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(0, min(MAX_AUTO_WORKERS, cpus - 1))


def is_streamed(stream, rows: int, row_bytes: int) -> bool:
    """Whether a folder of `rows` samples of `row_bytes` decoded bytes each is read lazily."""
    return stream is True or (stream == "auto" and rows * row_bytes > STREAM_BYTES)


@dataclass(frozen=True, eq=False)
class LazyTable:
    """`n` samples whose fields `names` (x first, then the extra fields) are decoded by
    `decode(i) -> {name: tensor}`, a picklable callable (DataLoader workers run it); labels `y`
    (int64 [n] or None) are known at start. `row_bytes` is one decoded sample's size; `workers`
    the DataLoader worker processes its batches are decoded in."""

    decode: object
    n: int
    names: tuple
    row_bytes: int
    y: torch.Tensor | None = None
    kind: str = "image"
    info: dict = field(default_factory=dict)
    workers: int = 0

    def __len__(self) -> int:
        return self.n

    def rows(self, indices) -> dict[str, torch.Tensor]:
        """The samples at `indices` (a sequence of ints), every field stacked like `Table.columns()`."""
        indices = [int(i) for i in indices]
        decoded = [self.decode(i) for i in indices]
        out = {"x": torch.stack([d["x"] for d in decoded])}
        if self.y is not None:
            out["y"] = self.y[torch.tensor(indices, dtype=torch.int64)]
        out.update({name: torch.stack([d[name] for d in decoded]) for name in self.names if name != "x"})
        return out

    def subset(self, indices) -> Table:
        """An in-memory `Table` of the samples at `indices`, in that order."""
        columns = self.rows(indices)
        extra = {k: v for k, v in columns.items() if k not in ("x", "y")}
        return Table(x=columns["x"], y=columns.get("y"), kind=self.kind, info=self.info, fields=extra)

    def materialize(self) -> Table:
        """The whole table in memory (what `stream: false` returns)."""
        return self.subset(range(self.n))

    def with_info(self, **info) -> "LazyTable":
        return replace(self, info={**self.info, **info})

    @property
    def x(self):
        raise ComposerError(f"the folder '{self.info.get('path', '?')}' is read lazily (stream: true or auto "
                            "for a large folder): read rows with .rows(indices) or .subset(indices), or "
                            "set stream: false to hold it in memory")

    def columns(self):
        return self.x


def bounded(table, max_bytes: int = STREAM_BYTES, seed: int = 0) -> Table:
    """An in-memory table for readers of whole tables (evaluation references): an eager table as
    it is; a lazy one's seeded random subset of at most `max_bytes` decoded bytes, in index order."""
    if not isinstance(table, LazyTable):
        return table
    keep = max(1, min(len(table), max_bytes // max(1, table.row_bytes)))
    if keep == len(table):
        return table.materialize()
    chosen = torch.randperm(len(table), generator=torch.Generator().manual_seed(seed))[:keep]
    return table.subset(chosen.sort().values.tolist())


def folder_table(decode, n: int, names: tuple, row_bytes: int, *, stream, workers, y=None, info=None, kind="image"):
    """A `LazyTable` when `stream` asks for one (see `is_streamed`), else its materialized `Table`."""
    table = LazyTable(decode, n, names, row_bytes, y=y, kind=kind, info=dict(info or {}),
                      workers=resolve_workers(workers))
    return table if is_streamed(stream, n, row_bytes) else table.materialize()
