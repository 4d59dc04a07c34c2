"""Two-dimensional toy sets from scikit-learn's generators: `moons` and `swiss_roll`."""
from __future__ import annotations

import torch

from composer.data.checks import check_count
from composer.data.table import Table
from composer.ranges import Count

SWISS_ROLL_SCALE = 10.0  # the roll's (x, z) span about [-10, 13]; /10 gives roughly unit range


def moons(*, n: int = 20_000, std: float = 0.05, seed: Count = 0) -> Table:
    """Two interleaving half circles in scikit-learn's coordinates (x ∈ [-1, 2], y ∈ [-0.5, 1])
    with Gaussian jitter of `std`; y = which moon."""
    from sklearn.datasets import make_moons  # lazy: scikit-learn takes ~1 s to import

    check_count("moons", "n", n)
    x, y = make_moons(n_samples=n, noise=std, random_state=seed)
    return Table(x=torch.tensor(x, dtype=torch.float32), y=torch.tensor(y, dtype=torch.int64), kind="points")


def swiss_roll(*, n: int = 20_000, std: float = 0.5, seed: Count = 0) -> Table:
    """The swiss roll seen from above: the (x, z) coordinates of scikit-learn's 3D roll (jitter
    `std`), divided by 10 (so the jitter is std / 10 in these units). Unlabelled."""
    from sklearn.datasets import make_swiss_roll  # lazy: scikit-learn takes ~1 s to import

    check_count("swiss_roll", "n", n)
    x, _ = make_swiss_roll(n_samples=n, noise=std, random_state=seed)
    points = x[:, [0, 2]] / SWISS_ROLL_SCALE
    return Table(x=torch.tensor(points, dtype=torch.float32), kind="points")
