"""CycleGAN networks (Zhu et al. ICCV 2017, "Unpaired Image-to-Image Translation using
Cycle-Consistent Adversarial Networks"), following junyanz/pytorch-CycleGAN-and-pix2pix
`models/networks.py`: the ResNet generator of Johnson et al. 2016 and the 70×70 PatchGAN
discriminator of Isola et al. 2017.

Reflection padding is written as the conv's `padding_mode="reflect"`, which computes the same
as the reference's `ReflectionPad2d(p)` followed by an unpadded conv. Convs followed by a norm
carry a bias only when the norm has no learned shift (reference: `use_bias = norm is
InstanceNorm2d`); the reference also drops it for norm "none", here such convs keep it.
"""
from __future__ import annotations

import torch
from torch import nn

from composer.ranges import Count
from composer.blocks.basic import conv_bias, gan_init_, norm_2d
from composer.blocks.residual import ResidualConv


class ResnetGenerator(nn.Module):
    """[B, in_channels, H, W] → [B, out_channels, H, W] in tanh range; H, W divisible by
    2^n_downsampling.

    Stem: reflect-pad 3 + Conv7×7 + norm + ReLU. Down: n_downsampling × (Conv3×3 stride 2 +
    norm + ReLU), width doubling. Core: n_blocks `ResidualConv` (reflect padding, no dropout).
    Up: n_downsampling × (ConvT3×3 stride 2, padding 1, output_padding 1 + norm + ReLU), width
    halving. Head: reflect-pad 3 + Conv7×7 (with bias) + Tanh. Init N(0, 0.02), biases 0.
    """

    def __init__(
        self,
        *,
        in_channels: int,
        out_channels: int,
        width: int = 64,
        n_blocks: Count = 9,
        n_downsampling: Count = 2,
        norm: str = "instance",
    ):
        super().__init__()
        bias = conv_bias(norm)
        layers = [nn.Conv2d(in_channels, width, 7, padding=3, bias=bias, padding_mode="reflect"),
                  norm_2d(norm, width), nn.ReLU()]
        for i in range(n_downsampling):
            w = width * 2**i
            layers += [nn.Conv2d(w, 2 * w, 3, stride=2, padding=1, bias=bias),
                       norm_2d(norm, 2 * w), nn.ReLU()]
        core = width * 2**n_downsampling
        layers += [ResidualConv(channels=core, norm=norm, padding_mode="reflect") for _ in range(n_blocks)]
        for i in range(n_downsampling):
            w = core // 2**i
            layers += [nn.ConvTranspose2d(w, w // 2, 3, stride=2, padding=1, output_padding=1, bias=bias),
                       norm_2d(norm, w // 2), nn.ReLU()]
        layers += [nn.Conv2d(width, out_channels, 7, padding=3, padding_mode="reflect"), nn.Tanh()]
        self.net = nn.Sequential(*layers)
        gan_init_(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class PatchDiscriminator(nn.Module):
    """image [B, in_channels, H, W] → patch logits [B, 1, h, w] (PatchGAN; no sigmoid).

    Conv4×4 s2 p1 + LeakyReLU(0.2); n_layers − 1 × (Conv4×4 s2 p1 + norm + LeakyReLU) with
    width ×2 capped at 8w; Conv4×4 s1 p1 + norm + LeakyReLU (width capped at 8w); Conv4×4 s1 p1
    → 1 channel. n_layers 3 on 256×256 gives the 70×70 receptive field and a 30×30 map; the
    input must be at least 3·2^n_layers pixels wide (so 16×16 needs n_layers ≤ 2).
    Init N(0, 0.02), biases 0.
    """

    def __init__(self, *, in_channels: int, width: int = 64, n_layers: int = 3, norm: str = "instance"):
        super().__init__()
        bias = conv_bias(norm)
        widths = [width * min(2**i, 8) for i in range(n_layers + 1)]
        layers = [nn.Conv2d(in_channels, widths[0], 4, stride=2, padding=1), nn.LeakyReLU(0.2)]
        for i in range(1, n_layers + 1):
            stride = 2 if i < n_layers else 1
            layers += [nn.Conv2d(widths[i - 1], widths[i], 4, stride=stride, padding=1, bias=bias),
                       norm_2d(norm, widths[i]), nn.LeakyReLU(0.2)]
        layers.append(nn.Conv2d(widths[-1], 1, 4, stride=1, padding=1))
        self.net = nn.Sequential(*layers)
        gan_init_(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)
