import pytest
import torch

from composer.errors import ComposerError
from composer.metrics.wasserstein import directions, sliced_wasserstein


def test_identical_sets_are_at_distance_zero_whatever_the_order():
    a = torch.randn(500, 2, generator=torch.Generator().manual_seed(0))
    assert sliced_wasserstein(a, a.flip(0)) == pytest.approx(0.0, abs=1e-12)


def test_a_translation_by_v_gives_the_rms_of_its_projections():
    """Shifting by v moves every projection by θ·v: SW₂² = mean_θ (θ·v)² = |v|²/2 in 2D."""
    a = torch.randn(500, 2, generator=torch.Generator().manual_seed(0))
    v = torch.tensor([3.0, 4.0])
    assert sliced_wasserstein(a, a + v) == pytest.approx(5.0 / 2**0.5, rel=1e-6)


@pytest.mark.parametrize("dim", [2, 5])
def test_directions_are_unit_vectors(dim):
    theta = directions(dim, 64)
    assert theta.shape == (64, dim) and torch.allclose(theta.norm(dim=1), torch.ones(64, dtype=torch.float64))


def test_mismatched_sets_are_refused():
    with pytest.raises(ComposerError, match=r"same shape, got \(3, 2\) and \(4, 2\)"):
        sliced_wasserstein(torch.zeros(3, 2), torch.zeros(4, 2))
