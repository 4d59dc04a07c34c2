"""Reconstruction objectives: L1 / L2 between a prediction and its target (cycle, identity, AE)."""
from __future__ import annotations

import torch

from composer.graph.nodes import Loss, Node, Tensor


class Distance:
    """Per-sample mean |a − b| (l1) or (a − b)² (l2)."""

    def __init__(self, kind: str):
        if kind not in ("l1", "l2"):
            raise ValueError(f"distance must be 'l1' or 'l2', got '{kind}'")
        self.kind = kind

    def __call__(self, prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        diff = prediction - target
        diff = diff.abs() if self.kind == "l1" else diff ** 2
        return diff.reshape(diff.shape[0], -1).mean(1)

    def __repr__(self) -> str:
        return self.kind


def reconstruction(name, /, *, prediction: Tensor, target: Tensor, distance: str = "l1") -> list[Node]:
    """One term, distance(prediction, target), moving every trainable module upstream (or only
    the objective's `trains:`). CycleGAN's cycle loss is prediction: rec_A, target: real_A, weight 10."""
    return [Node(f"{name}.loss", "term", distance, (prediction, target), op=Loss(Distance(distance), distance))]
