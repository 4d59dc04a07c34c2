import json
import math

import pytest
import torch

from composer.data import Table
from composer.data.mixtures import grid, ring
from composer.errors import ComposerError
from composer.metrics import METRICS
from composer.metrics.mixture import PROTOCOL_SAMPLES, mixture, mode_counts, reverse_kl_to_uniform


def test_exact_ring_samples_cover_all_modes():
    table = ring(n=1_000, seed=0)
    samples = ring(n=PROTOCOL_SAMPLES, seed=1).x
    result = mixture(samples, table)
    assert result["modes"] == 8 and result["modes_total"] == 8
    assert result["hq_fraction"] > 0.98  # P(|N(0, I₂)| < 3) = 1 − e^{−4.5} ≈ 0.989
    assert result["reverse_kl"] < 0.01
    json.dumps(result)


def test_exact_grid_samples_cover_all_25_modes():
    result = METRICS["mixture"](grid(n=PROTOCOL_SAMPLES, seed=1).x, grid(n=10))
    assert result["modes"] == 25 and result["hq_fraction"] > 0.98 and result["reverse_kl"] < 0.02


def test_collapsed_samples_cover_one_mode():
    table = ring(n=10)
    samples = torch.tensor([[1.0, 0.0]]) + 0.01 * torch.randn(PROTOCOL_SAMPLES, 2, generator=torch.Generator().manual_seed(0))
    result = mixture(samples, table)
    assert result["modes"] == 1 and result["hq_fraction"] > 0.98
    assert result["reverse_kl"] == pytest.approx(math.log(8))


def test_one_high_quality_sample_is_enough_to_count_a_mode():
    table = ring(n=10)
    samples = torch.tensor([[1.0, 0.0]] * 99 + [[0.0, 1.0]])
    result = mixture(samples, table)
    assert result["modes"] == 2 and result["hq_fraction"] == 1.0


def test_samples_beyond_three_sigma_are_not_high_quality():
    table = ring(n=10)  # std 0.01
    samples = torch.tensor([[1.029, 0.0], [1.031, 0.0], [0.0, 0.0]])
    counts = mode_counts(samples, torch.tensor(table.info["centers"]), 0.01, 3.0)
    assert counts.tolist() == [1, 0, 0, 0, 0, 0, 0, 0]
    result = mixture(samples, table, radius_sigmas=3.5)
    assert result["modes"] == 1 and result["hq_fraction"] == pytest.approx(2 / 3)


def test_reverse_kl_definition():
    assert reverse_kl_to_uniform(torch.tensor([5, 5, 5, 5])) == pytest.approx(0.0)
    assert reverse_kl_to_uniform(torch.tensor([2, 2, 0, 0])) == pytest.approx(math.log(2))
    q = torch.tensor([0.5, 0.25, 0.25])
    assert reverse_kl_to_uniform(torch.tensor([2, 1, 1])) == pytest.approx(float((q * (q * 3).log()).sum()))
    assert reverse_kl_to_uniform(torch.tensor([0, 0, 0])) == pytest.approx(math.log(3))


def test_no_high_quality_sample():
    result = mixture(torch.full((10, 2), 50.0), grid(n=10))
    protocol = {k: result.pop(k) for k in ("modes", "modes_total", "hq_fraction", "reverse_kl")}
    assert protocol == {"modes": 0, "modes_total": 25, "hq_fraction": 0.0, "reverse_kl": pytest.approx(math.log(25))}
    assert sorted(result) == ["sliced_wasserstein", "sliced_wasserstein_sigma", "width_mean", "width_worst"]


def test_mixture_needs_centres():
    table = Table(x=torch.zeros(3, 2), kind="points")
    with pytest.raises(ComposerError, match=r"metric 'mixture' needs a data source with info\['centers'\] and info\['std'\]"):
        mixture(torch.zeros(3, 2), table)


# ---- mode widths and sliced Wasserstein (issue 9) ------------------------------------------

@pytest.mark.parametrize("source", [ring, grid])
def test_exact_mixture_samples_have_unit_width(source):
    table = source(n=10)
    result = mixture(source(n=PROTOCOL_SAMPLES, seed=1).x, table)
    assert result["modes"] == result["modes_total"]
    assert result["hq_fraction"] == pytest.approx(1 - math.exp(-4.5), abs=0.006)  # ≈ 98.9%
    assert result["width_mean"] == pytest.approx(1.0, abs=0.03)
    assert 0.85 < result["width_worst"] < 1.15


def test_shrunk_mixture_has_width_below_one_and_scores_above_exact():
    table = ring(n=10)  # std 0.01
    result = mixture(ring(n=PROTOCOL_SAMPLES, seed=1, std=0.007).x, table)
    assert result["width_mean"] == pytest.approx(0.7, abs=0.03) and result["width_worst"] < 0.75
    assert result["hq_fraction"] > 0.999  # the protocol's fraction rewards the shrinking


def test_collapsed_generator_has_one_width_and_a_large_wasserstein():
    table = ring(n=10)
    collapsed = torch.tensor([[1.0, 0.0]]) + 0.01 * torch.randn(PROTOCOL_SAMPLES, 2, generator=torch.Generator().manual_seed(0))
    result = mixture(collapsed, table)
    exact = mixture(ring(n=PROTOCOL_SAMPLES, seed=1).x, table)
    assert result["modes"] == 1 and result["width_mean"] == pytest.approx(1.0, abs=0.05)
    assert result["sliced_wasserstein"] > 5 * exact["sliced_wasserstein"]
    assert result["sliced_wasserstein_sigma"] == pytest.approx(result["sliced_wasserstein"] / 0.01)


def test_no_measurable_mode_gives_zero_widths():
    result = mixture(torch.zeros(10, 2, dtype=torch.float64), ring(n=10))
    assert result["modes"] == 0 and result["width_mean"] == 0.0 and result["width_worst"] == 0.0
    few = mixture(torch.tensor([[1.0, 0.0]] * 4), ring(n=10))  # 4 < MIN_WIDTH_SAMPLES on its mode
    assert few["modes"] == 1 and few["width_mean"] == 0.0
    json.dumps(result, allow_nan=False)
