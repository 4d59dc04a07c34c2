"""`Table`: a data source's whole dataset, held in memory as tensors."""
from __future__ import annotations

from dataclasses import dataclass, field

import torch

from composer.errors import ComposerError

KINDS = ("image", "points")
RESERVED = ("x", "y")  # the names of the two built-in columns; extra fields may not reuse them


@dataclass(frozen=True, eq=False)
class Table:
    """Samples `x` in data space, optional integer labels `y`, named extra per-sample `fields`,
    and facts about the source.

    Images are float32 `[N, C, H, W]` in [-1, 1]; points are float32 `[N, D]`. `fields` maps a
    name (an identifier other than "x" and "y") to a tensor whose first dim is N, e.g.
    `{"target": [N, C, H, W]}` for the paired image-to-image sources. `info` carries what
    metrics need about the true distribution (e.g. `{"centers": [[x, y], ...], "std": 0.01}` for a
    Gaussian mixture). Equality is identity (`eq=False`): comparing tensors field by field is
    ambiguous.
    """

    x: torch.Tensor
    y: torch.Tensor | None = None
    kind: str = "image"
    info: dict = field(default_factory=dict)
    fields: dict[str, torch.Tensor] = field(default_factory=dict)

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
        if not isinstance(self.fields, dict):
            raise ComposerError(f"Table.fields: expected a dict of name → tensor, got {type(self.fields).__name__}")
        object.__setattr__(self, "fields", dict(self.fields))
        for name, value in self.fields.items():
            self._check_field(name, value)

    def _check_field(self, name, value) -> None:
        """A field's name is an identifier other than x and y; its value a tensor of N rows."""
        if not isinstance(name, str) or not name.isidentifier():
            raise ComposerError(f"Table.fields: name {name!r} is not a Python identifier")
        if name in RESERVED:
            raise ComposerError(
                f"Table.fields: name {name!r} is reserved; extra fields may not be named "
                f"{', '.join(RESERVED)}"
            )
        if not isinstance(value, torch.Tensor):
            raise ComposerError(
                f"Table.fields[{name!r}]: expected a torch.Tensor, got {type(value).__name__}"
            )
        if value.dim() == 0 or value.shape[0] != len(self):
            raise ComposerError(
                f"Table.fields[{name!r}]: first dim must be N = {len(self)} (x has shape "
                f"{tuple(self.x.shape)}), got shape {tuple(value.shape)}"
            )

    def columns(self) -> dict[str, torch.Tensor]:
        """Every per-sample tensor by name: x, then y (when labelled), then the extra fields."""
        labels = {} if self.y is None else {"y": self.y}
        return {"x": self.x, **labels, **self.fields}

    def __len__(self) -> int:
        return self.x.shape[0]
