import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from composer.data.digit_styles import thicken
from composer.data.digits import digit_images
from composer.data.paired import outline, paired_digits, paired_folder
from composer.data.table import Table
from composer.errors import ComposerError


# ---------------------------------------------------------------- Table fields
def test_table_fields_and_columns_in_order():
    x, target = torch.zeros(3, 1, 4, 4), torch.ones(3, 1, 4, 4)
    table = Table(x=x, y=torch.arange(3), fields={"target": target, "mask": torch.zeros(3)})
    assert list(table.columns()) == ["x", "y", "target", "mask"]
    assert table.columns()["target"] is target and table.columns()["x"] is x
    unlabelled = Table(x=x, fields={"target": target})
    assert list(unlabelled.columns()) == ["x", "target"]
    assert Table(x=x).fields == {} and list(Table(x=x).columns()) == ["x"]


def test_table_fields_are_copied_from_the_callers_dict():
    fields = {"target": torch.ones(2, 3)}
    table = Table(x=torch.zeros(2, 3), kind="points", fields=fields)
    fields["extra"] = torch.ones(2)
    assert list(table.fields) == ["target"]


def test_table_field_of_wrong_length():
    with pytest.raises(ComposerError, match=r"Table.fields\['target'\]: first dim must be N = 3 \(x has shape \(3, 1, 4, 4\)\), got shape \(2, 1, 4, 4\)"):
        Table(x=torch.zeros(3, 1, 4, 4), fields={"target": torch.zeros(2, 1, 4, 4)})
    with pytest.raises(ComposerError, match=r"Table.fields\['w'\]: first dim must be N = 3 .* got shape \(\)"):
        Table(x=torch.zeros(3, 1, 4, 4), fields={"w": torch.tensor(1.0)})
    with pytest.raises(ComposerError, match=r"Table.fields\['w'\]: expected a torch.Tensor, got list"):
        Table(x=torch.zeros(3, 1, 4, 4), fields={"w": [1, 2, 3]})


def test_table_field_names_must_be_identifiers_and_not_x_or_y():
    x = torch.zeros(2, 1, 4, 4)
    with pytest.raises(ComposerError, match=r"Table.fields: name 'y' is reserved; extra fields may not be named x, y"):
        Table(x=x, fields={"y": torch.zeros(2)})
    with pytest.raises(ComposerError, match=r"Table.fields: name 'x' is reserved"):
        Table(x=x, fields={"x": x})
    with pytest.raises(ComposerError, match=r"Table.fields: name 'the target' is not a Python identifier"):
        Table(x=x, fields={"the target": x})
    with pytest.raises(ComposerError, match=r"Table.fields: expected a dict of name → tensor, got list"):
        Table(x=x, fields=[x])


# ---------------------------------------------------------------- paired_folder
def _noise(seed: int, size=(8, 8)) -> np.ndarray:
    """Random RGB pixels `[H, W, 3]` uint8, distinct per seed."""
    return np.random.default_rng(seed).integers(0, 256, (*size, 3), dtype=np.uint8)


def _save(path, pixels: np.ndarray):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path)


