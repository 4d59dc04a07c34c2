"""Energy distance between two samples (Székely & Rizzo 2013, "Energy statistics"; as a
generative-model loss: Bellemare et al. 2017, "The Cramér distance as a solution to biased
Wasserstein gradients"):

    E(X, Y) = 2 E‖X − Y‖ − E‖X − X'‖ − E‖Y − Y'‖ ≥ 0, zero iff X and Y have the same law.

Per sample i of B predictions x, against M targets y (the mean over i is the V-statistic; the
last sum is a constant that only makes the value a distance):

    e_i = 2/M Σ_j ‖x_i − y_j‖ − 1/B Σ_j ‖x_i − x_j‖ − 1/M² Σ_jk ‖y_j − y_k‖
"""
from __future__ import annotations

import torch
from composer.extend import Table
from composer.extend import Loss, Node, Tensor


def energy_terms(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Per-sample energy-distance terms e_i [B] of x [B, ...] against y [M, ...] (flattened)."""
    x, y = x.reshape(x.shape[0], -1), y.reshape(y.shape[0], -1)
    return 2 * torch.cdist(x, y).mean(1) - torch.cdist(x, x).mean(1) - torch.cdist(y, y).mean()


def energy_distance(name, /, *, prediction: Tensor, target: Tensor) -> list[Node]:
    """One term, the energy distance between the batch `prediction` and the batch `target`,
    moving every trainable module upstream (the generator) or only the objective's `trains:`."""
    return [Node(f"{name}.loss", "term", "energy_distance", (prediction, target),
                 op=Loss(energy_terms, "energy_distance"))]


def energy_metric(samples: torch.Tensor, table: Table, *, n: int = 2000, seed: int = 0) -> dict[str, float]:
    """Energy distance between the samples and `n` reference points drawn from the data."""
    g = torch.Generator().manual_seed(seed)
    reference = table.x[torch.randperm(len(table), generator=g)[:n]]
    return {"distance": float(energy_terms(samples.double(), reference.double()).mean())}
