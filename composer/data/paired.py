"""Paired image-to-image data for pix2pix (Isola et al. 2017): each sample is an input `x` and the
image it should become, `fields["target"]`, of the same shape.

`paired_folder` reads the user's pairs, either as two folders A and B with matching file names or
as the side-by-side images of the pix2pix data sets (facades, maps, edges2shoes: A on the left,
B on the right). `paired_digits` is a built-in task on scikit-learn's bundled digits that needs
no files: turn an outline (or a thickened or inverted digit) back into the plain digit.
"""
from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F

from composer.data.checks import check_choice, check_count
from composer.data.digit_styles import invert, thicken
from composer.data.digits import NUM_CLASSES, digit_images
from composer.data.images import background_rgb, check_folder, find_images, image_to_tensor, load_image, open_image
from composer.data.lazy import folder_table
from composer.data.splits import split_indices
from composer.data.table import Table
from composer.errors import ComposerError

LAYOUTS = ("folders", "AB")
DIRECTIONS = ("AtoB", "BtoA")
SIDES = ("A", "B")
MAX_LISTED = 5  # unmatched names shown in an error


# ---------------------------------------------------------------- folders on disk
def split_folder(root, split: str) -> Path:
    """`root/split`, or a `ComposerError` listing the splits that `root` does hold."""
    base = Path(root).expanduser()
    folder = base / str(split)
    if folder.is_dir():
        return folder
    if not base.is_dir():
        raise ComposerError(f"paired_folder: root '{base}' does not exist")
    found = sorted(p.name for p in base.iterdir() if p.is_dir() and not p.name.startswith("."))
    raise ComposerError(
        f"paired_folder: split folder '{folder}' does not exist; "
        f"'{base}' holds {', '.join(found) if found else 'no folders'}"
    )


def listed(names: list[str]) -> str:
    """The first `MAX_LISTED` names, and how many more there are."""
    more = f" (and {len(names) - MAX_LISTED} more)" if len(names) > MAX_LISTED else ""
    return ", ".join(names[:MAX_LISTED]) + more


def side_files(folder: Path, extensions) -> dict[str, Path]:
    """The images under `folder` keyed by relative path without the suffix ("sub/001"), so that
    A/001.jpg pairs with B/001.png; two files with one key are an error."""
    files: dict[str, Path] = {}
    for file in find_images(folder, extensions):
        key = file.relative_to(folder).with_suffix("").as_posix()
        if key in files:
            raise ComposerError(
                f"paired_folder: '{files[key].name}' and '{file.name}' in '{file.parent}' have "
                "the same name; the pair of a file in B is found by its name without the suffix"
            )
        files[key] = file
    return files


def matched_files(base: Path, extensions) -> tuple[list[str], list[Path], list[Path]]:
    """Sorted names and the A and B files of `base/A` and `base/B`, which must hold the same names."""
    for side in SIDES:
        if not (base / side).is_dir():
            hint = "; for side-by-side images use layout='AB'" if any(base.glob("*.*")) else ""
            raise ComposerError(
                f"paired_folder: '{base / side}' does not exist; layout 'folders' expects "
                f"'{base}/A/NAME' and '{base}/B/NAME' with matching names{hint}"
            )
    a, b = side_files(base / "A", extensions), side_files(base / "B", extensions)
    if a.keys() != b.keys():
        only_a, only_b = sorted(a.keys() - b.keys()), sorted(b.keys() - a.keys())
        raise ComposerError(
            f"paired_folder: '{base}/A' and '{base}/B' hold different file names "
            f"(matched without the suffix): only in A: {listed(only_a) or 'none'}; "
            f"only in B: {listed(only_b) or 'none'}"
        )
    names = sorted(a)
    return names, [a[n] for n in names], [b[n] for n in names]


class PairedImages:
    """Row i of the layout base/{A, B}/NAME: `{"x": A_i, "target": B_i}` (swapped for BtoA),
    each `[channels, size, size]` (picklable, so that DataLoader workers can decode)."""

    def __init__(self, files_a: list[Path], files_b: list[Path], size: int, channels: int, swap: bool,
                 background=None):
        self.files_a, self.files_b, self.size, self.channels, self.swap = files_a, files_b, size, channels, swap
        self.background = background

    def __call__(self, i: int) -> dict[str, torch.Tensor]:
        a = load_image(self.files_a[i], self.size, self.channels, self.background)
        b = load_image(self.files_b[i], self.size, self.channels, self.background)
        return {"x": b, "target": a} if self.swap else {"x": a, "target": b}


class SideBySideImages:
    """Row i of the pix2pix layout base/*.jpg: the left half A and right half B of file i, as
    `{"x": A, "target": B}` (swapped for BtoA)."""

    def __init__(self, files: list[Path], size: int, channels: int, swap: bool, background=None):
        self.files, self.size, self.channels, self.swap, self.background = files, size, channels, swap, background

    def __call__(self, i: int) -> dict[str, torch.Tensor]:
        a, b = split_halves(self.files[i], self.size, self.channels, self.background)
        return {"x": b, "target": a} if self.swap else {"x": a, "target": b}


def folder_pairs(base: Path, size: int, channels: int, extensions, swap: bool, background=None):
    """`(names, row decoder)` of the layout base/{A, B}/NAME."""
    names, files_a, files_b = matched_files(base, extensions)
    return names, PairedImages(files_a, files_b, size, channels, swap, background)


