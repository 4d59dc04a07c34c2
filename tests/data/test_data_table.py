import pytest
import torch

from composer.data import Table
from composer.errors import ComposerError


def test_table_holds_images_and_labels():
    table = Table(x=torch.zeros(5, 1, 8, 8), y=torch.arange(5))
    assert len(table) == 5 and table.kind == "image" and table.info == {}


def test_table_rejects_unknown_kind():
    with pytest.raises(ComposerError, match=r"Table.kind: got 'voxels', expected one of \('image', 'points'\)"):
        Table(x=torch.zeros(5, 2), kind="voxels")


def test_table_rejects_wrong_dtype_and_rank():
    with pytest.raises(ComposerError, match="Table.x: got dtype torch.float64, expected torch.float32"):
        Table(x=torch.zeros(5, 2, dtype=torch.float64), kind="points")
    with pytest.raises(ComposerError, match=r"kind 'image' needs 4 dims, got shape \(5, 2\)"):
        Table(x=torch.zeros(5, 2))


def test_table_rejects_labels_of_wrong_length():
    with pytest.raises(ComposerError, match=r"Table.y: expected int64 of shape \(5,\)"):
        Table(x=torch.zeros(5, 2), y=torch.zeros(4, dtype=torch.int64), kind="points")


def test_table_is_frozen():
    table = Table(x=torch.zeros(1, 2), kind="points")
    with pytest.raises(AttributeError):
        table.kind = "image"
