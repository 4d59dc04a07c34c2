"""The user's own images: `image_folder` (one folder, optionally one subfolder per class) and
`unpaired_folder` (two domains in the CycleGAN layout root/{trainA, trainB, testA, testB})."""
from __future__ import annotations

from pathlib import Path

import torch

from composer.data.checks import check_choice, check_count
from composer.data.images import find_images, load_image
from composer.data.table import Table
from composer.errors import ComposerError

DOMAINS = ("A", "B")
UNPAIRED_SPLITS = ("train", "test")


def class_labels(root: Path, files: list[Path]) -> tuple[torch.Tensor | None, list[str]]:
    """Labels from the first folder under `root` of each file, numbered in sorted name order.

    Unlabelled (None, []) when any file lies directly in `root` or when `root` is a single file.
    """
    parts = [f.relative_to(root).parts if f != root else (f.name,) for f in files]
    if any(len(p) < 2 for p in parts):
        return None, []
    classes = sorted({p[0] for p in parts})
    index = {name: i for i, name in enumerate(classes)}
    return torch.tensor([index[p[0]] for p in parts], dtype=torch.int64), classes


def image_folder(*, path, size: int = 64, channels: int = 3, extensions=None) -> Table:
    """Every PNG/JPEG under `path` (recursive), center-cropped, resized to `size`², in [-1, 1].

    With one subfolder per class (`path/cat/*.png`, `path/dog/*.png`) y holds the class index
    and `info["classes"]` the sorted subfolder names; otherwise y is None. `extensions` replaces
    the default set (.png, .jpg, .jpeg). The images are held in memory.
    """
    check_count("image_folder", "size", size)
    check_choice("image_folder", "channels", channels, (1, 3))
    root = Path(path).expanduser()
    files = find_images(root, extensions)
    x = torch.stack([load_image(f, size, channels) for f in files])
    y, classes = class_labels(root, files)
    return Table(x=x, y=y, kind="image", info={"path": str(root), "classes": classes})


def unpaired_folder(
    *, root, domain: str = "A", split: str = "train", size: int = 256, channels: int = 3
) -> Table:
    """One domain of an unpaired image-to-image task: the images of `root/{split}{domain}`."""
    check_choice("unpaired_folder", "domain", domain, DOMAINS)
    check_choice("unpaired_folder", "split", split, UNPAIRED_SPLITS)
    base = Path(root).expanduser()
    folder = base / f"{split}{domain}"
    if not folder.is_dir():
        raise ComposerError(
            f"unpaired_folder: '{folder}' does not exist; expected the CycleGAN layout "
            f"'{base}/{{trainA, trainB, testA, testB}}'"
        )
    table = image_folder(path=folder, size=size, channels=channels)
    return Table(x=table.x, y=table.y, kind="image", info={**table.info, "domain": domain})
