"""KL divergence of a diagonal Gaussian posterior to the standard normal prior (the VAE's
regulariser, Kingma & Welling 2014, appendix B):

    KL(N(mu, diag exp(logvar)) || N(0, I)) = 1/2 sum_j (mu_j^2 + exp(logvar_j) - 1 - logvar_j)

per sample. With `weight: {type: linear, steps: N}` on the objective it is warmed up from 0
(Bowman et al. 2016); `cyclical` anneals it in cycles (Fu et al. 2019).
"""
from __future__ import annotations

import torch

from composer.graph.nodes import Loss, Node, Tensor

REDUCTIONS = ("sum", "mean")


def gaussian_kl(mean: torch.Tensor, logvar: torch.Tensor, reduction: str = "sum") -> torch.Tensor:
    """Per-sample KL to N(0, I), summed (the divergence itself) or averaged over the latent dims."""
    kl = 0.5 * (mean.pow(2) + logvar.exp() - 1 - logvar)
    kl = kl.reshape(kl.shape[0], -1)
    return kl.sum(1) if reduction == "sum" else kl.mean(1)


class GaussianKL:
    def __init__(self, reduction: str):
        self.reduction = reduction

    def __call__(self, mean: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
        return gaussian_kl(mean.float(), logvar.float(), self.reduction)


def kl_divergence(name, /, *, mean: Tensor, logvar: Tensor, reduction: str = "sum") -> list[Node]:
    """One term, KL(N(mean, exp(logvar)) || N(0, I)) per sample, moving every trainable module
    upstream (the encoder) or only the objective's `trains:`. reduction: sum over latent dims (the KL) or mean."""
    if reduction not in REDUCTIONS:
        raise ValueError(f"unknown reduction '{reduction}' (expected one of: {', '.join(REDUCTIONS)})")
    label = f"gaussian_kl[{reduction}]"
    return [Node(f"{name}.loss", "term", "gaussian_kl", (mean, logvar), op=Loss(GaussianKL(reduction), label))]
