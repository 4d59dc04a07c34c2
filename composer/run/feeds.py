"""Per-step inputs: shuffled batches from in-memory tables, with explicit, saveable RNG state.

The table's columns live on the training device (`BatchStream.to`): a batch is one gather there,
no host-to-device copy per step. The order and its generator stay on the CPU, so the saved state
(epoch, position, order, rng) is the same on every device and a run resumes exactly.

A lazy folder (`composer.data.lazy.LazyTable`) is decoded per batch by a torch DataLoader
(`torch.utils.data`, with worker processes, prefetching, pinned memory on CUDA) whose batch
sampler (`Replay`) replays the stream's own draws from a copy of its state: the stream still
draws the indices itself, so (epoch, position, order, rng) stays its whole state, and the
loader is rebuilt at the restored position after `load_state_dict`.
"""
from __future__ import annotations

import itertools
import weakref
from dataclasses import dataclass

import torch
from torch.utils.data import DataLoader, Dataset

from composer.data.lazy import LazyTable
from composer.errors import ComposerError

PREFETCH = 4   # batches each worker decodes ahead


class DataChanged(ValueError):
    """A saved stream state is of other data than the stream's (another split, size or source)."""


def draw(cursor, n: int, batch: int) -> torch.Tensor:
    """The next `batch` indices of `cursor` (epoch, position, order, generator) over `n` samples,
    advancing it; a finished epoch draws a fresh permutation from the generator."""
    chunks, needed = [], batch
    while needed:
        if cursor.position >= len(cursor.order):
            cursor.epoch, cursor.position = cursor.epoch + 1, 0
            cursor.order = torch.randperm(n, generator=cursor.generator)
        take = cursor.order[cursor.position:cursor.position + needed]
        cursor.position += len(take)
        needed -= len(take)
        chunks.append(take)
    return torch.cat(chunks) if len(chunks) > 1 else chunks[0]


class BatchStream:
    """Epochs of seeded permutations over a table; its whole state is (epoch, position, rng)."""

    def __init__(self, table, batch: int, seed: int):
        self.table, self.batch = table, batch
        self.lazy = isinstance(table, LazyTable)
        self.columns = {} if self.lazy else table.columns()
        self.generator = torch.Generator().manual_seed(seed)
        self.epoch, self.position = 0, 0
        self.order = torch.randperm(len(table), generator=self.generator)
        self.device, self.loader, self.batches, self.closer = None, None, None, None

    @property
    def nbytes(self) -> int:
        """Bytes the stream holds (0 for a lazy folder: it decodes per batch)."""
        return sum(column.numel() * column.element_size() for column in self.columns.values())

    def to(self, device) -> "BatchStream":
        """Hold the columns on `device` (a copy of the shared, cached table; no-op when there);
        a lazy folder's batches are delivered there instead (from pinned memory on CUDA)."""
        self.columns = {name: column.to(device) for name, column in self.columns.items()}
        if self.lazy:   # workers start here, before a Trainer locks its run folder (forked
            self.close()   # workers share the open files of the process that forks them)
            self.device = torch.device(device)
            self.start()
        return self

    def start(self) -> None:
        """(Re)start a lazy stream's loader at the state held now: its first draw is the next one."""
        if self.loader is None:
            self.loader = make_loader(self)
        self.loader.batch_sampler.start = Cursor(self)
        self.batches = iter(self.loader)
        if self.loader.num_workers and self.closer is None:
            self.closer = weakref.finalize(self, stop_workers, self.batches)

    def close(self) -> None:
        """Stop a lazy stream's worker processes (also done when the stream is collected)."""
        if self.closer is not None:
            self.closer()
        self.loader, self.batches, self.closer = None, None, None

    def next(self) -> dict[str, torch.Tensor]:
        """The next batch: every field of the table at the same indices."""
        if self.lazy and self.batches is None:
            self.start()
        take = draw(self, len(self.table), self.batch)
        if self.lazy:
            return self._decoded(take)
        return {name: column[take.to(column.device)] for name, column in self.columns.items()}

    def _decoded(self, take: torch.Tensor) -> dict[str, torch.Tensor]:
        """The lazy table's rows `take`, from the DataLoader."""
        batch = next(self.batches)
        if isinstance(batch, Failure):
            raise ComposerError(batch.message)
        if not torch.equal(batch.pop("index"), take):
            raise ComposerError("data loader out of step with its stream (internal error)")
        if self.device is None:
            return batch
        return {name: value.to(self.device, non_blocking=True) for name, value in batch.items()}

    def state_dict(self) -> dict:
        return {"epoch": self.epoch, "position": self.position,
                "order": self.order, "rng": self.generator.get_state()}

    def load_state_dict(self, state: dict) -> None:
        epoch, position, order = int(state["epoch"]), int(state["position"]), state["order"]
        n = len(self.table)
        if order.shape != (n,) or not torch.equal(order.sort().values, torch.arange(n)):
            raise DataChanged(f"the saved data order is of {order.numel()} samples, the data now has {n}"
                              if order.numel() != n else f"the saved data order is not a permutation of its {n} samples")
        if epoch < 0 or not 0 <= position <= n:
            raise ValueError(f"data stream at epoch {epoch}, position {position}: expected >= 0 and 0..{n}")
        self.epoch, self.position, self.order = epoch, position, order.clone()
        self.generator.set_state(state["rng"])
        self.batches = None   # the loader replays from here on its next iterator


