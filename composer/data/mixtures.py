"""The 2D Gaussian mixtures of the mode-collapse benchmarks (VEEGAN, Srivastava et al. 2017;
PacGAN, Lin et al. 2018): `ring`, 8 modes evenly spaced on the unit circle with σ = 0.01, and
`grid`, 25 modes at {-4, -2, 0, 2, 4}² with σ = 0.05; every mode has the same weight."""
from __future__ import annotations

import numpy as np
import torch

from composer.data.checks import check_count, check_positive
from composer.data.table import Table
from composer.ranges import Count


def ring_centers(modes: int, radius: float) -> np.ndarray:
    """`[modes, 2]`: radius · (cos 2πk/modes, sin 2πk/modes), k = 0..modes−1."""
    angles = 2 * np.pi * np.arange(modes) / modes
    return radius * np.stack([np.cos(angles), np.sin(angles)], axis=1)


def grid_centers(side: int, spacing: float) -> np.ndarray:
    """`[side², 2]`: the square lattice with `spacing`, centred on the origin, row-major."""
    axis = (np.arange(side) - (side - 1) / 2) * spacing
    a, b = np.meshgrid(axis, axis, indexing="ij")
    return np.stack([a.ravel(), b.ravel()], axis=1)


def sample_mixture(centers: np.ndarray, std: float, n: int, seed: int) -> Table:
    """n draws of k ~ Uniform{0..K−1}, x = centers[k] + std · ε, ε ~ N(0, I); y = k."""
    rng = np.random.default_rng(seed)
    k = rng.integers(len(centers), size=n)
    x = centers[k] + std * rng.standard_normal((n, centers.shape[1]))
    return Table(
        x=torch.tensor(x, dtype=torch.float32),
        y=torch.tensor(k, dtype=torch.int64),
        kind="points",
        info={"centers": centers.tolist(), "std": float(std)},
    )


def ring(*, n: int = 100_000, modes: int = 8, radius: float = 1.0, std: float = 0.01, seed: Count = 0) -> Table:
    """`modes` equal-weight Gaussians evenly on a circle of `radius`, each with std `std`."""
    check_count("ring", "n", n)
    check_count("ring", "modes", modes)
    check_positive("ring", "radius", radius)
    check_positive("ring", "std", std)
    return sample_mixture(ring_centers(modes, radius), std, n, seed)


def grid(*, n: int = 100_000, side: int = 5, spacing: float = 2.0, std: float = 0.05, seed: Count = 0) -> Table:
    """`side`² equal-weight Gaussians on a centred square lattice, each with std `std`."""
    check_count("grid", "n", n)
    check_count("grid", "side", side)
    check_positive("grid", "spacing", spacing)
    check_positive("grid", "std", std)
    return sample_mixture(grid_centers(side, spacing), std, n, seed)
