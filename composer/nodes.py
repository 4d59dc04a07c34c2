"""The IR: a closed set of node kinds. Specs and objectives both lower to these."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .errors import Loc

KINDS = ("data", "noise", "call", "fn", "term")


@dataclass(frozen=True)
class Node:
    """One named value of the DAG.

    data  -- a batch from a data source (`target` = source name)
    noise -- fresh noise (`target` = noise kind, `args` = its shape options)
    call  -- `target` module applied to `inputs`
    fn    -- a recipe operation `op(ctx, *inputs)` (forward marginal, image pool, penalty)
    term  -- a loss term `op(*inputs) -> [B]` per-sample values, minimised by `trains`
    """

    name: str
    kind: str
    target: str = ""
    inputs: tuple[str, ...] = ()
    args: dict = field(default_factory=dict)
    op: Any = None
    modules: tuple[str, ...] = ()          # modules an fn node calls itself
    trains: tuple[str, ...] | None = None  # term: modules it moves (None: all trainable upstream)
    exclude: tuple[str, ...] = ()          # term: modules it never moves
    weight: float = 1.0
    objective: str = ""
    loc: Loc | None = None
    key: str = ""

    def __post_init__(self):
        assert self.kind in KINDS, self.kind

    @property
    def uses(self) -> tuple[str, ...]:
        """Modules whose parameters this node's own computation reads."""
        return (self.target,) if self.kind == "call" else self.modules

    def describe(self) -> str:
        if self.kind == "call":
            return f"{self.target}({', '.join(self.inputs)})"
        if self.kind in ("fn", "term"):
            return f"{self.target}({', '.join(self.inputs)})"
        return self.target
