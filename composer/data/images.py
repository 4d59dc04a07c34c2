"""Image files and pictures: load a folder of PNG/JPEG files, resize image tensors, write a grid
of images or a scatter plot of 2D points as a PNG.

Image tensors are float `[N, C, H, W]` in [-1, 1] with C = 1 (grey) or 3 (RGB); a pixel value
v ∈ {0..255} maps to v / 127.5 − 1, and a 16-bit value v ∈ {0..65535} to v / 32767.5 − 1 (16-bit
grey keeps its precision through the resize; Pillow reads 16-bit RGB as its high bytes).

Transparency is never dropped without a word: an image with transparent pixels is composited on
the source's `background:` (white, black or [r, g, b]), or refused with a message naming that
option; an alpha channel that is opaque everywhere hides nothing and is dropped.
"""
from __future__ import annotations

import math
from pathlib import Path

import einops
import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageOps, UnidentifiedImageError

from composer.data.checks import check_choice, check_count
from composer.data.lazy import ArgumentError, check_streaming
from composer.errors import ComposerError

IMAGE_EXTENSIONS = (".jpeg", ".jpg", ".png")
MIN_TILE = 32  # grid tiles smaller than this are upscaled by an integer factor
PAD_VALUE = -1.0  # black padding between grid tiles
POINT_RGB = (200, 30, 30)
REFERENCE_RGB = (120, 160, 230)
BACKGROUNDS = {"white": (255, 255, 255), "black": (0, 0, 0)}
SIXTEEN_BIT = ("I;16", "I;16L", "I;16B", "I;16N", "I")   # Pillow's modes of a 16-bit grey PNG
ALPHA_MODES = ("RGBA", "LA", "PA", "RGBa", "La")


# ---------------------------------------------------------------- loading
def normalise_extensions(extensions) -> tuple[str, ...]:
    """`None` → the default set; "PNG", ".png" and "png" all mean ".png"."""
    if extensions is None:
        return IMAGE_EXTENSIONS
    if isinstance(extensions, str):
        extensions = [extensions]
    return tuple(sorted({"." + str(e).lower().lstrip(".") for e in extensions}))


def find_images(path, extensions=None) -> list[Path]:
    """The image files under `path` (recursive, sorted, hidden files skipped), or `[path]` for a file.

    Raises `ComposerError` naming the path and the extensions searched when the folder is
    missing or holds no matching file.
    """
    root, exts = Path(path).expanduser(), normalise_extensions(extensions)
    if root.is_file():
        return [root]
    if not root.is_dir():
        raise ComposerError(f"image folder '{root}' does not exist (looking for {', '.join(exts)} files)")
    files = sorted(
        p for p in root.rglob("*")
        if p.is_file() and p.suffix.lower() in exts
        and not any(part.startswith(".") for part in p.relative_to(root).parts)
    )
    if not files:
        raise ComposerError(
            f"image folder '{root}' holds no image files; searched recursively for {', '.join(exts)}"
        )
    return files


def background_rgb(background, where: str = "image source") -> tuple[int, int, int] | None:
    """The `background:` option of an image source as an RGB triple (None when not given)."""
    if background is None:
        return None
    if isinstance(background, str) and background in BACKGROUNDS:
        return BACKGROUNDS[background]
    if isinstance(background, (list, tuple)) and len(background) == 3 and all(
            isinstance(c, int) and not isinstance(c, bool) and 0 <= c <= 255 for c in background):
        return tuple(background)
    raise ArgumentError(f"{where}: background={background!r}; expected white, black or [r, g, b] "
                        "(integers 0..255), the colour transparent pixels are composited on", "background")


def check_folder(args: dict, where: str = "") -> None:
    """`Source.check` of the folder sources: `stream`, `workers` and `background`, before any file is read."""
    check_streaming(args, where)
    background_rgb(args.get("background"), where or "image source")


def open_image(file, channels: int, background=None) -> Image.Image:
    """One file as an EXIF-rotated Pillow image: mode "L" (channels 1) or "RGB" (channels 3), or
    "F" (values 0..255, any `channels`) for 16-bit grey; transparency composited on `background`."""
    check_choice("load_image", "channels", channels, (1, 3))
    try:
        with Image.open(file) as raw:
            return to_mode(raw, channels, background, f"image '{file}'")
    except (OSError, UnidentifiedImageError, ValueError) as error:
        raise ComposerError(f"cannot read image '{file}': {error}") from error


