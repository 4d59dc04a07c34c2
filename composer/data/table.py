"""`Table`: a data source's whole dataset, held in memory as tensors."""
from __future__ import annotations

from dataclasses import dataclass, field

import torch

from composer.errors import ComposerError

KINDS = ("image", "points")


@dataclass(frozen=True, eq=False)
class Table:
    """Samples `x` in data space, optional integer labels `y`, and facts about the source.

    Images are float32 `[N, C, H, W]` in [-1, 1]; points are float32 `[N, D]`. `info` carries what
    metrics need about the true distribution (e.g. `{"centers": [[x, y], ...], "std": 0.01}` for a
    Gaussian mixture). Equality is identity (`eq=False`): comparing tensors field by field is
    ambiguous.
    """

    x: torch.Tensor
    y: torch.Tensor | None = None
    kind: str = "image"
    info: dict = field(default_factory=dict)

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ComposerError(f"Table.kind: got '{self.kind}', expected one of {KINDS}")
        if self.x.dtype != torch.float32:
            raise ComposerError(f"Table.x: got dtype {self.x.dtype}, expected torch.float32")
        want_dims = 4 if self.kind == "image" else 2
        if self.x.dim() != want_dims:
            raise ComposerError(
                f"Table.x: kind '{self.kind}' needs {want_dims} dims, got shape {tuple(self.x.shape)}"
            )
        if self.y is not None and (self.y.dtype != torch.int64 or self.y.shape != self.x.shape[:1]):
            raise ComposerError(
                f"Table.y: expected int64 of shape {tuple(self.x.shape[:1])}, "
                f"got {self.y.dtype} of shape {tuple(self.y.shape)}"
            )

    def __len__(self) -> int:
        return self.x.shape[0]
