import json
import math

import numpy as np
import pytest
import torch

from composer.data.mixtures import grid, grid_centers, ring, ring_centers
from composer.errors import ComposerError


def _per_mode_std(table) -> np.ndarray:
    centers = np.array(table.info["centers"])
    offsets = table.x.numpy() - centers[table.y.numpy()]
    return np.array([offsets[table.y.numpy() == k].std() for k in range(len(centers))])


def test_ring_has_eight_modes_evenly_on_the_unit_circle():
    table = ring(n=20_000)
    centers = np.array(table.info["centers"])
    assert centers.shape == (8, 2)
    assert np.allclose(np.linalg.norm(centers, axis=1), 1.0)
    angles = np.sort(np.mod(np.arctan2(centers[:, 1], centers[:, 0]), 2 * math.pi))
    assert np.allclose(np.diff(angles), 2 * math.pi / 8)
    assert table.info["std"] == 0.01 and table.kind == "points"
    assert table.x.shape == (20_000, 2) and table.x.dtype == torch.float32


def test_ring_samples_have_the_stated_std_and_equal_weights():
    table = ring(n=40_000)
    assert np.allclose(_per_mode_std(table), 0.01, rtol=0.05)
    shares = torch.bincount(table.y, minlength=8) / 40_000
    assert (shares - 1 / 8).abs().max() < 0.01


def test_grid_has_25_modes_on_the_lattice():
    table = grid(n=50_000)
    centers = {tuple(c) for c in np.array(table.info["centers"]).tolist()}
    assert centers == {(a, b) for a in (-4.0, -2.0, 0.0, 2.0, 4.0) for b in (-4.0, -2.0, 0.0, 2.0, 4.0)}
    assert table.info["std"] == 0.05
    assert np.allclose(_per_mode_std(table), 0.05, rtol=0.06)
    assert torch.bincount(table.y, minlength=25).min() > 1_700


def test_labels_are_the_generating_mode():
    table = grid(n=5_000)
    centers = torch.tensor(table.info["centers"], dtype=torch.float32)
    assert torch.equal(torch.cdist(table.x, centers).argmin(1), table.y)


def test_mixtures_are_seeded_and_info_is_json():
    assert torch.equal(ring(n=100, seed=3).x, ring(n=100, seed=3).x)
    assert not torch.equal(ring(n=100, seed=3).x, ring(n=100, seed=4).x)
    json.dumps(ring(n=10).info)
    json.dumps(grid(n=10).info)


def test_center_helpers():
    assert np.allclose(ring_centers(4, 2.0), [[2, 0], [0, 2], [-2, 0], [0, -2]], atol=1e-12)
    assert np.allclose(grid_centers(2, 1.0), [[-0.5, -0.5], [-0.5, 0.5], [0.5, -0.5], [0.5, 0.5]])


def test_mixture_argument_errors():
    with pytest.raises(ComposerError, match=r"ring: std=0; expected a number > 0"):
        ring(std=0)
    with pytest.raises(ComposerError, match=r"grid: side=2.5; expected an integer >= 1"):
        grid(side=2.5)
