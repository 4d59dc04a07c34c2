"""16-bit PNGs keep their scale, and transparency is composited on a declared background or refused
(composer/data/images.py): each case on a PNG written here."""
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from composer.api import from_dict, validate
from composer.data import SOURCES
from composer.data.folders import image_folder
from composer.data.images import load_image
from composer.data.paired import paired_folder
from composer.errors import ComposerError, SpecError


def png48(path, rgb: np.ndarray) -> None:
    """A 16-bit RGB PNG (Pillow writes none): `rgb` is uint16 [H, W, 3]."""
    h, w, _ = rgb.shape
    rows = b"".join(b"\0" + rgb[i].astype(">u2").tobytes() for i in range(h))

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 16, 2, 0, 0, 0))
                     + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


def gradient16(side=16) -> np.ndarray:
    """0..63840 in equal steps over the image (the issue's gradient)."""
    return np.linspace(0, 63840, side * side).reshape(side, side).round().astype(np.uint16)


def test_a_16_bit_grey_png_keeps_its_scale(tmp_path):
    values = gradient16()
    Image.fromarray(values).save(tmp_path / "g.png")
    for channels in (1, 3):
        x = load_image(tmp_path / "g.png", 16, channels)
        assert x.shape == (channels, 16, 16)
        expected = values.astype(np.float32) / 32767.5 - 1
        assert np.abs(x[0].numpy() - expected).max() < 1e-5      # exact at the same size: no 8-bit rounding
        assert (x >= 0.999).float().mean() < 0.01                # was 99.2% saturated at the maximum


def test_a_16_bit_grey_png_resized_stays_within_its_range(tmp_path):
    values = gradient16(32)
    Image.fromarray(values).save(tmp_path / "g.png")
    x = load_image(tmp_path / "g.png", 8, 1)
    assert -1 <= x.min() and x.max() <= 1
    assert abs(float(x.mean()) - float((values / 32767.5 - 1).mean())) < 0.01   # the gradient's mean, not the maximum


def test_a_16_bit_rgb_png_keeps_its_scale(tmp_path):
    rgb = np.stack([gradient16(), gradient16().T, np.full((16, 16), 30000, np.uint16)], -1)
    png48(tmp_path / "c.png", rgb)
    x = load_image(tmp_path / "c.png", 16, 3).permute(1, 2, 0).numpy()
    assert np.abs(x - (rgb / 32767.5 - 1)).max() < 2 / 255           # within one 8-bit step


def rgba(path, alpha: int) -> None:
    pixels = np.zeros((4, 4, 4), np.uint8)
    pixels[..., 0], pixels[..., 3] = 255, 255
    pixels[0, 0, 3] = alpha                                       # one pixel (red) with this opacity
    Image.fromarray(pixels).save(path)


def test_transparent_pixels_without_a_background_are_refused_naming_the_option(tmp_path):
    rgba(tmp_path / "a.png", 0)
    with pytest.raises(ComposerError, match=r"'.*a\.png' has transparent pixels \(mode RGBA\); set the image "
                                            r"source's background: white, black or \[r, g, b\]"):
        image_folder(path=tmp_path, size=4, channels=3)


@pytest.mark.parametrize("background, corner", [("white", (1, 1, 1)), ("black", (-1, -1, -1)),
                                                ([0, 0, 255], (-1, -1, 1))])
def test_transparent_pixels_are_composited_on_the_background(tmp_path, background, corner):
    rgba(tmp_path / "a.png", 0)
    x = image_folder(path=tmp_path, size=4, channels=3, background=background).x[0]
    assert tuple(x[:, 0, 0].tolist()) == corner and tuple(x[:, 1, 1].tolist()) == (1, -1, -1)


def test_half_transparent_grey_la_and_palette_transparency(tmp_path):
    Image.fromarray(np.stack([np.zeros((4, 4), np.uint8), np.full((4, 4), 128, np.uint8)], -1)) \
        .save(tmp_path / "la.png")
    x = load_image(tmp_path / "la.png", 4, 1, background="white")
    assert abs(float(x[0, 0, 0]) - (127 / 127.5 - 1)) < 0.01       # black at half opacity on white: mid grey
    palette = Image.new("P", (4, 4), 0)
    palette.putpalette([10, 20, 30, 200, 200, 200])
    palette.putpixel((0, 0), 1)
    palette.save(tmp_path / "p.png", transparency=1)
    with pytest.raises(ComposerError, match="has transparent pixels \\(mode P\\)"):
        load_image(tmp_path / "p.png", 4, 3)
    assert load_image(tmp_path / "p.png", 4, 3, background="black")[:, 0, 0].tolist() == [-1, -1, -1]


def test_an_opaque_alpha_channel_hides_nothing_and_needs_no_background(tmp_path):
    rgba(tmp_path / "a.png", 255)
    assert image_folder(path=tmp_path, size=4, channels=3).x[0][:, 0, 0].tolist() == [1, -1, -1]


def test_paired_folder_takes_the_background_too(tmp_path):
    for side in ("A", "B"):
        (tmp_path / "train" / side).mkdir(parents=True)
        rgba(tmp_path / "train" / side / "1.png", 0)
    with pytest.raises(ComposerError, match="background"):
        paired_folder(root=tmp_path, size=4).x
    table = paired_folder(root=tmp_path, size=4, background="white")
    assert table.x[0][:, 0, 0].tolist() == [1, 1, 1]


@pytest.mark.parametrize("value", ["grey", [0, 0], [0, 0, 256], [0.5, 0, 0], True])
def test_a_bad_background_is_refused_before_any_file_is_read(value):
    with pytest.raises(ComposerError, match=r"background=.*; expected white, black or \[r, g, b\] \(integers 0\.\.255\)"):
        SOURCES["image_folder"].check({"background": value})


def test_validate_locates_a_bad_background(tmp_path):
    data = {"inputs": {"real": {"source": "image_folder", "path": str(tmp_path), "size": 8, "channels": 1,
                                "background": "grey"}, "z": {"noise": "normal", "shape": [4]}},
            "modules": {"G": [{"block": "MLP", "in_features": 4, "hidden": 8, "depth": 1, "out_features": 64},
                              {"block": "Reshape", "shape": [1, 8, 8]}],
                        "D": [{"block": "Flatten"}, {"block": "MLP", "in_features": 64, "hidden": 8, "depth": 1,
                                                     "out_features": 1}]},
            "flow": {"fake": "G(z)"},
            "objectives": {"gan": {"recipe": "adversarial", "critic": "D", "real": "real", "fake": "fake"}},
            "train": {"steps": 1, "batch": 2}}
    with pytest.raises(SpecError, match=r"inputs\.real\.background: .*background='grey'; expected white, black"):
        validate(from_dict(data))