def to_mode(raw: Image.Image, channels: int, background, what: str) -> Image.Image:
    """An open Pillow image, EXIF-rotated, as "L"/"RGB" for `channels`, or "F" (0..255) for 16-bit
    grey: the one conversion every image source uses (`what` names the image in errors)."""
    image = ImageOps.exif_transpose(raw)
    if image.mode in SIXTEEN_BIT and "transparency" not in image.info:
        return Image.fromarray(np.asarray(image, dtype=np.float32) / 257.0)
    return flatten(image, what, background).convert("L" if channels == 1 else "RGB")


def flatten(image: Image.Image, what: str, background) -> Image.Image:
    """`image` without transparency: composited on `background` (an RGB triple), unchanged when
    every pixel is opaque, else a ComposerError naming the option."""
    if image.mode not in ALPHA_MODES and "transparency" not in image.info:
        return image
    rgba = image.convert("RGBA")
    if rgba.getchannel("A").getextrema()[0] == 255:
        return image
    if background is None:
        raise ComposerError(f"{what} has transparent pixels (mode {image.mode}); set the image "
                            "source's background: white, black or [r, g, b] to composite them on that colour")
    return Image.alpha_composite(Image.new("RGBA", rgba.size, (*background, 255)), rgba).convert("RGB")


def image_to_tensor(image: Image.Image, size: int, channels: int | None = None) -> torch.Tensor:
    """A Pillow "L", "F" (0..255) or "RGB" image → `[C, size, size]` in [-1, 1]: center-cropped to
    a square, resized with Pillow's bicubic filter (antialiased when shrinking); a grey image is
    repeated to 3 channels when `channels` is 3."""
    check_count("load_image", "size", size)
    width, height = image.size
    side = min(width, height)
    left, top = (width - side) // 2, (height - side) // 2
    image = image.crop((left, top, left + side, top + side))
    image = image.resize((size, size), Image.Resampling.BICUBIC)
    pixels = torch.from_numpy(np.clip(np.asarray(image, dtype=np.float32), 0, 255) / 127.5 - 1.0)
    pixels = pixels[None] if image.mode in ("L", "F") else pixels.permute(2, 0, 1).contiguous()
    return pixels.repeat(3, 1, 1) if channels == 3 and len(pixels) == 1 else pixels


def load_image(file, size: int, channels: int, background=None) -> torch.Tensor:
    """One file → `[channels, size, size]` in [-1, 1]: EXIF-rotated, center-cropped to a square,
    resized with Pillow's bicubic filter (antialiased when shrinking); transparency composited on
    `background` (white, black or [r, g, b]; refused when there is some and none is given)."""
    check_choice("load_image", "channels", channels, (1, 3))
    check_count("load_image", "size", size)
    return image_to_tensor(open_image(file, channels, background_rgb(background)), size, channels)


def load_images(path, size: int, channels: int, extensions=None, background=None) -> torch.Tensor:
    """Every image under `path` (a folder, searched recursively, or one file) as
    `[N, channels, size, size]` in [-1, 1], in sorted path order. The whole set is held in memory."""
    return torch.stack([load_image(f, size, channels, background) for f in find_images(path, extensions)])


