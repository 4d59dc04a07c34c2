"""Per-step inputs: shuffled batches from in-memory tables, with explicit, saveable RNG state."""
from __future__ import annotations

import torch


class BatchStream:
    """Epochs of seeded permutations over a table; its whole state is (epoch, position, rng)."""

    def __init__(self, table, batch: int, seed: int):
        self.table, self.batch = table, batch
        self.columns = table.columns()
        self.generator = torch.Generator().manual_seed(seed)
        self.epoch, self.position = 0, 0
        self.order = torch.randperm(len(table), generator=self.generator)

    def next(self) -> dict[str, torch.Tensor]:
        """The next batch: every field of the table at the same indices."""
        chunks, needed = [], self.batch
        while needed:
            if self.position >= len(self.order):
                self.epoch, self.position = self.epoch + 1, 0
                self.order = torch.randperm(len(self.table), generator=self.generator)
            take = self.order[self.position:self.position + needed]
            self.position += len(take)
            needed -= len(take)
            chunks.append(take)
        take = torch.cat(chunks) if len(chunks) > 1 else chunks[0]
        return {name: column[take] for name, column in self.columns.items()}

    def state_dict(self) -> dict:
        return {"epoch": self.epoch, "position": self.position,
                "order": self.order, "rng": self.generator.get_state()}

    def load_state_dict(self, state: dict) -> None:
        epoch, position, order = int(state["epoch"]), int(state["position"]), state["order"]
        n = len(self.table)
        if order.shape != (n,) or not torch.equal(order.sort().values, torch.arange(n)):
            raise ValueError(f"the saved data order is not a permutation of the {n} samples (another data set?)")
        if epoch < 0 or not 0 <= position <= n:
            raise ValueError(f"data stream at epoch {epoch}, position {position}: expected >= 0 and 0..{n}")
        self.epoch, self.position, self.order = epoch, position, order.clone()
        self.generator.set_state(state["rng"])
