import json
import math

import pytest
import torch

from composer.data.digits import digits
from composer.errors import ComposerError
from composer.metrics import METRICS
from composer.metrics.digits_quality import class_entropy, digit_quality


@pytest.fixture(autouse=True)
def _private_cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("COMPOSER_CACHE", str(tmp_path_factory.getbasetemp() / "composer-cache"))


def test_real_test_digits_score_as_perfect():
    train, test = digits(split="train"), digits(split="test")
    result = METRICS["digits"](test.x, train)
    assert result["class_coverage"] == 10 and result["confident_fraction"] > 0.9
    assert result["class_entropy"] == pytest.approx(math.log(10), abs=0.01)
    assert result["frechet_distance"] == pytest.approx(0.0, abs=1e-6)
    json.dumps(result)


def test_frechet_distance_grows_with_noise():
    train, test = digits(split="train"), digits(split="test")
    g = torch.Generator().manual_seed(0)
    distances = [
        digit_quality((test.x + s * torch.randn(test.x.shape, generator=g)).clamp(-1, 1), train)["frechet_distance"]
        for s in (0.0, 0.3, 1.0)
    ]
    assert distances[0] < 1e-6 < distances[1] < distances[2]


@pytest.mark.slow
def test_other_real_digits_are_close_and_collapse_is_caught():
    train, test = digits(split="train", size=16), digits(split="test", size=16)
    real = digit_quality(train.x, train)
    threes = digit_quality(test.x[test.y == 3], train)
    assert real["class_coverage"] == 10 and threes["class_coverage"] <= 2
    assert threes["class_entropy"] < 0.5
    assert threes["frechet_distance"] > 20 * real["frechet_distance"]


def test_class_entropy():
    assert class_entropy(torch.tensor([0, 1, 2, 3]), 10) == pytest.approx(math.log(4))
    assert class_entropy(torch.tensor([7, 7, 7]), 10) == 0.0


def test_digits_metric_rejects_points():
    with pytest.raises(ComposerError, match=r"metric 'digits': expected square images \[N >= 2, C, H, H\], got \(5, 2\)"):
        digit_quality(torch.zeros(5, 2), digits(split="train"))


# ---- Fréchet ratio to the real-vs-real baseline and the class histogram (issue 9) ----------

@pytest.mark.slow
def test_real_digits_score_a_frechet_ratio_below_one_and_the_baseline_is_a_random_draw():
    # the baseline is m = 359 training digits drawn at random against the rest of them, so other
    # random draws of real digits score about 1 (their class counts vary as a sampler's do), and
    # the held-out split, stratified (every class in exact proportion), a luckier draw, below
    train, test = digits(split="train", size=16), digits(split="test", size=16)
    held_out = digit_quality(test.x, train)
    g = torch.Generator().manual_seed(0)
    drawn = digit_quality(train.x[torch.randperm(len(train.x), generator=g)[:720]], train)
    assert held_out["frechet_ratio"] < 0.7 and 0.5 < drawn["frechet_ratio"] < 1.5
    assert held_out["frechet_baseline"] == drawn["frechet_baseline"] > 0
    noisy = digit_quality((test.x + 0.3 * torch.randn(test.x.shape, generator=g)).clamp(-1, 1), train)
    assert noisy["frechet_ratio"] > 1.5 * held_out["frechet_ratio"]


@pytest.mark.slow
def test_noise_scores_a_frechet_ratio_far_above_one():
    train = digits(split="train", size=16)
    noise = torch.rand(360, 1, 16, 16, generator=torch.Generator().manual_seed(0)) * 2 - 1
    result = digit_quality(noise, train)
    assert result["frechet_ratio"] > 50
    assert result["class_share_max"] > 0.5


@pytest.mark.slow
def test_class_histogram_of_real_and_collapsed_digits():
    test = digits(split="test", size=16)
    real = digit_quality(test.x, test)
    shares = [real[f"class_share_{c}"] for c in range(10)]
    assert sum(shares) == pytest.approx(1.0) and real["class_share_min"] == min(shares)
    assert 0.05 <= real["class_share_min"] and real["class_share_max"] <= 0.15
    threes = digit_quality(test.x[test.y == 3], test)
    assert threes["class_share_3"] > 0.9 and threes["class_share_max"] == threes["class_share_3"]


def test_one_predicted_class_has_entropy_zero_not_minus_zero():
    from composer.metrics.digits_quality import class_entropy

    assert repr(class_entropy(torch.tensor([3, 3, 3]), 10)) == "0.0"
    assert abs(class_entropy(torch.arange(10), 10) - math.log(10)) < 1e-12
