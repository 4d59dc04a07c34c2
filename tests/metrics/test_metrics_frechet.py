import numpy as np
import pytest
import torch

from composer.errors import ComposerError
from composer.metrics.frechet import frechet_distance, frechet_ratio, psd_sqrt


def _features(n=2_000, d=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, d, generator=g) @ torch.randn(d, d, generator=g)


def test_identical_sets_have_zero_distance():
    a = _features()
    assert frechet_distance(a, a) == pytest.approx(0.0, abs=1e-8)


def test_shift_adds_the_squared_mean_difference():
    a = _features()
    shift = torch.tensor([1.0, -2.0] + [0.0] * 6)
    assert frechet_distance(a, a + shift) == pytest.approx(5.0, rel=1e-6)


def test_closed_form_for_diagonal_gaussians():
    g = torch.Generator().manual_seed(1)
    a = torch.randn(200_000, 2, generator=g)
    b = torch.randn(200_000, 2, generator=g) * torch.tensor([2.0, 3.0])
    # Tr(Σa + Σb − 2(ΣaΣb)^½) = (1 + 4 − 4) + (1 + 9 − 6) = 5
    assert frechet_distance(a, b) == pytest.approx(5.0, rel=0.02)


def test_distance_grows_with_noise():
    a = _features()
    g = torch.Generator().manual_seed(2)
    noisy = [frechet_distance(a, a + s * torch.randn(a.shape, generator=g)) for s in (0.1, 0.5, 2.0)]
    assert noisy[0] < noisy[1] < noisy[2]


def test_psd_sqrt_squares_back():
    m = np.array([[4.0, 1.0], [1.0, 3.0]])
    root = psd_sqrt(m)
    assert np.allclose(root @ root, m)


def test_needs_two_samples():
    with pytest.raises(ComposerError, match=r"frechet_distance: needs features \[N >= 2, D\], got \(1, 3\)"):
        frechet_distance(torch.zeros(1, 3), torch.zeros(5, 3))


def test_ratio_averages_the_samples_over_disjoint_blocks_of_the_held_out_size():
    g = torch.Generator().manual_seed(0)
    train, held_out = torch.randn(400, 3, generator=g), torch.randn(50, 3, generator=g)
    samples = torch.randn(130, 3, generator=g) + 0.5          # two whole 50-row blocks; 30 rows left out
    ratio, baseline = frechet_ratio(samples, held_out, train)
    rows = torch.randperm(50, generator=torch.Generator().manual_seed(0))
    assert baseline == pytest.approx(frechet_distance(held_out[rows], train))
    blocks = [frechet_distance(samples[:50], train), frechet_distance(samples[50:100], train)]
    assert ratio == pytest.approx(sum(blocks) / 2 / baseline)
    assert blocks[0] != pytest.approx(blocks[1])                # the mean is not one block's value
