"""DCGAN generator and discriminator (Radford et al. 2016, "Unsupervised Representation
Learning with Deep Convolutional GANs"), following pytorch/examples `dcgan/main.py` and
generalized from 64×64 to any power-of-two image size ≥ 8.

Each stride-2 stage doubles (G) or halves (D) the resolution, so a size-S image has
log2(S / 4) stages around a 4×4 core; the channel width doubles towards the core. At 64×64
the widths are the reference's exactly (G: 8w → 4w → 2w → w → channels; D: w → 2w → 4w → 8w).
"""
from __future__ import annotations

import math

import einops
import torch
from torch import nn

from composer.ranges import Count
from composer.blocks.attention import with_attention
from composer.blocks.basic import conv_bias, gan_init_, norm_2d


def dcgan_stages(image_size: int) -> int:
    """Number of stride-2 stages, log2(image_size / 4); image_size must be 8, 16, 32, …"""
    if image_size < 8 or image_size & (image_size - 1):
        raise ValueError(
            f"image_size={image_size}; expected a power of two >= 8 (8, 16, 32, 64, 128, 256, ...)"
        )
    return int(math.log2(image_size // 4))


class DCGANGenerator(nn.Module):
    """z [B, latent] → image [B, channels, image_size, image_size] in tanh range (−1, 1).

    ConvT(latent → w·2^(n−1), 4, 1, 0) + BN + ReLU makes the 4×4 core; then n − 1 stages of
    ConvT(4, 2, 1) + BN + ReLU halving the width; a last ConvT(4, 2, 1) to `channels` + Tanh.
    All convs without bias; init N(0, 0.02) as the reference `weights_init`.
    attention: RES puts a SelfAttention2d (SAGAN) after the stage whose maps are RES×RES (4 … S/2).
    """

    def __init__(self, *, image_size: int, channels: int, latent: int, width: int = 64, attention: Count = 0):
        super().__init__()
        n = dcgan_stages(image_size)
        widths = [width * 2 ** (n - 1 - i) for i in range(n)]  # 64×64: 8w, 4w, 2w, w
        layers = [nn.ConvTranspose2d(latent, widths[0], 4, 1, 0, bias=False),
                  nn.BatchNorm2d(widths[0]), nn.ReLU()]
        for w_in, w_out in zip(widths[:-1], widths[1:]):
            layers += [nn.ConvTranspose2d(w_in, w_out, 4, 2, 1, bias=False),
                       nn.BatchNorm2d(w_out), nn.ReLU()]
        layers += [nn.ConvTranspose2d(widths[-1], channels, 4, 2, 1, bias=False), nn.Tanh()]
        self.net = nn.Sequential(*with_attention(layers, attention, 1))
        gan_init_(self)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(einops.rearrange(z, "b z -> b z 1 1"))


def discriminator_trunk(*, image_size: int, channels: int, width: int, norm: str = "batch") -> list[nn.Module]:
    """The DCGAN discriminator without its last conv: image → [B, w·2^(n−1), 4, 4] features.

    Conv(channels → w, 4, 2, 1) + LeakyReLU(0.2) without a norm; then n − 1 stages of
    Conv(4, 2, 1) + norm + LeakyReLU(0.2) doubling the width. `norm` is `norm_2d`'s: "batch"
    (DCGAN's), "instance", "group" or "none"; convs carry a bias only where the norm has no
    learned shift (`conv_bias`). Not initialized.
    """
    n = dcgan_stages(image_size)
    widths = [width * 2**i for i in range(n)]  # 64×64: w, 2w, 4w, 8w
    bias = conv_bias(norm)
    layers = [nn.Conv2d(channels, widths[0], 4, 2, 1, bias=bias), nn.LeakyReLU(0.2)]
    for w_in, w_out in zip(widths[:-1], widths[1:]):
        layers += [nn.Conv2d(w_in, w_out, 4, 2, 1, bias=bias), norm_2d(norm, w_out), nn.LeakyReLU(0.2)]
    return layers


def trunk_width(image_size: int, width: int) -> int:
    """Channels of `discriminator_trunk`'s 4×4 output, w·2^(n−1) (8w at 64×64)."""
    return width * 2 ** (dcgan_stages(image_size) - 1)


class DCGANDiscriminator(nn.Module):
    """image [B, channels, image_size, image_size] → logits [B] (no sigmoid: losses take logits).

    `discriminator_trunk` (Conv + LeakyReLU(0.2), then n − 1 × Conv + norm + LeakyReLU(0.2)
    doubling the width), then a final Conv(→ 1, 4, 1, 0) on the 4×4 core. norm "batch" is the
    reference's (convs without bias); "none" drops the norm (convs with bias), as gradient
    penalties assume: a batch-norm critic's output for one image depends on the rest of its batch.
    Init N(0, 0.02) as the reference `weights_init`.

    aux_classes > 0 adds a second head on the same trunk, Linear(4·4·channels → aux_classes),
    and returns (logits [B], aux_logits [B, aux_classes]): AC-GAN's class head (Odena et al.
    2017) or InfoGAN's Q for a categorical code (Chen et al. 2016); a graph names the critic's
    output as `critic: D[0]` and reads the head as `D(x)` then `[1]`.

    features: true also returns the trunk's 4×4 features, flattened [B, 16·core], last: the
    learned similarity of VAE/GAN's feature-wise reconstruction (Larsen et al. 2016, Dis_l).
    Example: `{block: DCGANDiscriminator, image_size: 16, channels: 1, width: 32, features: true}`

    attention: RES puts a SelfAttention2d (SAGAN) after the stage whose maps are RES×RES (S/2 … 4).
    """

    def __init__(self, *, image_size: int, channels: int, width: int = 64, aux_classes: Count = 0,
                 norm: str = "batch", features: bool = False, attention: Count = 0):
        super().__init__()
        if aux_classes < 0:
            raise ValueError(f"aux_classes={aux_classes}; expected 0 (no auxiliary head) or a number of classes")
        layers = discriminator_trunk(image_size=image_size, channels=channels, width=width, norm=norm)
        layers = with_attention(layers, attention, image_size)
        core = trunk_width(image_size, width)
        self.net = nn.Sequential(*layers, nn.Conv2d(core, 1, 4, 1, 0, bias=conv_bias(norm)))
        self.aux = nn.Linear(core * 16, aux_classes) if aux_classes else None
        self.features = features
        gan_init_(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, ...]:
        if self.aux is None and not self.features:
            return einops.rearrange(self.net(x), "b 1 1 1 -> b")
        h = self.net[:-1](x)
        logits = einops.rearrange(self.net[-1](h), "b 1 1 1 -> b")
        flat = einops.rearrange(h, "b c h w -> b (c h w)")
        heads = (self.aux(flat),) if self.aux is not None else ()
        return (logits, *heads, flat) if self.features else (logits, *heads)
