"""Sliced Wasserstein distance (Rabin et al. 2011, "Wasserstein barycenter and its application to
texture mixing"; Bonneel et al. 2015, "Sliced and Radon Wasserstein barycenters of measures").

SW₂(P, Q)² = E_θ W₂²(θᵀP, θᵀQ) over directions θ on the unit sphere. In one dimension W₂ between
two empirical measures of equal size is the RMS difference of the sorted values, so the estimate
is a sort per direction (the same estimator as POT's `ot.sliced_wasserstein_distance`, which is not
a dependency here: the whole computation is the three lines of `sliced_wasserstein`).
"""
from __future__ import annotations

import math

import torch

from composer.errors import ComposerError

PROJECTIONS = 256
PROJECTION_SEED = 0


def directions(dim: int, count: int = PROJECTIONS) -> torch.Tensor:
    """`[count, dim]` unit vectors: evenly spaced angles over a half turn in 2D (deterministic and
    variance-free), otherwise normalised Gaussian draws from `PROJECTION_SEED`."""
    if dim == 2:
        angles = torch.arange(count, dtype=torch.float64) * (math.pi / count)
        return torch.stack([angles.cos(), angles.sin()], dim=1)
    theta = torch.randn(count, dim, generator=torch.Generator().manual_seed(PROJECTION_SEED), dtype=torch.float64)
    return theta / theta.norm(dim=1, keepdim=True)


def sliced_wasserstein(a: torch.Tensor, b: torch.Tensor, projections: int = PROJECTIONS) -> float:
    """SW₂ between the empirical measures of `a` and `b`, both `[N, D]` with the same N."""
    if a.dim() != 2 or a.shape != b.shape or a.shape[0] == 0:
        raise ComposerError(f"sliced_wasserstein: expected two [N > 0, D] sets of the same shape, "
                            f"got {tuple(a.shape)} and {tuple(b.shape)}")
    theta = directions(a.shape[1], projections)
    sorted_a = (a.detach().cpu().double() @ theta.T).sort(dim=0).values
    sorted_b = (b.detach().cpu().double() @ theta.T).sort(dim=0).values
    return float((sorted_a - sorted_b).pow(2).mean().sqrt())
