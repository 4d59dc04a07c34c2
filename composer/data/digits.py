"""`digits`: scikit-learn's bundled handwritten digits (UCI optdigits test set, 1,797 images).

Each image is 8×8 with 17 grey levels (0 = paper, 16 = full ink), so strokes are bright on a
dark background once mapped to [-1, 1]. No download: the data ships inside scikit-learn.
"""
from __future__ import annotations

import torch

from composer.data.checks import check_count
from composer.data.images import resize_images
from composer.data.splits import split_indices
from composer.data.table import Table
from composer.ranges import Count, Fraction

NUM_CLASSES = 10
MAX_LEVEL = 16.0


def digit_images(size: int = 8) -> tuple[torch.Tensor, torch.Tensor]:
    """All 1,797 digits as `[N, 1, size, size]` float32 in [-1, 1] (v ↦ 2v/16 − 1; bilinear,
    antialiased resize when size ≠ 8) and their int64 labels `[N]`."""
    from sklearn.datasets import load_digits  # lazy: scikit-learn takes ~1 s to import

    bunch = load_digits()
    x = torch.tensor(bunch.images, dtype=torch.float32)[:, None] * (2.0 / MAX_LEVEL) - 1.0
    return resize_images(x, size), torch.tensor(bunch.target, dtype=torch.int64)


def digits(*, split: str = "train", size: int = 8, test_fraction: Fraction = 0.2, seed: Count = 0) -> Table:
    """The digits `split` ("train", "test" or "all"): a seeded split stratified by class, so
    train and test partition the 1,797 images and keep the class proportions."""
    check_count("digits", "size", size)
    x, y = digit_images(size)
    keep = torch.from_numpy(split_indices("digits", y.numpy(), split, test_fraction, seed))
    info = {"num_classes": NUM_CLASSES, "test_fraction": test_fraction, "seed": seed}
    return Table(x=x[keep], y=y[keep], kind="image", info=info)
