"""Mode coverage of samples from a 2D Gaussian mixture: the VEEGAN / PacGAN protocol.

Srivastava et al. 2017, "VEEGAN: Reducing mode collapse in GANs using implicit variational
learning", §5.1; Lin et al. 2018, "PacGAN: The power of two samples in generative adversarial
networks", §5 and Table 1 (2,500 samples per evaluation). The counting rule follows the authors'
code (github.com/fjxmlzn/PacGAN, `pacgan/extensions.py`, `MetricLogger`):

1. each sample is assigned to its nearest mode centre (distance in units of that mode's σ);
2. it is *high quality* when that distance is below `radius_sigmas` = 3 standard deviations;
3. `modes` = the number of modes with **at least one** high-quality sample;
4. `hq_fraction` = (number of high-quality samples) / (number of samples);
5. `reverse_kl` = KL(q̂ ‖ u) = Σ_k q̂_k log(q̂_k · K), where q̂ is the histogram of the
   high-quality samples over the K modes (normalised counts) and u the uniform mode
   distribution of the data. Empty bins add 0 (0 · log 0 = 0), so the value is finite: 0 for a
   perfectly balanced histogram, log K when every high-quality sample sits on one mode. With no
   high-quality sample at all q̂ is undefined and we report log K, the largest value KL(q ‖ u)
   can take.
"""
from __future__ import annotations

import math

import torch

from composer.data.table import Table
from composer.errors import ComposerError

PROTOCOL_SAMPLES = 2_500


def mode_counts(
    samples: torch.Tensor, centers: torch.Tensor, std: float, radius_sigmas: float
) -> torch.Tensor:
    """Steps 1–2: `[K]` int64 counts of the high-quality samples nearest to each centre."""
    distances = torch.cdist(samples.double(), centers.double()) / std  # [N, K], in σ units
    nearest = distances.min(dim=1)
    high_quality = nearest.values < radius_sigmas
    return torch.bincount(nearest.indices[high_quality], minlength=len(centers))


def reverse_kl_to_uniform(counts: torch.Tensor) -> float:
    """Step 5: KL(q̂ ‖ uniform) with q̂ = counts / Σ counts, 0 · log 0 = 0; log K if Σ counts = 0."""
    k = len(counts)
    total = counts.sum()
    if total == 0:
        return math.log(k)
    q = counts[counts > 0].double() / total
    return float((q * torch.log(q * k)).sum())


def mixture(samples: torch.Tensor, table: Table, *, radius_sigmas: float = 3.0) -> dict[str, float]:
    """Modes covered, high-quality fraction and reverse KL of `samples` `[N, 2]` against the
    mixture described by `table.info` ("centers", "std"), as in the module docstring.

    The protocol draws `PROTOCOL_SAMPLES` = 2,500 samples; the caller chooses N.
    """
    if "centers" not in table.info or "std" not in table.info:
        raise ComposerError(
            "metric 'mixture' needs a data source with info['centers'] and info['std'] "
            f"(the ring or grid sources); this one has info keys {sorted(table.info)}"
        )
    if samples.dim() != 2 or samples.shape[0] == 0:
        raise ComposerError(f"metric 'mixture': expected samples [N>0, D], got {tuple(samples.shape)}")
    centers = torch.tensor(table.info["centers"], dtype=torch.float64)
    samples = samples.detach().cpu()
    counts = mode_counts(samples, centers, float(table.info["std"]), radius_sigmas)
    return {
        "modes": int((counts > 0).sum()),
        "modes_total": len(centers),
        "hq_fraction": float(counts.sum()) / samples.shape[0],
        "reverse_kl": reverse_kl_to_uniform(counts),
    }
