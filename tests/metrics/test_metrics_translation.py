import pytest
import torch

from composer.data.digit_styles import digit_styles, thicken
from composer.data.digits import digits
from composer.errors import ComposerError
from composer.metrics.digits_classifier import accuracy, digits_classifier, domain_classifier
from composer.metrics.translation import cycle_l1, ideal_translation, label_preservation


@pytest.fixture(autouse=True)
def _private_cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("COMPOSER_CACHE", str(tmp_path_factory.getbasetemp() / "composer-cache"))


@pytest.mark.slow
def test_label_preservation_counts_agreeing_predictions():
    test = digits(split="test")
    assert label_preservation(test.x, test.y, digits_classifier()) >= 0.97
    assert label_preservation(test.x, (test.y + 1) % 10, digits_classifier()) < 0.05


@pytest.mark.slow
def test_ideal_a_to_b_translation_is_recognised_by_the_domain_b_classifier():
    b_classifier = domain_classifier("B", "thick", 16, 0)
    assert accuracy(b_classifier, digit_styles(domain="B", split="test")) >= 0.95
    a_test = digit_styles(domain="A", split="test")
    assert label_preservation(thicken(a_test.x), a_test.y, b_classifier) >= 0.95


class Item:
    def __init__(self, target, **args):
        self.target, self.args = target, args


def test_the_ideal_translation_exists_only_between_the_two_domains_of_one_task():
    a, b = Item("digit_styles", domain="A", size=16), Item("digit_styles", domain="B", size=16, split="train")
    assert torch.equal(ideal_translation(a, b), thicken(digit_styles(domain="A", split="test").x))
    assert torch.equal(thicken(ideal_translation(b, a)), digit_styles(domain="B", split="test").x)
    assert ideal_translation(a, Item("digit_styles", domain="A", size=16)) is None
    assert ideal_translation(a, Item("digit_styles", domain="B", size=8)) is None
    assert ideal_translation(a, Item("digit_styles", domain="B")) is not None    # size 16 by default
    assert ideal_translation(Item("digits", size=16), b) is None


def test_cycle_l1():
    x = torch.rand(4, 1, 8, 8) * 2 - 1
    assert cycle_l1(x, x) == 0.0
    assert cycle_l1(x, -x) == pytest.approx(float(2 * x.abs().mean()), rel=1e-6)


def test_translation_errors():
    with pytest.raises(ComposerError, match=r"label_preservation: 3 images and 2 labels"):
        label_preservation(torch.zeros(3, 1, 8, 8), torch.zeros(2, dtype=torch.int64), digits_classifier())
    with pytest.raises(ComposerError, match=r"cycle_l1: shapes differ"):
        cycle_l1(torch.zeros(2, 1, 8, 8), torch.zeros(2, 1, 16, 16))
