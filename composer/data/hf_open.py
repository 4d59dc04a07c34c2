"""Opening a 🤗 `datasets` dataset from local data only: a `save_to_disk` folder (Dataset or
DatasetDict), a local parquet/arrow/csv/json file or folder of them, a local `imagefolder`, or a hub
dataset name that the local cache already holds. Nothing is ever downloaded.

Every failure is an `ArgumentError` naming the argument (`path`, `split`, `builder`), so that
`composer.data.inputs` reports it at that key's YAML line.
"""
from __future__ import annotations

import contextlib
import glob
import os
import re
from pathlib import Path

from composer.data.lazy import ArgumentError
from composer.errors import did_you_mean

INSTALL = "pip install 'composer-graphs[datasets]'"
BUILDERS = ("auto", "imagefolder", "parquet", "arrow", "csv", "json")
SUFFIX_BUILDERS = {".parquet": "parquet", ".arrow": "arrow", ".csv": "csv", ".json": "json", ".jsonl": "json"}
HUB_NAME = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")
DISK_MARKERS = ("dataset_dict.json", "state.json")   # what save_to_disk writes


def require(module: str, where: str = "hf_dataset"):
    """Import `module` (datasets, transformers) or say how to install it."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise ArgumentError(f"{where}: the '{module}' library is not installed; install it with {INSTALL}",
                            "source") from None


def check_builder(builder) -> None:
    if builder not in BUILDERS:
        raise ArgumentError(f"hf_dataset: builder={builder!r} is not allowed; expected one of "
                            f"{', '.join(BUILDERS)}{did_you_mean(str(builder), BUILDERS)}", "builder")


def is_disk_folder(path: Path) -> bool:
    """Whether `path` is a folder written by `Dataset.save_to_disk` or `DatasetDict.save_to_disk`."""
    return path.is_dir() and any((path / marker).is_file() for marker in DISK_MARKERS)


def open_dataset(path, split: str = "train", builder: str = "auto"):
    """The split `split` of the dataset at `path` (a resolved local path or a hub name), as a
    memory-mapped `datasets.Dataset` (rows are read only when indexed)."""
    return pick_split(open_splits(path, builder), split, path)


def split_names(path, builder: str = "auto") -> list[str]:
    """The splits of the dataset at `path` (a lone Dataset is its own 'train')."""
    loaded = open_splits(path, builder)
    return list(loaded.keys()) if hasattr(loaded, "keys") else ["train"]


def open_splits(path, builder: str = "auto"):
    """The dataset at `path` as `datasets` opens it: a DatasetDict of splits, or one Dataset."""
    datasets = require("datasets")
    check_builder(builder)
    local = Path(str(path)).expanduser()
    if is_disk_folder(local):
        return datasets.load_from_disk(str(local))
    if local.exists():
        return _load_files(datasets, local, builder)
    if HUB_NAME.match(str(path)) and not str(path).startswith("."):
        return _load_cached_hub(datasets, str(path), builder)
    where = "" if local.is_absolute() else \
        f"; a relative path is looked up next to the graph file, then in {Path.cwd()}"
    raise ArgumentError(f"hf_dataset: path '{path}' does not exist (a save_to_disk folder, a parquet, arrow, "
                        "csv or json file or folder, an image folder, or a hub dataset name already in the "
                        f"local cache){where}", "path")


def _load_files(datasets, local: Path, builder: str):
    """A local file or folder through `datasets.load_dataset(builder, data_files | data_dir)`."""
    if local.is_file():
        chosen = SUFFIX_BUILDERS.get(local.suffix.lower()) if builder == "auto" else builder
        if chosen is None:
            raise ArgumentError(f"hf_dataset: cannot tell the format of '{local}' from its suffix; expected "
                                f"{', '.join(SUFFIX_BUILDERS)}, or name it with builder: (one of "
                                f"{', '.join(BUILDERS[1:])})", "builder")
        return _guarded(lambda: datasets.load_dataset(chosen, data_files=str(local)), local)
    if builder == "auto":
        return _guarded(lambda: datasets.load_dataset(str(local)), local)
    return _guarded(lambda: datasets.load_dataset(builder, data_dir=str(local)), local)


def _guarded(load, where):
    """`load()` with the library's own failure (no data files, unreadable files) as a located error."""
    try:
        with offline():
            return load()
    except ArgumentError:
        raise
    except Exception as err:  # noqa: BLE001 -- the library raises many types; reported at `path`
        raise ArgumentError(f"hf_dataset: datasets could not load '{where}': {type(err).__name__}: {err}",
                            "path") from None


