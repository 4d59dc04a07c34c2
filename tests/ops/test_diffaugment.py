"""The `diffaugment` flow op (DiffAugment): each policy does what its docstring says, gradients reach
the images, draws come from the run's generator, and a graph feeds the critic through it."""
from types import SimpleNamespace

import pytest
import torch

from composer import api
from composer.ops.diffaugment import DiffAugment
from composer.errors import SpecError
from composer.graph.view import format_table
from specs import small_dcgan

OFF = {"brightness": 0, "contrast": 0, "translation": 0, "cutout": 0}


def _apply(op, x, seed=0):
    return op(SimpleNamespace(generator=torch.Generator().manual_seed(seed)), x)


def _images(n=16, c=1, h=8, w=8):
    return torch.rand(n, c, h, w, generator=torch.Generator().manual_seed(3)) * 2 - 1


def test_every_policy_off_is_the_identity():
    x = _images()
    assert torch.equal(_apply(DiffAugment(**OFF), x), x)


def test_brightness_adds_one_offset_per_image_within_its_range():
    x = _images()
    shift = _apply(DiffAugment(**{**OFF, "brightness": 0.5}), x) - x
    per_image = shift.flatten(1)
    assert torch.allclose(per_image, per_image[:, :1].expand_as(per_image), atol=1e-6)
    assert per_image.abs().max() <= 0.5 and per_image[:, 0].std() > 0.1


def test_contrast_scales_about_the_image_mean_and_keeps_it():
    x = _images()
    y = _apply(DiffAugment(**{**OFF, "contrast": 0.5}), x)
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    assert torch.allclose(y.mean(dim=(1, 2, 3), keepdim=True), mean, atol=1e-5)
    scale = ((y - mean).flatten(1) / (x - mean).flatten(1))
    assert scale.min() >= 0.5 - 1e-4 and scale.max() <= 1.5 + 1e-4


def test_translation_shifts_by_whole_pixels_within_range_and_fills_zeros():
    x = _images(n=32)
    y = _apply(DiffAugment(**{**OFF, "translation": 0.25}), x)      # up to 2 pixels each way on 8x8
    seen = set()
    for xi, yi in zip(x, y):
        matches = [(dy, dx) for dy in range(-2, 3) for dx in range(-2, 3)
                   if torch.equal(yi, _shifted(xi, dy, dx))]
        assert matches, "the output is not a shift of its input by at most 2 pixels"
        seen.add(matches[0])
    assert len(seen) > 5


def _shifted(x, dy, dx):
    out = torch.zeros_like(x)
    h, w = x.shape[-2:]
    out[:, max(dy, 0):h + min(dy, 0), max(dx, 0):w + min(dx, 0)] = x[:, max(-dy, 0):h - max(dy, 0), max(-dx, 0):w - max(dx, 0)]
    return out


def test_cutout_zeroes_one_square_of_the_given_side_at_most():
    ones = torch.ones(64, 2, 8, 8)
    y = _apply(DiffAugment(**{**OFF, "cutout": 0.5}), ones)         # a 4x4 square, may hang over the border
    zeros = y[:, 0] == 0
    assert torch.equal(y[:, 0], y[:, 1])                        # one square for every channel
    rows, cols = zeros.any(dim=2).sum(dim=1), zeros.any(dim=1).sum(dim=1)
    assert torch.equal(zeros.sum(dim=(1, 2)), rows * cols)      # a rectangle
    assert rows.max() == 4 and cols.max() == 4 and rows.min() >= 2 and cols.min() >= 2


def test_gradients_reach_the_images_and_draws_follow_the_generator():
    x = _images().requires_grad_()
    op = DiffAugment()
    _apply(op, x).square().sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert torch.equal(_apply(op, x, seed=5), _apply(op, x, seed=5))
    assert not torch.equal(_apply(op, x, seed=5), _apply(op, x, seed=6))


@pytest.mark.parametrize("kwargs, message", [
    ({"translation": 2}, "translation must be a fraction of the image size in [0, 1], got 2"),
    ({"cutout": -0.1}, "cutout must be a fraction of the image size in [0, 1], got -0.1"),
    ({"brightness": -1}, "brightness must be a number >= 0, got -1"),
])
def test_bad_arguments_are_named(kwargs, message):
    with pytest.raises(ValueError) as err:
        DiffAugment(**kwargs)
    assert str(err.value) == message


def _gan(flow_extra, real="real_seen", fake="fake_seen"):
    data = small_dcgan(steps=2)
    data["flow"].update(flow_extra)
    data["objectives"]["gan"].update(real=real, fake=fake, penalty="r1", penalty_weight=1.0)
    return data


def test_a_gan_feeds_its_critic_augmented_images_and_g_learns_through_them():
    spec = api.from_dict(_gan({"real_seen": "diffaugment(real)", "fake_seen": "diffaugment(fake, cutout=0.25)"}))
    text = format_table(api.plan(spec))
    assert "diffaugment[brightness=0.5, contrast=0.5, translation=0.125, cutout=0.25](fake)" in text
    run = api.runner(spec)
    before = [p.detach().clone() for p in run.unwrapped("G").parameters()]
    run.step()
    assert any(not torch.equal(b, p) for b, p in zip(before, run.unwrapped("G").parameters()))


def test_augmenting_a_vector_is_refused_at_its_flow_line():
    spec = _gan({"real_seen": "diffaugment(real)", "fake_seen": "diffaugment(z)"})
    with pytest.raises(SpecError) as err:
        api.plan(api.from_dict(spec))
    assert "diffaugment expects images [B, C, H, W], got shape" in str(err.value) and "fake_seen" in str(err.value)