def _as_tensor(pixels: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(pixels.astype(np.float32) / 127.5 - 1.0).permute(2, 0, 1)


def _folders(root, names=("a", "b", "c"), split="train"):
    """root/split/{A, B}/NAME.png of random pixels; returns {name: (A pixels, B pixels)}."""
    pairs = {}
    for i, name in enumerate(names):
        pairs[name] = _noise(2 * i), _noise(2 * i + 1)
        _save(root / split / "A" / f"{name}.png", pairs[name][0])
        _save(root / split / "B" / f"{name}.png", pairs[name][1])
    return pairs


@pytest.mark.parametrize("direction", ["AtoB", "BtoA"])
def test_paired_folder_folders_layout_pairs_files_by_name(tmp_path, direction):
    pairs = _folders(tmp_path, names=("c", "a", "b"))
    table = paired_folder(root=tmp_path, direction=direction, size=8)
    assert table.x.shape == table.fields["target"].shape == (3, 3, 8, 8) and table.y is None
    assert table.info["names"] == ["a", "b", "c"] and list(table.columns()) == ["x", "target"]
    src, dst = (0, 1) if direction == "AtoB" else (1, 0)
    for i, name in enumerate(table.info["names"]):
        assert torch.equal(table.x[i], _as_tensor(pairs[name][src]))
        assert torch.equal(table.fields["target"][i], _as_tensor(pairs[name][dst]))


def test_paired_folder_matches_names_across_suffixes_and_subfolders(tmp_path):
    _save(tmp_path / "val" / "A" / "sub" / "1.jpg", _noise(0))
    _save(tmp_path / "val" / "B" / "sub" / "1.png", _noise(1))
    table = paired_folder(root=tmp_path, split="val", size=4, channels=1)
    assert table.x.shape == (1, 1, 4, 4) and table.info["names"] == ["sub/1"]


@pytest.mark.parametrize("direction", ["AtoB", "BtoA"])
def test_paired_folder_ab_layout_splits_left_and_right_halves(tmp_path, direction):
    left, right = _noise(0), _noise(1)
    _save(tmp_path / "train" / "1.jpg", np.zeros((8, 16, 3), dtype=np.uint8))
    _save(tmp_path / "train" / "2.png", np.concatenate([left, right], axis=1))
    table = paired_folder(root=tmp_path, layout="AB", direction=direction, size=8)
    assert table.x.shape == table.fields["target"].shape == (2, 3, 8, 8)
    a, b = (table.x, table.fields["target"]) if direction == "AtoB" else (table.fields["target"], table.x)
    assert torch.equal(a[1], _as_tensor(left)) and torch.equal(b[1], _as_tensor(right))
    assert table.info["names"] == ["1", "2"] and table.info["layout"] == "AB"


def test_paired_folder_ab_layout_resizes_each_half(tmp_path):
    pixels = np.zeros((8, 16, 3), dtype=np.uint8)
    pixels[:, 8:] = 255  # B, the right half, is white
    _save(tmp_path / "train" / "1.png", pixels)
    table = paired_folder(root=tmp_path, layout="AB", size=4)
    assert torch.all(table.x == -1.0) and torch.all(table.fields["target"] == 1.0)


def test_paired_folder_mismatched_names_are_listed(tmp_path):
    _folders(tmp_path, names=("a", "b"))
    for i in range(7):
        _save(tmp_path / "train" / "A" / f"extra{i}.png", _noise(9))
    _save(tmp_path / "train" / "B" / "z.png", _noise(9))
    with pytest.raises(ComposerError, match=r"'.*train/A' and '.*train/B' hold different file names \(matched without the suffix\): only in A: extra0, extra1, extra2, extra3, extra4 \(and 2 more\); only in B: z$"):
        paired_folder(root=tmp_path)


def test_paired_folder_same_name_twice_on_one_side(tmp_path):
    _folders(tmp_path, names=("a",))
    _save(tmp_path / "train" / "A" / "a.jpg", _noise(9))
    with pytest.raises(ComposerError, match=r"paired_folder: 'a.jpg' and 'a.png' in '.*A' have the same name"):
        paired_folder(root=tmp_path)


def test_paired_folder_ab_layout_rejects_images_that_are_not_two_squares(tmp_path):
    _save(tmp_path / "train" / "1.png", _noise(0, size=(8, 12)))
    with pytest.raises(ComposerError, match=r"image '.*1.png' is 12×8 \(width × height\); layout 'AB' expects two squares side by side \(width = 2 × height"):
        paired_folder(root=tmp_path, layout="AB")


def test_paired_folder_missing_and_empty_folders(tmp_path):
    with pytest.raises(ComposerError, match=r"paired_folder: root '.*nope' does not exist"):
        paired_folder(root=tmp_path / "nope")
    (tmp_path / "train").mkdir()
    (tmp_path / "val").mkdir()
    with pytest.raises(ComposerError, match=r"split folder '.*test' does not exist; '.*' holds train, val"):
        paired_folder(root=tmp_path, split="test")
    with pytest.raises(ComposerError, match=r"'.*train/A' does not exist; layout 'folders' expects '.*train/A/NAME' and '.*train/B/NAME' with matching names$"):
        paired_folder(root=tmp_path)
    with pytest.raises(ComposerError, match=r"image folder '.*train' holds no image files"):
        paired_folder(root=tmp_path, layout="AB")
    (tmp_path / "train" / "A").mkdir()
    (tmp_path / "train" / "B").mkdir()
    with pytest.raises(ComposerError, match=r"image folder '.*train/A' holds no image files"):
        paired_folder(root=tmp_path)


def test_paired_folder_wrong_layout_hints(tmp_path):
    _save(tmp_path / "train" / "1.png", _noise(0, size=(8, 16)))
    with pytest.raises(ComposerError, match=r"'.*train/A' does not exist; .* for side-by-side images use layout='AB'"):
        paired_folder(root=tmp_path)
    _folders(tmp_path, names=("a",), split="val")
    with pytest.raises(ComposerError, match=r"'.*val' holds folders A and B; for them use layout='folders'"):
        paired_folder(root=tmp_path, split="val", layout="AB")


def test_paired_folder_argument_errors(tmp_path):
    with pytest.raises(ComposerError, match=r"paired_folder: layout='ab' is not allowed; expected one of folders, AB \(did you mean 'AB'\?\)"):
        paired_folder(root=tmp_path, layout="ab")
    with pytest.raises(ComposerError, match=r"paired_folder: direction='A2B' is not allowed; expected one of AtoB, BtoA"):
        paired_folder(root=tmp_path, direction="A2B")
    with pytest.raises(ComposerError, match=r"paired_folder: channels=2 is not allowed; expected one of 1, 3"):
        paired_folder(root=tmp_path, channels=2)
    with pytest.raises(ComposerError, match=r"paired_folder: size=0; expected an integer >= 1"):
        paired_folder(root=tmp_path, size=0)


# ---------------------------------------------------------------- paired_digits
def test_paired_digits_shapes_ranges_and_labels():
    table = paired_digits()
    target = table.fields["target"]
    assert table.info["task"] == "edges" and list(table.columns()) == ["x", "y", "target"]
    assert table.x.shape == target.shape == (len(table), 1, 16, 16)
    assert table.x.dtype == target.dtype == torch.float32
    for t in (table.x, target):
        assert t.min() >= -1 and t.max() <= 1
    assert table.y.dtype == torch.int64 and table.y.unique().tolist() == list(range(10))


def test_paired_digits_train_and_test_partition_the_set():
    train, test = paired_digits(split="train"), paired_digits(split="test")
    assert len(train) + len(test) == len(paired_digits(split="all")) == 1797
    rows = lambda x: {tuple(r) for r in x.flatten(1).tolist()}  # noqa: E731
    assert rows(train.fields["target"]).isdisjoint(rows(test.fields["target"]))
    assert torch.equal(paired_digits(split="test", seed=0).x, test.x)
    assert not torch.equal(paired_digits(split="test", seed=1).x, test.x)


@pytest.mark.parametrize("task", ["edges", "thick", "invert"])
def test_paired_digits_target_is_the_plain_digit_and_input_its_transform(task):
    table = paired_digits(task=task, split="all", size=8)
    plain, y = digit_images(8)
    assert torch.equal(table.fields["target"], plain) and torch.equal(table.y, y)
    expected = {"edges": outline(plain), "thick": thicken(plain), "invert": -plain}[task]
    assert torch.allclose(table.x, expected)
    assert (table.x - plain).abs().mean() > 0.3


@pytest.mark.parametrize("task", ["edges", "thick", "invert"])
def test_paired_digits_input_keeps_the_label_recoverable(task):
    train, test = paired_digits(task=task, split="train"), paired_digits(task=task, split="test")
    centroids = torch.stack([train.x[train.y == c].flatten(1).mean(0) for c in range(10)])
    guess = torch.cdist(test.x.flatten(1), centroids).argmin(1)
    assert (guess == test.y).float().mean() > 0.75


def test_outline_is_bright_on_edges_and_dark_on_flat_regions():
    x = -torch.ones(1, 1, 7, 7)
    x[..., 1:6, 1:6] = 1.0  # a 5×5 bright square
    edges = outline(x)
    assert edges[0, 0, 3, 3] == -1.0 and edges[0, 0, 1, 1] == 1.0 and edges[0, 0, 0, 0] == 1.0


def test_paired_digits_errors():
    with pytest.raises(ComposerError, match=r"paired_digits: task='edge' is not allowed; expected one of edges, thick, invert \(did you mean 'edges'\?\)"):
        paired_digits(task="edge")
    with pytest.raises(ComposerError, match=r"paired_digits: split='val' is not allowed; expected one of train, test, all"):
        paired_digits(split="val")
    with pytest.raises(ComposerError, match=r"paired_digits: size=0; expected an integer >= 1"):
        paired_digits(size=0)


# ---------------------------------------------------------------- start-up time
@pytest.mark.slow
def test_data_modules_import_without_scikit_learn():
    modules = "composer.data.table, composer.data.digits, composer.data.toy2d, composer.data.splits, " \
        "composer.data.digit_styles, composer.data.paired, composer.data.folders, composer.data.mixtures"
    code = f"import sys, {modules}; print(sorted(m for m in sys.modules if m.split('.')[0] == 'sklearn'))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