@contextlib.contextmanager
def offline():
    """`HF_HUB_OFFLINE=1` for the `datasets` and `huggingface_hub` libraries while loading, whatever the
    environment says, so that nothing is downloaded."""
    import datasets
    import huggingface_hub.constants as hub

    saved = datasets.config.HF_HUB_OFFLINE, hub.HF_HUB_OFFLINE
    datasets.config.HF_HUB_OFFLINE = hub.HF_HUB_OFFLINE = True
    try:
        yield
    finally:
        datasets.config.HF_HUB_OFFLINE, hub.HF_HUB_OFFLINE = saved


def hub_prepared(name: str) -> bool:
    """Whether the datasets cache holds a prepared copy of the hub dataset `name`
    (HF_DATASETS_CACHE/namespace___name/config/version/hash), which `load_dataset` reads offline."""
    import datasets

    pattern = os.path.join(str(datasets.config.HF_DATASETS_CACHE), "___".join(name.split("/")), "*", "*", "*")
    return any(os.path.isdir(p) for p in glob.glob(pattern))


def hub_snapshot(name: str) -> Path | None:
    """The hub cache's snapshot folder of the dataset repository `name` (HF_HUB_CACHE/datasets--ns--name:
    the revision refs/main names, else the newest snapshot), or None."""
    root = hub_root(name)
    ref = root / "refs" / "main"
    if ref.is_file() and (root / "snapshots" / ref.read_text().strip()).is_dir():
        return root / "snapshots" / ref.read_text().strip()
    snapshots = sorted((p for p in (root / "snapshots").glob("*") if p.is_dir()), key=lambda p: p.stat().st_mtime)
    return snapshots[-1] if snapshots else None


def _load_cached_hub(datasets, name: str, builder: str):
    """A hub dataset from the local caches only: its prepared copy, else its files in the hub cache."""
    if hub_prepared(name):
        return _guarded(lambda: datasets.load_dataset(name), name)
    snapshot = hub_snapshot(name)
    if snapshot is not None:
        return _load_files(datasets, snapshot, builder)
    raise ArgumentError(
        f"hf_dataset: '{name}' is neither a local path nor a hub dataset in the local caches "
        f"({datasets.config.HF_DATASETS_CACHE}, {hub_root(name)}); "
        "composer does not download data. Provide it locally: download it once elsewhere and "
        f"`datasets.load_dataset('{name}').save_to_disk(DIR)`, then set path: DIR (or point path: at its "
        "parquet files)", "path")


def hub_root(name: str) -> Path:
    """Where the hub cache keeps the dataset repository `name`."""
    import huggingface_hub.constants as hub

    return Path(hub.HF_HUB_CACHE) / ("datasets--" + "--".join(name.split("/")))


def pick_split(loaded, split: str, where):
    """The split `split` of a DatasetDict (a lone Dataset is its own 'train' split)."""
    if not hasattr(loaded, "keys"):
        if split != "train":
            raise ArgumentError(f"hf_dataset: '{where}' holds one dataset without splits (split: train); "
                                f"got split={split!r}", "split")
        return loaded
    if split not in loaded:
        names = list(loaded.keys())
        raise ArgumentError(f"hf_dataset: '{where}' has no split {split!r}; it has {', '.join(names)}"
                            f"{did_you_mean(str(split), names)}", "split")
    return loaded[split]


def features_of(path, split: str = "train", builder: str = "auto"):
    """The dataset's column schema (`datasets.Features`) without reading its rows where the format
    allows: a save_to_disk folder is memory-mapped, a parquet file's schema is its footer; other
    formats are opened (csv and json are parsed once into the datasets cache)."""
    datasets = require("datasets")
    local = Path(str(path)).expanduser()
    files = [local] if local.is_file() else sorted(local.rglob("*.parquet")) if local.is_dir() else []
    if not is_disk_folder(local) and files and all(f.suffix == ".parquet" for f in files) \
            and builder in ("auto", "parquet"):
        import pyarrow.parquet as pq

        return datasets.Features.from_arrow_schema(pq.read_schema(files[0]))
    return open_dataset(path, split, builder).features
