"""Multilayer perceptrons and residual blocks (He et al. 2016, "Deep Residual Learning")."""
from __future__ import annotations

import torch
from torch import nn

from composer.ranges import Count
from composer.blocks.basic import ACTIVATIONS, conv_bias, norm_2d
from composer.blocks.basic import activation as make_activation

PADDING_MODES = ("zeros", "reflect")


class MLP(nn.Module):
    """in → [Linear → act] × depth → Linear → out (→ out_activation).

    `hidden` is the width of every hidden layer, `depth` the number of hidden layers
    (depth 0 is a single Linear).
    """

    def __init__(
        self,
        *,
        in_features: int,
        hidden: int,
        depth: Count,
        out_features: int,
        activation: str = "relu",
        out_activation: str | None = None,
    ):
        super().__init__()
        if depth < 0:
            raise ValueError(f"depth={depth}; expected a number of hidden layers >= 0")
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation={activation!r}; expected one of {ACTIVATIONS}")
        widths = [in_features] + [hidden] * depth
        layers: list[nn.Module] = []
        for n_in, n_out in zip(widths[:-1], widths[1:]):
            layers += [nn.Linear(n_in, n_out), make_activation(activation)]
        layers.append(nn.Linear(widths[-1], out_features))
        if out_activation is not None:
            layers.append(make_activation(out_activation))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class ResidualMLP(nn.Module):
    """x + Linear(ReLU(Linear(x))): the course notes' residual block for vectors.

    `hidden` is the inner width (default: `features`).

    Example: `{block: ResidualMLP, features: 64, hidden: 128}`
    """

    def __init__(self, *, features: int, hidden: int | None = None):
        super().__init__()
        hidden = features if hidden is None else hidden
        self.fc1 = nn.Linear(features, hidden)
        self.act = nn.ReLU()
        self.fc2 = nn.Linear(hidden, features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.fc2(self.act(self.fc1(x)))


class ResidualConv(nn.Module):
    """x + norm(conv3×3(ReLU(norm(conv3×3(x))))), channels and resolution kept.

    CycleGAN's `ResnetBlock` (Zhu et al. 2017; junyanz/pytorch-CycleGAN-and-pix2pix
    `networks.py`) without dropout: with padding_mode "reflect" each conv pads by reflection,
    which equals the reference's `ReflectionPad2d(1)` + unpadded conv. Convs carry a bias only
    when the norm has no learned shift (instance, none).

    Example: `{block: ResidualConv, channels: 64, norm: instance, padding_mode: reflect}`
    """

    def __init__(self, *, channels: int, norm: str = "batch", padding_mode: str = "zeros"):
        super().__init__()
        if padding_mode not in PADDING_MODES:
            raise ValueError(f"padding_mode={padding_mode!r}; expected one of {PADDING_MODES}")
        bias = conv_bias(norm)
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1, bias=bias, padding_mode=padding_mode)
        self.norm1 = norm_2d(norm, channels)
        self.act = nn.ReLU()
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1, bias=bias, padding_mode=padding_mode)
        self.norm2 = norm_2d(norm, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.act(self.norm1(self.conv1(x)))
        return x + self.norm2(self.conv2(h))
