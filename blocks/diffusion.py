"""Time embeddings and a small time-conditioned denoiser for continuous diffusion time
t ∈ [0, 1] (shape [B])."""
from __future__ import annotations

import math

import torch
from torch import nn

from composer.ranges import Count
from composer.blocks.conditional import add_class_embedding, optional_class_embedding
from composer.blocks.residual import MLP


class SinusoidalTimeEmbedding(nn.Module):
    """t [B] → [B, dim]: sin/cos of (scale · t) at geometric frequencies 1 … 1/max_period.

    The transformer position encoding (Vaswani et al. 2017) as used for timesteps by DDPM
    (Ho et al. 2020, `get_timestep_embedding`): frequencies exp(−ln(max_period) · i / (dim/2 − 1)),
    sines then cosines. `scale` maps t ∈ [0, 1] onto DDPM's integer step range (1000).

    Example: `{block: SinusoidalTimeEmbedding, dim: 64}`
    """

    def __init__(self, *, dim: int, scale: float = 1000.0, max_period: float = 10000.0):
        super().__init__()
        if dim < 4 or dim % 2:
            raise ValueError(f"dim={dim}; expected an even number >= 4")
        self.dim, self.scale, self.max_period = dim, scale, max_period

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        half = self.dim // 2
        i = torch.arange(half, device=t.device, dtype=t.dtype)
        freqs = torch.exp(-math.log(self.max_period) * i / (half - 1))
        args = self.scale * t.reshape(-1, 1) * freqs
        return torch.cat([args.sin(), args.cos()], dim=-1)

    def extra_repr(self) -> str:
        return f"dim={self.dim}, scale={self.scale}, max_period={self.max_period}"


class FourierTimeEmbedding(nn.Module):
    """t [B] → [B, dim]: Gaussian random Fourier features [sin 2πWt, cos 2πWt], W ~ N(0, scale²).

    Tancik et al. 2020, "Fourier Features Let Networks Learn High Frequency Functions"; used
    for noise levels by Song et al. 2021 (yang-song/score_sde `GaussianFourierProjection`).
    W is a fixed buffer (saved in the state dict, never trained), drawn at init from the
    global RNG.

    Example: `{block: FourierTimeEmbedding, dim: 64, scale: 16.0}`
    """

    def __init__(self, *, dim: int, scale: float = 16.0):
        super().__init__()
        if dim < 2 or dim % 2:
            raise ValueError(f"dim={dim}; expected an even number >= 2")
        self.register_buffer("W", torch.randn(dim // 2) * scale)

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        args = 2 * math.pi * t.reshape(-1, 1) * self.W
        return torch.cat([args.sin(), args.cos()], dim=-1)


class TimeMLP(nn.Module):
    """Time-conditioned MLP denoiser for low-dimensional data: (x [B, features], t [B]) →
    [B, features].

    The input is [x, SinusoidalTimeEmbedding(t)] concatenated, followed by an `MLP` with
    `depth` hidden layers of width `hidden` and SiLU activations — the small denoiser of
    toy-data diffusion experiments (e.g. the 2-D swiss roll of Sohl-Dickstein et al. 2015).

    With `num_classes` set, forward takes labels y [B] too: a `ClassEmbedding` of width
    `time_dim` with a null row is added to the time embedding (Ho & Salimans 2022); y None or
    y < 0 is the null condition. Without it, nothing changes.
    """

    def __init__(self, *, features: int, hidden: int = 256, depth: Count = 3, time_dim: int = 64,
                 num_classes: int | None = None):
        super().__init__()
        self.embed = SinusoidalTimeEmbedding(dim=time_dim)
        self.net = MLP(in_features=features + time_dim, hidden=hidden, depth=depth,
                       out_features=features, activation="silu")
        self.class_embed = optional_class_embedding(num_classes, time_dim)

    def forward(self, x: torch.Tensor, t: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        emb = add_class_embedding(self.embed(t), self.class_embed, y, "TimeMLP")
        return self.net(torch.cat([x, emb], dim=-1))
