"""SIREN: an MLP with sine activations (Sitzmann et al. 2020, "Implicit Neural Representations
with Periodic Activation Functions", §3.2 and the supplement's initialisation)."""
from __future__ import annotations

import math

import torch
from torch import nn


class SineLayer(nn.Module):
    """sin(omega · (W x + b)); W ~ U(-1/n, 1/n) in the first layer, U(-√(6/n)/omega, √(6/n)/omega)
    after it (n = in_features), so that pre-activations stay distributed alike through depth."""

    def __init__(self, in_features: int, out_features: int, *, omega: float, first: bool):
        super().__init__()
        self.omega = omega
        self.linear = nn.Linear(in_features, out_features)
        bound = 1 / in_features if first else math.sqrt(6 / in_features) / omega
        with torch.no_grad():
            self.linear.weight.uniform_(-bound, bound)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sin(self.omega * self.linear(x))


class SirenMLP(nn.Module):
    """in → [SineLayer] × depth → Linear → out: a SIREN with `depth` sine layers of width
    `hidden` and frequency `omega` (30 in the paper, for coordinates in [-1, 1])."""

    def __init__(self, *, in_features: int, hidden: int, depth: int, out_features: int, omega: float = 30.0):
        super().__init__()
        if depth < 1:
            raise ValueError(f"depth={depth}; a SIREN needs at least one sine layer")
        widths = [in_features] + [hidden] * depth
        layers = [SineLayer(a, b, omega=omega, first=i == 0) for i, (a, b) in enumerate(zip(widths, widths[1:]))]
        last = nn.Linear(hidden, out_features)
        bound = math.sqrt(6 / hidden) / omega
        with torch.no_grad():
            last.weight.uniform_(-bound, bound)
        self.net = nn.Sequential(*layers, last)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)
