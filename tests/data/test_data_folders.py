import numpy as np
import pytest
import torch
from PIL import Image

from composer.data.folders import image_folder, unpaired_folder
from composer.data.images import load_images
from composer.errors import ComposerError


def _write(path, rgb, size=(20, 20)):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, rgb).save(path)


def test_flat_folder_is_unlabelled_and_scaled_to_minus_one_one(tmp_path):
    _write(tmp_path / "a.png", (255, 255, 255))
    _write(tmp_path / "b.jpg", (0, 0, 0))
    (tmp_path / "notes.png.bak").write_bytes(b"not an image")
    _write(tmp_path / ".hidden" / "c.png", (9, 9, 9))
    table = image_folder(path=tmp_path, size=8)
    assert table.x.shape == (2, 3, 8, 8) and table.y is None and table.kind == "image"
    assert torch.all(table.x[0] == 1.0) and torch.all(table.x[1] == -1.0)
    assert table.info["classes"] == []


def test_class_subfolders_give_sorted_labels(tmp_path):
    _write(tmp_path / "dog" / "1.png", (10, 10, 10))
    _write(tmp_path / "cat" / "deep" / "2.png", (20, 20, 20))
    _write(tmp_path / "cat" / "3.png", (30, 30, 30))
    table = image_folder(path=tmp_path, size=4, channels=1)
    assert table.info["classes"] == ["cat", "dog"]
    assert table.x.shape == (3, 1, 4, 4)
    levels = [round(v) for v in ((table.x[:, 0, 0, 0] + 1) * 127.5).tolist()]
    labels = dict(zip(levels, table.y.tolist()))
    assert labels == {10: 1, 20: 0, 30: 0}


def test_non_square_images_are_center_cropped(tmp_path):
    pixels = np.zeros((10, 30, 3), dtype=np.uint8)
    pixels[:, 10:20] = 255  # the middle third is white
    Image.fromarray(pixels).save(tmp_path / "wide.png")
    x = load_images(tmp_path, size=10, channels=3)
    assert x.shape == (1, 3, 10, 10) and torch.all(x == 1.0)


def test_extensions_filter_and_normalise(tmp_path):
    _write(tmp_path / "a.png", (0, 0, 0))
    _write(tmp_path / "b.JPG", (0, 0, 0))
    assert len(image_folder(path=tmp_path, size=4, extensions=["jpg"])) == 1
    assert len(image_folder(path=tmp_path, size=4, extensions=".PNG")) == 1


def test_missing_folder_error_names_path_and_extensions(tmp_path):
    missing = tmp_path / "nope"
    with pytest.raises(ComposerError, match=r"image folder '.*nope' does not exist \(looking for \.jpeg, \.jpg, \.png files\)"):
        image_folder(path=missing)


def test_empty_folder_error_names_path_and_extensions(tmp_path):
    (tmp_path / "readme.txt").write_text("no images here")
    with pytest.raises(ComposerError, match=r"image folder '.*' holds no image files; searched recursively for \.jpeg, \.jpg, \.png"):
        image_folder(path=tmp_path)
    with pytest.raises(ComposerError, match=r"searched recursively for \.webp"):
        image_folder(path=tmp_path, extensions=["webp"])


def test_unreadable_image_and_bad_channels(tmp_path):
    (tmp_path / "broken.png").write_bytes(b"not a png")
    with pytest.raises(ComposerError, match=r"cannot read image '.*broken.png'"):
        image_folder(path=tmp_path)
    with pytest.raises(ComposerError, match=r"image_folder: channels=4 is not allowed; expected one of 1, 3"):
        image_folder(path=tmp_path, channels=4)


def test_unpaired_folder_reads_the_cyclegan_layout(tmp_path):
    for sub, shade in (("trainA", 0), ("trainB", 255), ("testA", 0), ("testB", 255)):
        for i in range(2 if sub.startswith("train") else 1):
            _write(tmp_path / sub / f"{i}.png", (shade,) * 3, size=(12, 16))
    a = unpaired_folder(root=tmp_path, domain="A", size=8)
    b = unpaired_folder(root=tmp_path, domain="B", split="test", size=8, channels=1)
    assert a.x.shape == (2, 3, 8, 8) and torch.all(a.x == -1.0) and a.info["domain"] == "A"
    assert b.x.shape == (1, 1, 8, 8) and torch.all(b.x == 1.0) and a.y is None


def test_unpaired_folder_errors(tmp_path):
    with pytest.raises(ComposerError, match=r"unpaired_folder: '.*trainA' does not exist; expected the CycleGAN layout"):
        unpaired_folder(root=tmp_path)
    with pytest.raises(ComposerError, match=r"unpaired_folder: domain='C' is not allowed; expected one of A, B"):
        unpaired_folder(root=tmp_path, domain="C")
    with pytest.raises(ComposerError, match=r"unpaired_folder: split='all' is not allowed; expected one of train, test"):
        unpaired_folder(root=tmp_path, split="all")
