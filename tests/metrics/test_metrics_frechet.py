import numpy as np
import pytest
import torch

from composer.errors import ComposerError
from composer.metrics.frechet import frechet_distance, frechet_ratio, frechet_ratio_iid, psd_sqrt


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


def _classes(n, seed, stratified=False, shift=0.0):
    """Features of a 5-class mixture: class means 3 apart on the axes, unit noise. Classes are
    drawn at random, or exactly in proportion (`stratified`), as a stratified split holds them."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.arange(n) % 5 if stratified else torch.randint(0, 5, (n,), generator=g)
    return 3.0 * torch.eye(5)[labels] + torch.randn(n, 5, generator=g) + shift


def test_iid_ratio_of_fresh_random_draws_is_near_one_and_a_stratified_draw_scores_lower():
    train = _classes(1_000, seed=0)
    fresh = [frechet_ratio_iid(_classes(400, seed=s), train, m=100)[0] for s in range(1, 9)]
    stratified = [frechet_ratio_iid(_classes(400, seed=s, stratified=True), train, m=100)[0] for s in range(1, 9)]
    assert np.mean(fresh) == pytest.approx(1.0, abs=0.15)
    assert np.mean(stratified) < 0.8 * np.mean(fresh)
    assert frechet_ratio_iid(_classes(400, seed=1, shift=1.0), train, m=100)[0] > 3


def test_iid_ratio_scores_blocks_and_random_rows_against_the_same_rest():
    train, samples = _classes(60, seed=0), _classes(25, seed=1)
    ratio, baseline = frechet_ratio_iid(samples, train, m=10, draws=3)
    g = torch.Generator().manual_seed(0)
    splits = [torch.randperm(60, generator=g) for _ in range(3)]
    assert baseline == pytest.approx(np.mean([frechet_distance(train[p[:10]], train[p[10:]]) for p in splits]))
    score = np.mean([frechet_distance(samples[i:i + 10], train[p[10:]]) for p in splits for i in (0, 10)])
    assert ratio == pytest.approx(score / baseline)


def test_iid_ratio_refuses_a_block_size_the_data_cannot_fill():
    with pytest.raises(ComposerError, match=r"frechet_ratio_iid: block size m=30 needs 2 <= m <= "
                                            r"min\(samples 25, train rows 60 - 2\)"):
        frechet_ratio_iid(_classes(25, seed=1), _classes(60, seed=0), m=30)
