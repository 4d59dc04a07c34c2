"""Convolutional autoencoder for latent diffusion: images [B, C, H, W] ↔ latents
[B, latent_channels, H / 2^k, W / 2^k].

A deterministic, residual-free reduction of the first-stage autoencoder of latent diffusion
(Rombach et al. 2022, "High-Resolution Image Synthesis with Latent Diffusion Models"):
stride-2 convs down, nearest upsample + conv up, pre-activation norm + SiLU, decoder ending in
Tanh. The channel width doubles at every downsample and halves at every upsample.
"""
from __future__ import annotations

import torch
from torch import nn

from composer.ranges import Count
from composer.blocks.basic import norm_2d

AE_NORMS = ("group", "none")


def _norm_act(norm: str, channels: int) -> list[nn.Module]:
    if norm not in AE_NORMS:
        raise ValueError(f"norm={norm!r}; expected one of {AE_NORMS}")
    return [norm_2d(norm, channels), nn.SiLU()]


class ConvEncoder(nn.Module):
    """x [B, in_channels, H, W] → z [B, latent_channels, H / 2^downsamples, W / 2^downsamples].

    Conv3×3 → width; downsamples × (norm, SiLU, Conv3×3 stride 2, width ×2); norm, SiLU,
    Conv3×3 → latent_channels (unbounded latents). norm: "group" (GroupNorm) or "none".

    `normalize_latents` appends a BatchNorm without affine parameters: each latent channel then
    has zero mean and unit variance over the data (batch statistics in training, running
    statistics in eval mode), the scale a VP diffusion on the latents expects. It fixes the
    scale an autoencoder otherwise leaves free, as Rombach et al.'s 1/std rescaling of the
    latents does after training, with no constant to measure.
    """

    def __init__(self, *, in_channels: int, latent_channels: int, width: int = 32,
                 downsamples: Count = 1, norm: str = "group", normalize_latents: bool = False):
        super().__init__()
        ch = width
        layers: list[nn.Module] = [nn.Conv2d(in_channels, ch, 3, padding=1)]
        for _ in range(downsamples):
            layers += [*_norm_act(norm, ch), nn.Conv2d(ch, 2 * ch, 3, stride=2, padding=1)]
            ch *= 2
        layers += [*_norm_act(norm, ch), nn.Conv2d(ch, latent_channels, 3, padding=1)]
        if normalize_latents:
            layers.append(nn.BatchNorm2d(latent_channels, affine=False))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class ConvDecoder(nn.Module):
    """z [B, latent_channels, h, w] → x [B, out_channels, h · 2^upsamples, w · 2^upsamples] in
    tanh range.

    Conv3×3 → width · 2^upsamples; upsamples × (norm, SiLU, nearest ×2, Conv3×3, width ÷2);
    norm, SiLU, Conv3×3 → out_channels, Tanh. Mirrors `ConvEncoder` with the same width.
    """

    def __init__(self, *, out_channels: int, latent_channels: int, width: int = 32,
                 upsamples: Count = 1, norm: str = "group"):
        super().__init__()
        ch = width * 2**upsamples
        layers: list[nn.Module] = [nn.Conv2d(latent_channels, ch, 3, padding=1)]
        for _ in range(upsamples):
            layers += [*_norm_act(norm, ch), nn.Upsample(scale_factor=2.0, mode="nearest"),
                       nn.Conv2d(ch, ch // 2, 3, padding=1)]
            ch //= 2
        layers += [*_norm_act(norm, ch), nn.Conv2d(ch, out_channels, 3, padding=1), nn.Tanh()]
        self.net = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z)
