"""Noise kinds (registry `noise`): an input with `noise:` draws fresh noise of a per-sample
`shape` (or shaped `like` another tensor) every step."""
from __future__ import annotations

import torch

from composer.registry import Registry

NOISE_KEYS = ("shape", "like")     # keys of any noise input, not passed to the draw function


def normal(size, *, generator, scale: float = 1.0) -> torch.Tensor:
    """N(0, scale^2 I) noise of a per-sample `shape`, or shaped `like` another tensor."""
    return torch.randn(size, generator=generator) * scale


def uniform(size, *, generator, low: float = 0.0, high: float = 1.0) -> torch.Tensor:
    """U(low, high) noise; `shape: []` gives one scalar per sample (e.g. diffusion time)."""
    return low + (high - low) * torch.rand(size, generator=generator)


def categorical(size, *, generator, classes: int) -> torch.Tensor:
    """Class labels drawn uniformly from 0 .. classes-1 (int64), e.g. to condition a generator."""
    if not isinstance(classes, int) or isinstance(classes, bool) or classes < 1:
        raise ValueError(f"classes must be a positive integer, got {classes!r}")
    return torch.randint(classes, size, generator=generator)


NOISE = Registry("noise", {
    "normal": normal,
    "uniform": uniform,
    "categorical": categorical,
}, supplied=("size", "generator"))
