"""Self-attention over the positions of a feature map (SAGAN: Zhang et al. 2019, "Self-Attention
Generative Adversarial Networks"), and where the DCGAN blocks put it (`attention: RES`).
"""
from __future__ import annotations

import einops
import torch
from torch import nn


class SelfAttention2d(nn.Module):
    """x [B, C, H, W] → x + γ·o, the same shape; SAGAN's non-local block.

    Query f, key g and value h are 1×1 convs to C/reduction channels (C/8 as the paper; at least
    1); β = softmax over key positions of f(x)ᵀg(x) ([B, HW, HW]); o = v(h(x)·βᵀ), v a 1×1 conv
    back to C. γ is a learned scalar initialised to 0, so the block starts as the identity and
    the network learns how much non-local evidence to use.
    Example: `{block: SelfAttention2d, channels: 64}`
    """

    def __init__(self, *, channels: int, reduction: int = 8):
        super().__init__()
        if channels < 1 or reduction < 1:
            raise ValueError(f"channels={channels}, reduction={reduction}; expected positive integers")
        inner = max(1, channels // reduction)
        self.query = nn.Conv2d(channels, inner, 1)
        self.key = nn.Conv2d(channels, inner, 1)
        self.value = nn.Conv2d(channels, inner, 1)
        self.out = nn.Conv2d(inner, channels, 1)
        self.gamma = nn.Parameter(torch.zeros(()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        q = einops.rearrange(self.query(x), "b c h w -> b (h w) c")
        k = einops.rearrange(self.key(x), "b c h w -> b c (h w)")
        v = einops.rearrange(self.value(x), "b c h w -> b c (h w)")
        beta = torch.softmax(torch.bmm(q, k), dim=-1)                 # [B, query HW, key HW]
        o = einops.rearrange(torch.bmm(v, beta.transpose(1, 2)), "b c (h w) -> b c h w", h=h, w=w)
        return x + self.gamma * self.out(o)


def _resolution(layer: nn.Module, size: int) -> int:
    """Spatial size after `layer` (square maps; convs change it, other layers keep it)."""
    if isinstance(layer, nn.ConvTranspose2d):
        return (size - 1) * layer.stride[0] - 2 * layer.padding[0] + layer.kernel_size[0]
    if isinstance(layer, nn.Conv2d):
        return (size + 2 * layer.padding[0] - layer.kernel_size[0]) // layer.stride[0] + 1
    return size


def with_attention(layers: list[nn.Module], resolution: int, size: int) -> list[nn.Module]:
    """`layers` (convs, norms, ReLU/LeakyReLU) with a SelfAttention2d after the first activation
    whose maps are `resolution`² (`size` the input's side); 0 leaves them as they are."""
    if not resolution:
        return layers
    out, seen, channels = [], [], None
    for layer in layers:
        out.append(layer)
        size = _resolution(layer, size)
        channels = getattr(layer, "out_channels", channels)
        if isinstance(layer, (nn.ReLU, nn.LeakyReLU)):
            if size == resolution and resolution not in seen:
                out.append(SelfAttention2d(channels=channels))
            seen.append(size)
    if resolution not in seen:
        raise ValueError(f"attention={resolution}; expected 0 (none) or the side of an inner feature map: "
                         f"{', '.join(map(str, sorted(set(seen))))}")
    return out
