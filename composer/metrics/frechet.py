"""Fréchet distance between Gaussians fitted to two feature sets (Heusel et al. 2017, "GANs
trained by a two time-scale update rule converge to a local Nash equilibrium", eq. 6; the FID
when the features are Inception's), and its ratio to the real-vs-real baseline."""
from __future__ import annotations

import numpy as np
import torch

from composer.errors import ComposerError


def gaussian_moments(features: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """Mean `[D]` and unbiased covariance `[D, D]` of `[N, D]` features, in float64."""
    array = np.asarray(features.detach().cpu().double())
    if array.ndim != 2 or array.shape[0] < 2:
        raise ComposerError(f"frechet_distance: needs features [N >= 2, D], got {array.shape}")
    return array.mean(axis=0), np.cov(array, rowvar=False)


def psd_sqrt(sigma: np.ndarray) -> np.ndarray:
    """Σ^{1/2} of a symmetric positive semi-definite matrix via its eigen-decomposition."""
    eigenvalues, eigenvectors = np.linalg.eigh(sigma)
    return (eigenvectors * np.sqrt(np.clip(eigenvalues, 0.0, None))) @ eigenvectors.T


def frechet_distance(a: torch.Tensor, b: torch.Tensor) -> float:
    """d² = ‖μ_a − μ_b‖² + Tr(Σ_a + Σ_b − 2 (Σ_a Σ_b)^{1/2}).

    Tr (Σ_a Σ_b)^{1/2} is computed as Σ_i √λ_i of the symmetric PSD matrix Σ_a^{1/2} Σ_b Σ_a^{1/2},
    which has the same eigenvalues as Σ_a Σ_b: real, no complex round-off from a general sqrtm.
    Tiny negative results from round-off are clipped to 0.
    """
    mu_a, sigma_a = gaussian_moments(a)
    mu_b, sigma_b = gaussian_moments(b)
    root_a = psd_sqrt(sigma_a)
    cross = np.linalg.eigvalsh(root_a @ sigma_b @ root_a)
    trace_root = np.sqrt(np.clip(cross, 0.0, None)).sum()
    distance = ((mu_a - mu_b) ** 2).sum() + np.trace(sigma_a) + np.trace(sigma_b) - 2.0 * trace_root
    return float(max(distance, 0.0))


def frechet_ratio(samples: torch.Tensor, held_out: torch.Tensor, train: torch.Tensor) -> tuple[float, float]:
    """(ratio, baseline): d²(samples, train) / d²(held_out, train), and that baseline d².

    The baseline is what real data the model never saw scores against the training data in the
    same feature space, so ≈ 1 is "as close to the training data as fresh real data", while the
    training data itself would score below 1. The estimate of d² is biased upwards by about
    Tr Σ / m on m rows, so both sides use m = min(N, N_held_out) rows: a seeded random subset of
    the held-out rows (which may be ordered), and for the samples the mean of d² over their
    ⌊N / m⌋ disjoint m-row blocks — the same expectation as one block, with less variance (a
    single 360-row block of diffusion digits varied by ±40% between sampler settings).
    """
    m = min(len(samples), len(held_out))
    rows = torch.randperm(len(held_out), generator=torch.Generator().manual_seed(0))[:m]
    baseline = frechet_distance(held_out[rows], train)
    if baseline <= 0:
        raise ComposerError(f"frechet_ratio: the real-vs-real baseline is {baseline}; expected > 0")
    blocks = [frechet_distance(samples[i:i + m], train) for i in range(0, len(samples) - m + 1, m)]
    return sum(blocks) / len(blocks) / baseline, baseline
