import numpy as np
import pytest
import torch

from composer.data.digit_styles import counterparts, digit_styles, domain_indices, thicken, unpaired_halves
from composer.data.digits import digit_images
from composer.errors import ComposerError


def _rows(x: torch.Tensor) -> set:
    return {tuple(r) for r in x.flatten(1).tolist()}


def test_domains_come_from_disjoint_halves():
    _, y = digit_images()
    half_a, half_b = unpaired_halves(y.numpy(), seed=0)
    assert len(np.intersect1d(half_a, half_b)) == 0 and len(half_a) + len(half_b) == 1797
    for split in ("train", "test"):
        assert set(domain_indices(y.numpy(), "A", split, 0)) <= set(half_a)
        assert set(domain_indices(y.numpy(), "B", split, 0)) <= set(half_b)


@pytest.mark.parametrize("style", ["thick", "inverted"])
def test_counterparts_are_the_same_digits_drawn_as_the_other_domain(style):
    plain_a, styled_b = (digit_styles(domain=d, style=style, split="test") for d in "AB")
    a_as_b, b_as_a = (counterparts(domain=d, style=style, split="test") for d in "AB")
    draw = thicken if style == "thick" else torch.neg
    assert torch.equal(a_as_b.x, draw(plain_a.x)) and torch.equal(a_as_b.y, plain_a.y)
    assert torch.equal(draw(b_as_a.x), styled_b.x) and torch.equal(b_as_a.y, styled_b.y)
    assert (a_as_b.info["domain"], b_as_a.info["domain"]) == ("B", "A")
    with pytest.raises(ComposerError, match=r"domain"):
        counterparts(domain="C")


def test_no_image_of_a_has_its_counterpart_in_b():
    plain_a = digit_styles(domain="A", split="all")
    thick_b = digit_styles(domain="B", split="all")
    assert _rows(thicken(plain_a.x)).isdisjoint(_rows(thick_b.x))
    inverted_b = digit_styles(domain="B", style="inverted", split="all")
    assert _rows(plain_a.x).isdisjoint(_rows(-inverted_b.x))


def test_train_and_test_are_disjoint_inside_a_domain():
    train, test = digit_styles(domain="A", split="train"), digit_styles(domain="A", split="test")
    assert _rows(train.x).isdisjoint(_rows(test.x))
    assert len(train) + len(test) == len(digit_styles(domain="A", split="all"))


def test_thick_style_is_visibly_thicker():
    plain_b = digit_styles(domain="A", split="all")
    thick_b = digit_styles(domain="B", split="all")
    assert thick_b.x.mean() > plain_b.x.mean() + 0.2
    ink = lambda x: (x > 0).float().mean()  # noqa: E731
    assert ink(thick_b.x) > 1.5 * ink(plain_b.x)


def test_inverted_style_negates_the_plain_images_of_its_half():
    _, y = digit_images(16)
    inverted = digit_styles(domain="B", style="inverted", split="test")
    plain, _ = digit_images(16)
    keep = torch.from_numpy(domain_indices(y.numpy(), "B", "test", 0))
    assert torch.equal(inverted.x, -plain[keep]) and torch.equal(inverted.y, y[keep])


def test_shapes_labels_and_range():
    table = digit_styles(domain="B", size=16)
    assert table.x.shape[1:] == (1, 16, 16) and table.x.min() >= -1 and table.x.max() <= 1
    assert table.y.unique().tolist() == list(range(10))
    assert table.info["domain"] == "B" and table.info["style"] == "thick"


def test_digit_styles_errors():
    with pytest.raises(ComposerError, match=r"digit_styles: style='bold' is not allowed; expected one of thick, inverted"):
        digit_styles(style="bold")
    with pytest.raises(ComposerError, match=r"digit_styles: domain='b' is not allowed; expected one of A, B"):
        digit_styles(domain="b")
    with pytest.raises(ComposerError, match=r"digit_styles: split='val' is not allowed"):
        digit_styles(split="val")
