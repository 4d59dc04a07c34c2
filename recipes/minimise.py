"""Minimise a value the flow computes: one loss term, the given tensor itself per sample.

For losses a block computes in its own forward (a vector quantiser's commitment loss, an
auxiliary regulariser): the flow names the tensor and this objective minimises it, with the
objective's `weight`, schedule, `every` and `trains:` as for any other term.
"""
from __future__ import annotations

import torch

from composer.graph.nodes import Loss, Node, Tensor


class PerSample:
    """A tensor [B, ...] as per-sample values [B]: its mean over all but the batch dimension."""

    def __call__(self, value: torch.Tensor) -> torch.Tensor:
        return value if value.dim() == 1 else value.reshape(value.shape[0], -1).mean(1)


def minimise(name, /, *, value: Tensor) -> list[Node]:
    """One term, `value` per sample (averaged over its other dimensions), moving every trainable
    module upstream of it (or only the objective's `trains:`). VQ-VAE's commitment loss is
    `value: commitment`."""
    return [Node(f"{name}.loss", "term", "value", (value,), op=Loss(PerSample(), "value"))]
