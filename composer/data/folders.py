"""The user's own images: `image_folder` (one folder, optionally one subfolder per class) and
`unpaired_folder` (two domains in the CycleGAN layout root/{trainA, trainB, testA, testB})."""
from __future__ import annotations

from pathlib import Path

import torch

from composer.data.checks import check_choice, check_count
from composer.data.images import check_folder, find_images, load_image
from composer.data.lazy import LazyTable, folder_table
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


class FileImages:
    """Row i of a folder table: `{"x": load_image(files[i], size, channels)}` (picklable, so that
    DataLoader workers can decode)."""

    def __init__(self, files: list[Path], size: int, channels: int, background=None):
        self.files, self.size, self.channels, self.background = files, size, channels, background

    def __call__(self, i: int) -> dict[str, torch.Tensor]:
        return {"x": load_image(self.files[i], self.size, self.channels, self.background)}


def image_folder(
    *, path, size: int = 64, channels: int = 3, extensions=None, stream="auto", workers="auto", background=None,
) -> Table:
    """Every PNG/JPEG under `path` (recursive), center-cropped, resized to `size`², in [-1, 1].

    With one subfolder per class (`path/cat/*.png`, `path/dog/*.png`) y holds the class index
    and `info["classes"]` the sorted subfolder names; otherwise y is None. `extensions` replaces
    the default set (.png, .jpg, .jpeg). `stream`: false decodes every image at start and holds
    them in memory; true decodes them on demand, per batch, in `workers` DataLoader processes
    (an integer >= 0, or auto = min(4, CPUs - 1)); auto (the default) streams a folder larger
    than 256 MiB of decoded pixels (`composer.data.lazy`). 16-bit PNGs keep their scale;
    `background` (white, black or [r, g, b]) is the colour transparent pixels are composited on: an
    image with transparent pixels and no background is refused (`composer.data.images`).
    """
    check_count("image_folder", "size", size)
    check_choice("image_folder", "channels", channels, (1, 3))
    check_folder({"stream": stream, "workers": workers, "background": background}, "image_folder")
    root = Path(path).expanduser()
    files = find_images(root, extensions)
    y, classes = class_labels(root, files)
    return folder_table(FileImages(files, size, channels, background), len(files), ("x",), channels * size * size * 4,
                        stream=stream, workers=workers, y=y, info={"path": str(root), "classes": classes})


def unpaired_folder(
    *, root, domain: str = "A", split: str = "train", size: int = 256, channels: int = 3,
    stream="auto", workers="auto", background=None,
) -> Table:
    """One domain of an unpaired image-to-image task: the images of `root/{split}{domain}`;
    `stream`, `workers` and `background` as for `image_folder`."""
    check_choice("unpaired_folder", "domain", domain, DOMAINS)
    check_choice("unpaired_folder", "split", split, UNPAIRED_SPLITS)
    check_folder({"stream": stream, "workers": workers, "background": background}, "unpaired_folder")
    base = Path(root).expanduser()
    folder = base / f"{split}{domain}"
    if not folder.is_dir():
        raise ComposerError(
            f"unpaired_folder: '{folder}' does not exist; expected the CycleGAN layout "
            f"'{base}/{{trainA, trainB, testA, testB}}'"
        )
    table = image_folder(path=folder, size=size, channels=channels, stream=stream, workers=workers,
                         background=background)
    if isinstance(table, LazyTable):
        return table.with_info(domain=domain)
    return Table(x=table.x, y=table.y, kind="image", info={**table.info, "domain": domain})
