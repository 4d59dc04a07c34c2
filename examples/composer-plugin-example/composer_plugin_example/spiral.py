"""A two-dimensional toy data set: points along the arms of an Archimedean spiral."""
from __future__ import annotations

import math

import torch
from composer.extend import Table


def spiral(*, n: int = 20_000, arms: int = 2, turns: float = 1.0, std: float = 0.02, seed: int = 0) -> Table:
    """`n` points on `arms` spiral arms r = s, θ = 2π (turns · s + k / arms), s ~ U(0.1, 1),
    k ~ U{0..arms-1}, plus N(0, std²) jitter; unlabelled, within about the unit disc."""
    if n < 1 or arms < 1:
        raise ValueError(f"spiral needs n >= 1 and arms >= 1, got n={n}, arms={arms}")
    g = torch.Generator().manual_seed(seed)
    s = 0.1 + 0.9 * torch.rand(n, generator=g, dtype=torch.float64)
    k = torch.randint(arms, (n,), generator=g)
    theta = 2 * math.pi * (turns * s + k / arms)
    x = torch.stack([s * torch.cos(theta), s * torch.sin(theta)], dim=1)
    x = x + std * torch.randn(n, 2, generator=g, dtype=torch.float64)
    return Table(x=x.float(), kind="points")
