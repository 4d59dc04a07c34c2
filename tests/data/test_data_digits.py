import numpy as np
import pytest
import torch

from composer.data import SOURCES
from composer.data.digits import digit_images, digits
from composer.errors import ComposerError


def test_digits_train_and_test_partition_all_1797_images():
    train, test = digits(split="train"), digits(split="test")
    everything = digits(split="all")
    assert len(everything) == 1797 and len(train) + len(test) == 1797
    assert abs(len(test) / 1797 - 0.2) < 0.01
    rows = {tuple(r) for r in everything.x.flatten(1).tolist()}
    train_rows = {tuple(r) for r in train.x.flatten(1).tolist()}
    test_rows = {tuple(r) for r in test.x.flatten(1).tolist()}
    assert train_rows.isdisjoint(test_rows) and train_rows | test_rows == rows


def test_digits_shape_range_levels_and_labels():
    table = digits(split="train")
    assert table.x.shape[1:] == (1, 8, 8) and table.x.dtype == torch.float32
    assert table.x.min() == -1.0 and table.x.max() == 1.0
    levels = torch.unique(table.x)
    assert len(levels) == 17 and torch.allclose(levels, torch.linspace(-1, 1, 17))
    assert table.y.dtype == torch.int64 and table.y.unique().tolist() == list(range(10))


def test_digits_split_is_stratified_and_seeded():
    test = digits(split="test")
    counts = torch.bincount(test.y, minlength=10)
    assert counts.min() >= 34 and counts.max() <= 38
    assert torch.equal(digits(split="test").x, test.x)
    assert not torch.equal(digits(split="test", seed=1).x, test.x)


def test_digits_resized_to_16():
    table = digits(split="test", size=16)
    assert table.x.shape[1:] == (1, 16, 16)
    assert table.x.min() >= -1.0 and table.x.max() <= 1.0
    small = torch.nn.functional.adaptive_avg_pool2d(table.x, 8)
    assert (small - digits(split="test").x).abs().mean() < 0.15


def test_digit_images_match_scikit_learn():
    from sklearn.datasets import load_digits

    x, y = digit_images(8)
    bunch = load_digits()
    assert np.allclose((x[:, 0].numpy() + 1) * 8, bunch.images)
    assert np.array_equal(y.numpy(), bunch.target)


def test_digits_errors_name_the_value_and_the_allowed_set():
    with pytest.raises(ComposerError, match=r"digits: split='val' is not allowed; expected one of train, test, all"):
        digits(split="val")
    with pytest.raises(ComposerError, match=r"did you mean 'train'"):
        digits(split="trian")
    with pytest.raises(ComposerError, match=r"digits: test_fraction=1.5; expected a number in \(0, 1\)"):
        digits(test_fraction=1.5)
    with pytest.raises(ComposerError, match=r"digits: size=0; expected an integer >= 1"):
        digits(size=0)


def test_sources_are_registered_by_name():
    assert SOURCES["digits"].load is digits
