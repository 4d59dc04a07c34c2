"""DDPM U-Net denoiser (Ho et al. 2020, "Denoising Diffusion Probabilistic Models", Appendix B;
architecture of hojonathanho/diffusion `diffusion_tf/models/unet.py`), built from a PixelCNN++
-style backbone with GroupNorm, SiLU, a time embedding added in every residual block and
single-head self-attention at chosen resolutions.

Layout per level (from fine to coarse): `num_res_blocks` residual blocks (each followed by
attention at the levels in `attention_levels`) and a stride-2 conv downsample except at the
coarsest level; a middle of res block, attention, res block; the way up mirrors it with
`num_res_blocks + 1` blocks per level, each reading one skip tensor (concatenated on channels),
and nearest-neighbour upsample + conv. As in the reference, the last conv of each residual
block, the attention output projection and the output conv start at zero; the other layers
keep torch's default init.
"""
from __future__ import annotations

from collections.abc import Sequence

import einops
import torch
import torch.nn.functional as F
from torch import nn

from composer.ranges import Fraction
from composer.blocks.conditional import add_class_embedding, optional_class_embedding
from composer.blocks.diffusion import SinusoidalTimeEmbedding


def _zero(module: nn.Conv2d) -> nn.Conv2d:
    nn.init.zeros_(module.weight)
    nn.init.zeros_(module.bias)
    return module


class TimeResBlock(nn.Module):
    """x + conv(dropout(SiLU(GN(conv(SiLU(GN(x))) + proj(SiLU(emb)))))), 1×1 skip if widths differ."""

    def __init__(self, *, in_channels: int, out_channels: int, time_dim: int, groups: int, dropout: float):
        super().__init__()
        self.norm1 = nn.GroupNorm(groups, in_channels)
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, padding=1)
        self.time_proj = nn.Linear(time_dim, out_channels)
        self.norm2 = nn.GroupNorm(groups, out_channels)
        self.dropout = nn.Dropout(dropout)
        self.conv2 = _zero(nn.Conv2d(out_channels, out_channels, 3, padding=1))
        same = in_channels == out_channels
        self.skip = nn.Identity() if same else nn.Conv2d(in_channels, out_channels, 1)

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        h = h + einops.rearrange(self.time_proj(F.silu(emb)), "b c -> b c 1 1")
        h = self.conv2(self.dropout(F.silu(self.norm2(h))))
        return self.skip(x) + h


class SelfAttention2d(nn.Module):
    """x + proj(softmax(q kᵀ / √C) v) over the H·W positions, one head, q/k/v from GN(x)."""

    def __init__(self, *, channels: int, groups: int):
        super().__init__()
        self.norm = nn.GroupNorm(groups, channels)
        self.qkv = nn.Conv2d(channels, 3 * channels, 1)
        self.proj = _zero(nn.Conv2d(channels, channels, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        height = x.shape[2]
        qkv = self.qkv(self.norm(x))
        q, k, v = einops.rearrange(qkv, "b (three c) h w -> three b 1 (h w) c", three=3)
        a = F.scaled_dot_product_attention(q, k, v)
        return x + self.proj(einops.rearrange(a, "b 1 (h w) c -> b c h w", h=height))


class ResAttnBlock(nn.Module):
    """A `TimeResBlock`, followed by `SelfAttention2d` when `attention` is set."""

    def __init__(self, *, in_channels: int, out_channels: int, time_dim: int, groups: int,
                 dropout: float, attention: bool):
        super().__init__()
        self.res = TimeResBlock(in_channels=in_channels, out_channels=out_channels,
                                time_dim=time_dim, groups=groups, dropout=dropout)
        self.attn = SelfAttention2d(channels=out_channels, groups=groups) if attention else nn.Identity()

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        return self.attn(self.res(x, emb))


class MiddleBlock(nn.Module):
    """res block → attention → res block at the coarsest resolution."""

    def __init__(self, *, channels: int, time_dim: int, groups: int, dropout: float):
        super().__init__()
        args = dict(in_channels=channels, out_channels=channels, time_dim=time_dim,
                    groups=groups, dropout=dropout)
        self.res1 = TimeResBlock(**args)
        self.attn = SelfAttention2d(channels=channels, groups=groups)
        self.res2 = TimeResBlock(**args)

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        return self.res2(self.attn(self.res1(x, emb)), emb)


class Upsample(nn.Module):
    """Nearest-neighbour ×2 then Conv3×3."""

    def __init__(self, *, channels: int):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))


