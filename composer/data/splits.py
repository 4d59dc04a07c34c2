"""Seeded, stratified train/test splits of a labelled set."""
from __future__ import annotations

import numpy as np

from composer.data.checks import check_choice, check_fraction

SPLITS = ("train", "test", "all")


def stratified_split(y: np.ndarray, test_fraction: float, seed) -> tuple[np.ndarray, np.ndarray]:
    """Sorted index arrays `(train, test)`; class c sends round(test_fraction · n_c) items to test.

    One seeded permutation per class, in class order, so the split depends only on the labels,
    the fraction and `seed` (an int or a `numpy.random.SeedSequence`).
    """
    rng = np.random.default_rng(seed)
    train, test = [], []
    for c in np.unique(y):
        members = rng.permutation(np.flatnonzero(y == c))
        k = int(round(test_fraction * len(members)))
        test.append(members[:k])
        train.append(members[k:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(test))


def split_indices(where: str, y: np.ndarray, split: str, test_fraction: float, seed) -> np.ndarray:
    """The indices of `split` ("train", "test" or "all") of the labelled set `y`."""
    check_choice(where, "split", split, SPLITS)
    check_fraction(where, "test_fraction", test_fraction)
    if split == "all":
        return np.arange(len(y))
    train, test = stratified_split(y, test_fraction, seed)
    return train if split == "train" else test
