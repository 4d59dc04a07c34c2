import torch

from composer.data.toy2d import moons, swiss_roll


def test_moons_shape_labels_and_range():
    table = moons(n=2_000)
    assert table.x.shape == (2_000, 2) and table.kind == "points"
    assert table.y.unique().tolist() == [0, 1]
    assert table.x[:, 0].min() > -1.5 and table.x[:, 0].max() < 2.5
    assert torch.equal(moons(n=50, seed=1).x, moons(n=50, seed=1).x)


def test_swiss_roll_is_2d_roughly_unit_and_unlabelled():
    table = swiss_roll(n=5_000)
    assert table.x.shape == (5_000, 2) and table.y is None and table.kind == "points"
    assert 0.8 < table.x.abs().max() < 2.0
    assert 0.3 < table.x.std() < 1.0