class UNet(nn.Module):
    """DDPM U-Net: (x [B, channels, H, W], t [B] in [0, 1]) → [B, channels, H, W] (e.g. ε̂).

    H and W must be divisible by 2^(len(channel_mults) − 1). `attention_levels` are indices
    into `channel_mults`; the middle block always has attention. `time_dim` defaults to
    4·width (the sinusoidal embedding of width `width` goes through Linear–SiLU–Linear).
    DDPM CIFAR-10: width 128, channel_mults [1, 2, 2, 2], num_res_blocks 2, attention_levels
    [1] (16×16), dropout 0.1, groups 32.

    With `num_classes` set, forward takes labels y [B] too: a `ClassEmbedding` with a null row
    is added to the time embedding (as in Ho & Salimans 2022, "Classifier-Free Diffusion
    Guidance"); y None or y < 0 is the null condition. It is built last, so a seed gives the
    backbone the same init as the unconditional model's; without it, nothing changes.
    """

    def __init__(
        self,
        *,
        channels: int,
        width: int = 64,
        channel_mults: Sequence[int] = (1, 2),
        num_res_blocks: int = 2,
        attention_levels: Sequence[int] = (),
        groups: int = 8,
        dropout: Fraction = 0.0,
        time_dim: int | None = None,
        num_classes: int | None = None,
    ):
        super().__init__()
        _check_unet_args(width, channel_mults, num_res_blocks, attention_levels, groups)
        time_dim = 4 * width if time_dim is None else time_dim
        self.factor = 2 ** (len(channel_mults) - 1)
        self.time_mlp = nn.Sequential(SinusoidalTimeEmbedding(dim=width), nn.Linear(width, time_dim),
                                      nn.SiLU(), nn.Linear(time_dim, time_dim))
        self.conv_in = nn.Conv2d(channels, width, 3, padding=1)
        block = dict(time_dim=time_dim, groups=groups, dropout=dropout)
        skips = self._build_down(width, channel_mults, num_res_blocks, set(attention_levels), block)
        top = width * channel_mults[-1]
        self.middle = MiddleBlock(channels=top, **block)
        self._build_up(width, channel_mults, num_res_blocks, set(attention_levels), block, skips)
        self.norm_out = nn.GroupNorm(groups, width)
        self.conv_out = _zero(nn.Conv2d(width, channels, 3, padding=1))
        self.class_embed = optional_class_embedding(num_classes, time_dim)

    def _build_down(self, width, mults, num_res_blocks, attention, block) -> list[int]:
        """Fills self.down / self.downsample; returns the channel count of every skip tensor."""
        self.down, self.downsample = nn.ModuleList(), nn.ModuleList()
        skips, ch = [width], width
        for level, mult in enumerate(mults):
            blocks = nn.ModuleList()
            for _ in range(num_res_blocks):
                blocks.append(ResAttnBlock(in_channels=ch, out_channels=width * mult,
                                           attention=level in attention, **block))
                ch = width * mult
                skips.append(ch)
            self.down.append(blocks)
            if level < len(mults) - 1:
                self.downsample.append(nn.Conv2d(ch, ch, 3, stride=2, padding=1))
                skips.append(ch)
        return skips

    def _build_up(self, width, mults, num_res_blocks, attention, block, skips) -> None:
        """Fills self.up / self.upsample, coarse to fine, consuming `skips` from the end."""
        self.up, self.upsample = nn.ModuleList(), nn.ModuleList()
        ch = width * mults[-1]
        for level in reversed(range(len(mults))):
            blocks = nn.ModuleList()
            for _ in range(num_res_blocks + 1):
                blocks.append(ResAttnBlock(in_channels=ch + skips.pop(), out_channels=width * mults[level],
                                           attention=level in attention, **block))
                ch = width * mults[level]
            self.up.append(blocks)
            if level > 0:
                self.upsample.append(Upsample(channels=ch))

    def forward(self, x: torch.Tensor, t: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        if x.shape[-2] % self.factor or x.shape[-1] % self.factor:
            raise ValueError(f"UNet input {tuple(x.shape)}: H and W must be divisible by {self.factor}")
        emb = add_class_embedding(self.time_mlp(t), self.class_embed, y, "UNet")
        h = self.conv_in(x)
        skips = [h]
        for level, blocks in enumerate(self.down):
            for block in blocks:
                h = block(h, emb)
                skips.append(h)
            if level < len(self.downsample):
                h = self.downsample[level](h)
                skips.append(h)
        h = self.middle(h, emb)
        for level, blocks in enumerate(self.up):
            for block in blocks:
                h = block(torch.cat([h, skips.pop()], dim=1), emb)
            if level < len(self.upsample):
                h = self.upsample[level](h)
        return self.conv_out(F.silu(self.norm_out(h)))


def _check_unet_args(width, channel_mults, num_res_blocks, attention_levels, groups) -> None:
    if len(channel_mults) == 0:
        raise ValueError("channel_mults=[]; expected at least one level, e.g. [1, 2]")
    if num_res_blocks < 1:
        raise ValueError(f"num_res_blocks={num_res_blocks}; expected >= 1")
    bad = [a for a in attention_levels if not 0 <= a < len(channel_mults)]
    if bad:
        raise ValueError(f"attention_levels={list(attention_levels)}: {bad} out of range; expected "
                         f"indices into channel_mults, i.e. in {list(range(len(channel_mults)))}")
    if width % groups:
        raise ValueError(f"width={width} is not divisible by groups={groups}")