class Cursor:
    """A copy of a stream's (or another cursor's) epoch, position, order and generator, advanced
    apart from it."""

    def __init__(self, stream):
        self.epoch, self.position = stream.epoch, stream.position
        self.order, self.generator = stream.order.clone(), _clone(stream.generator)


def _clone(generator: torch.Generator) -> torch.Generator:
    clone = torch.Generator()
    clone.set_state(generator.get_state())
    return clone


class Replay:
    """A DataLoader batch sampler: a stream's own index batches, endlessly, from the copy `start`
    of its state taken when the stream starts an iterator (the DataLoader iterates the sampler in
    the training process). It holds no reference to the stream: no cycle keeps workers alive."""

    def __init__(self, n: int, batch: int):
        self.n, self.batch, self.start = n, batch, None

    def __iter__(self):
        cursor = Cursor(self.start)
        return (draw(cursor, self.n, self.batch).tolist() for _ in itertools.count())


@dataclass
class Failure:
    """A batch that could not be decoded (a worker sends it back instead of raising, so the
    training process reports the file, not a worker traceback)."""

    message: str


class Rows(Dataset):
    """A lazy table as a map-style dataset whose batches are decoded whole (`__getitems__`)."""

    def __init__(self, table: LazyTable):
        self.table = table

    def __len__(self) -> int:
        return len(self.table)

    def __getitem__(self, index: int):
        return self.__getitems__([index])

    def __getitems__(self, indices: list[int]):
        try:
            return {**self.table.rows(indices), "index": torch.tensor(indices, dtype=torch.int64)}
        except ComposerError as error:
            return Failure(str(error))


def as_is(batch):
    """The collate function: `Rows` returns whole batches already."""
    return batch


def stop_workers(batches) -> None:
    """Shut a DataLoader iterator's workers down now. Called when its stream is collected, with the
    iterator kept alive until then: left to the garbage collector in a reference cycle (a Runner
    is one), the iterator's queues may be finalized before it, and each worker then waits out
    torch's 5 s join timeout. `_shutdown_workers` is what the iterator's own `__del__` calls."""
    batches._shutdown_workers()


def make_loader(stream: BatchStream) -> DataLoader:
    """The DataLoader of a lazy stream: `table.workers` persistent worker processes (0: decode in
    this process), `PREFETCH` batches ahead per worker, pinned memory when training on CUDA."""
    workers = stream.table.workers
    pin = stream.device is not None and stream.device.type == "cuda"
    return DataLoader(Rows(stream.table), batch_sampler=Replay(len(stream.table), stream.batch), num_workers=workers,
                      collate_fn=as_is, pin_memory=pin, persistent_workers=workers > 0,
                      prefetch_factor=PREFETCH if workers else None)