def resize_images(x: torch.Tensor, size: int) -> torch.Tensor:
    """`[N, C, H, W]` → `[N, C, size, size]` by bilinear interpolation with antialiasing."""
    if x.shape[-2:] == (size, size):
        return x
    resized = F.interpolate(x, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
    return resized.clamp(-1.0, 1.0)


# ---------------------------------------------------------------- writing
def to_uint8(x: torch.Tensor) -> np.ndarray:
    """Values in [-1, 1] → uint8 pixels (clamped, rounded)."""
    return ((x.detach().float().cpu().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).numpy()


def image_grid(x: torch.Tensor, nrow: int | None = None, padding: int = 2) -> torch.Tensor:
    """Tile `[N, C, H, W]` into one `[rows·(h+p)+p, nrow·(w+p)+p, C]` picture.

    `nrow` is the number of images per row (default ⌈√N⌉); tiles smaller than `MIN_TILE` pixels
    are upscaled by the integer factor ⌈MIN_TILE / max(H, W)⌉ (nearest neighbour).
    """
    n, c, h, w = x.shape
    ncol = nrow or math.ceil(math.sqrt(n))
    rows = math.ceil(n / ncol)
    scale = max(1, math.ceil(MIN_TILE / max(h, w)))
    x = x.detach().float().cpu().clamp(-1, 1)
    x = x.repeat_interleave(scale, dim=-2).repeat_interleave(scale, dim=-1)
    blanks = torch.full((rows * ncol - n, c, h * scale, w * scale), PAD_VALUE)
    tiles = F.pad(torch.cat([x, blanks]), (padding, 0, padding, 0), value=PAD_VALUE)
    grid = einops.rearrange(tiles, "(r q) c h w -> c (r h) (q w)", q=ncol)
    grid = F.pad(grid, (0, padding, 0, padding), value=PAD_VALUE)
    return einops.rearrange(grid, "c h w -> h w c")


def save_image_grid(x: torch.Tensor, path, nrow: int | None = None, *, padding: int = 2) -> Path:
    """Write images `[N, C, H, W]` in [-1, 1] (C = 1 or 3) as one PNG grid; see `image_grid`."""
    if x.dim() != 4 or x.shape[1] not in (1, 3) or x.shape[0] == 0:
        raise ComposerError(f"save_image_grid: expected [N>0, 1 or 3, H, W], got {tuple(x.shape)}")
    pixels = to_uint8(image_grid(x, nrow, padding))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels[..., 0] if pixels.shape[-1] == 1 else pixels).save(path)
    return path


def _finite_points(points) -> np.ndarray:
    array = np.asarray(torch.as_tensor(points).detach().cpu().double())
    if array.ndim != 2 or array.shape[1] != 2:
        raise ComposerError(f"save_scatter: expected points of shape [N, 2], got {array.shape}")
    return array[np.isfinite(array).all(axis=1)]


def _box(points: np.ndarray) -> tuple[np.ndarray, float]:
    """Center and half-width (10% margin) of the square holding the corners `[2, 2]` (lo, hi)."""
    lo, hi = points[0], points[1]
    return (lo + hi) / 2, max(float((hi - lo).max()) / 2 * 1.1, 1e-6)


def _view_box(points: np.ndarray, reference: np.ndarray | None) -> tuple[np.ndarray, float]:
    """A square view holding the reference and the middle 99% of the points, but never wider
    than 3× the reference's own view, so a few diverged samples do not shrink the picture."""
    corners = [np.quantile(points, [0.005, 0.995], axis=0)] if len(points) else []
    if reference is not None and len(reference):
        corners.append(np.stack([reference.min(0), reference.max(0)]))
    if not corners:
        return np.zeros(2), 1.0
    lo, hi = np.min([c[0] for c in corners], axis=0), np.max([c[1] for c in corners], axis=0)
    center, half = _box(np.stack([lo, hi]))
    if reference is not None and len(reference):
        ref_center, ref_half = _box(corners[-1])
        if half > 3 * ref_half:
            return ref_center, 3 * ref_half
    return center, half


def _plot(canvas: np.ndarray, points: np.ndarray, center: np.ndarray, half: float, rgb) -> None:
    """Draw each point as a 2×2-pixel dot; y points up; points outside the view are dropped."""
    size = canvas.shape[0]
    u = np.clip((points - (center - half)) / (2 * half) * (size - 2), -1, size)
    col, row = np.round(u[:, 0]).astype(int), size - 2 - np.round(u[:, 1]).astype(int)
    inside = (col >= 0) & (col <= size - 2) & (row >= 0) & (row <= size - 2)
    col, row = col[inside], row[inside]
    for dr, dc in ((0, 0), (0, 1), (1, 0), (1, 1)):
        canvas[row + dr, col + dc] = rgb


def save_scatter(points, path, reference=None, size: int = 512) -> Path:
    """Write 2D `points` (red) over optional `reference` points (light blue) as a `size`² PNG.

    Both axes share one scale (see `_view_box`); points outside the view and non-finite points
    are not drawn.
    """
    check_count("save_scatter", "size", size)
    points = _finite_points(points)
    reference = None if reference is None else _finite_points(reference)
    center, half = _view_box(points, reference)
    canvas = np.full((size, size, 3), 255, dtype=np.uint8)
    if reference is not None:
        _plot(canvas, reference, center, half, REFERENCE_RGB)
    _plot(canvas, points, center, half, POINT_RGB)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(canvas).save(path)
    return path