def split_halves(file: Path, size: int, channels: int, background=None) -> tuple[torch.Tensor, torch.Tensor]:
    """One side-by-side image (width = 2 × height) → its left half A and right half B, each
    `[channels, size, size]` in [-1, 1] (transparency on `background`, as `load_image`)."""
    image = open_image(file, channels, background_rgb(background, "paired_folder"))
    width, height = image.size
    if width != 2 * height:
        raise ComposerError(
            f"paired_folder: image '{file}' is {width}×{height} (width × height); layout 'AB' "
            "expects two squares side by side (width = 2 × height, A on the left, B on the right)"
        )
    left, right = image.crop((0, 0, height, height)), image.crop((height, 0, width, height))
    return image_to_tensor(left, size, channels), image_to_tensor(right, size, channels)


def side_by_side_pairs(base: Path, size: int, channels: int, extensions, swap: bool, background=None):
    """`(names, row decoder)` of the pix2pix layout base/*.jpg, A the left and B the right half."""
    if (base / "A").is_dir() and (base / "B").is_dir():
        raise ComposerError(
            f"paired_folder: '{base}' holds folders A and B; for them use layout='folders' "
            "(layout 'AB' reads side-by-side images)"
        )
    files = find_images(base, extensions)
    names = [f.relative_to(base).with_suffix("").as_posix() for f in files]
    return names, SideBySideImages(files, size, channels, swap, background)


def paired_folder(
    *,
    root,
    split: str = "train",
    layout: str = "folders",
    direction: str = "AtoB",
    size: int = 256,
    channels: int = 3,
    extensions=None,
    stream="auto",
    workers="auto",
    background=None,
) -> Table:
    """The pairs of `root/{split}`: x the input, `fields["target"]` the image to produce, no y.

    layout "folders": `root/{split}/A/NAME` and `root/{split}/B/NAME`, paired by relative path
    without the suffix (A/001.jpg with B/001.png); both sides must hold the same names.
    layout "AB": the pix2pix data sets' `root/{split}/*.jpg`, each image two squares side by side
    (width = 2 × height), A the left half and B the right half.
    direction "AtoB" makes x = A and target = B; "BtoA" swaps them. Each image (or half) is
    center-cropped, resized to `size`² and mapped to [-1, 1]: x and target are float32
    `[N, channels, size, size]`, in sorted name order (`info["names"]`). `stream` and `workers`
    as for `image_folder`: false holds the pairs in memory, true decodes them per batch in
    DataLoader workers, auto streams above 256 MiB of decoded pixels (both sides together).
    `background` (white, black or [r, g, b]): the colour transparent pixels are composited on; an
    image with transparent pixels and no background is refused.
    """
    check_choice("paired_folder", "layout", layout, LAYOUTS)
    check_choice("paired_folder", "direction", direction, DIRECTIONS)
    check_count("paired_folder", "size", size)
    check_choice("paired_folder", "channels", channels, (1, 3))
    check_folder({"stream": stream, "workers": workers, "background": background}, "paired_folder")
    base = split_folder(root, split)
    pairs = folder_pairs if layout == "folders" else side_by_side_pairs
    names, decode = pairs(base, size, channels, extensions, swap=direction == "BtoA", background=background)
    info = {"path": str(base), "layout": layout, "direction": direction, "names": names}
    return folder_table(decode, len(names), ("x", "target"), 2 * channels * size * size * 4,
                        stream=stream, workers=workers, info=info)


# ---------------------------------------------------------------- built-in digits task
def outline(x: torch.Tensor) -> torch.Tensor:
    """The morphological gradient, dilation − erosion over 3×3, mapped from [0, 2] to [-1, 1]:
    bright along the digit's edges, dark on flat paper and inside wide strokes."""
    dilation = F.max_pool2d(x, kernel_size=3, stride=1, padding=1)
    erosion = -F.max_pool2d(-x, kernel_size=3, stride=1, padding=1)
    return dilation - erosion - 1.0


TASKS = {"edges": outline, "thick": thicken, "invert": invert}


def paired_digits(
    *, task: str = "edges", size: int = 16, split: str = "train", test_fraction: float = 0.2, seed: int = 0
) -> Table:
    """A built-in pix2pix task on the 1,797 digits: x the transformed digit (the input),
    `fields["target"]` the plain digit, y its class (int64, for evaluation).

    task "edges": x is the digit's outline (see `outline`); "thick": x is the digit with strokes
    thickened by a 3×3 max-pool; "invert": x = −digit (dark ink on bright paper). x and target are
    float32 `[N, 1, size, size]` in [-1, 1]; the transform is applied after resizing to `size`.
    `split` ("train", "test", "all") is the seeded class-stratified split that `digits` uses.
    """
    check_choice("paired_digits", "task", task, tuple(TASKS))
    check_count("paired_digits", "size", size)
    plain, y = digit_images(size)
    keep = torch.from_numpy(split_indices("paired_digits", y.numpy(), split, test_fraction, seed))
    target = plain[keep].contiguous()
    x = TASKS[task](target).clamp(-1.0, 1.0).contiguous()
    info = {"num_classes": NUM_CLASSES, "task": task, "test_fraction": test_fraction, "seed": seed}
    return Table(x=x, y=y[keep], kind="image", info=info, fields={"target": target})
