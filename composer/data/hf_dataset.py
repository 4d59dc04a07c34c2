"""`hf_dataset`: a 🤗 `datasets` dataset as a data source, its columns mapped to fields.

`image:` → x (decoded with Pillow and prepared exactly as `image_folder` prepares a file:
EXIF-rotated, converted to `channels`, center-cropped, resized to `size`², in [-1, 1]), `label:` →
y (int64), `target:` → the paired image field `target`, `points:` → x of kind points (a numeric
list column), `text:` → the field `text`, int64 token ids `[max_length]` from a local tokenizer.
Rows are decoded on demand from the memory-mapped Arrow table (`HFRows`), so the same decoder
serves the in-memory table and a streamed `LazyTable` (`composer.data.lazy`).
"""
from __future__ import annotations

import torch

from composer.data.checks import check_choice, check_count
from composer.data.hf_open import check_builder, features_of, offline, open_dataset, require, split_names
from composer.data.images import background_rgb, image_to_tensor, to_mode
from composer.data.lazy import ArgumentError, check_streaming, folder_table
from composer.data.source import image_fields
from composer.errors import ComposerError, did_you_mean

COLUMN_KEYS = ("image", "points", "label", "target", "text")   # argument → a column of the dataset
FIELD_OF = {"image": "x", "points": "x", "target": "target", "text": "text"}
PATH_ARGS = ("path", "tokenizer")      # resolved against the graph file's folder (Source.paths)


def hf_dataset(
    *, path, split: str = "train", builder: str = "auto", image=None, points=None, label=None, target=None,
    text=None, tokenizer=None, max_length: int = 77, size: int = 64, channels: int = 3, dim=None,
    held_out="auto", stream="auto", workers="auto", background=None,
):
    """A 🤗 datasets dataset from local data (never downloaded); columns map to fields.

    `path`: a `save_to_disk` folder (a DatasetDict's `split` is picked), a parquet, arrow, csv or
    json file or folder, an image folder (`builder: imagefolder`, or auto from the files), or a
    hub dataset name already in the local caches (prepared by datasets, or its files in the hub
    cache); relative paths are looked up next to the graph
    file, then in the working directory. Columns: `image` → x (`size`², `channels`, in [-1, 1] as
    for `image_folder`) or `points` → x (a numeric list column, kind points, length `dim`: given,
    or read from the features schema, else from the first row); `label` → y (int64: a ClassLabel,
    an integer column, or strings numbered in sorted order, `info["classes"]`); `target` → the
    paired image field `target`; `text` → field `text`, int64 token ids `[max_length]` (padded and
    truncated) from the local `tokenizer` folder (transformers' AutoTokenizer, local files only).
    `held_out`: the split metrics and plots compare against (auto: "test" when the dataset has
    one, else the training split itself). `stream`/`workers` as for `image_folder`: auto streams
    above 256 MiB of decoded rows, reading only a batch's rows from the memory-mapped Arrow table.
    Images decode as for `image_folder`: 16-bit grey keeps its scale, and transparent pixels are
    composited on `background` (white, black or [r, g, b]), refused without it.

    Example: `{source: hf_dataset, path: data/pets, split: train, image: image, label: label, size: 64}`
    """
    args = dict(locals())
    check_hf_args(args)
    dataset = open_dataset(path, split, builder)
    columns = {key: args[key] for key in COLUMN_KEYS if args[key] is not None}
    kinds = check_columns(dataset, columns, path)
    dataset = dataset.select_columns(sorted(set(columns.values())))
    if points is not None:
        args["dim"] = points_dim(dataset.features[points], dataset, points, dim)
    layout = hf_fields(args)
    y, classes = labels_of(dataset, label) if label is not None else (None, [])
    decode = HFRows(dataset, {FIELD_OF[k]: (c, kinds[k]) for k, c in columns.items() if k != "label"},
                    size, channels, tokenizer, max_length, args["dim"], background_rgb(background))
    if tokenizer is not None:
        decode.tokenizer()          # a missing or broken tokenizer fails here, not in a worker
    names = tuple(name for name in layout if name != "y")
    info = {"path": str(path), "split": split, "columns": columns, "classes": classes}
    return folder_table(decode, len(dataset), names, row_bytes(layout), stream=stream, workers=workers, y=y,
                        info=info, kind="image" if image is not None else "points")


def held_out_args(args: dict) -> dict:
    """The arguments of the held-out data (`Source.held_out`): split = `held_out`, where auto is
    "test" when the dataset has that split, else the training split."""
    held_out, split = args.get("held_out", "auto"), args.get("split", "train")
    names = split_names(args["path"], args.get("builder", "auto"))
    if held_out == "auto":
        return {"split": "test" if "test" in names else split}
    if held_out not in names:
        raise ArgumentError(f"hf_dataset: held_out: '{args['path']}' has no split {held_out!r}; it has "
                            f"{', '.join(names)}{did_you_mean(str(held_out), names)}", "held_out")
    return {"split": held_out}


def row_bytes(layout: dict) -> int:
    """One decoded sample's bytes (labels excluded: they are held at start)."""
    return sum(torch.Size(shape).numel() * torch.empty((), dtype=dtype).element_size()
               for name, (shape, dtype) in layout.items() if name != "y")


def check_hf_args(args: dict) -> None:
    """Everything `hf_dataset` can refuse without reading data (`Source.check`, at validation)."""
    require("datasets")
    check_streaming(args, "hf_dataset")
    check_builder(args.get("builder", "auto"))
    background_rgb(args.get("background"), "hf_dataset")
    for key in (*COLUMN_KEYS, "split", "held_out"):
        if args.get(key) is not None and not isinstance(args[key], str):
            what = "a split name" if key in ("split", "held_out") else "a column name"
            raise ArgumentError(f"hf_dataset: {key}={args[key]!r}; expected {what}", key)
    if (args.get("image") is None) == (args.get("points") is None):
        raise ArgumentError("hf_dataset: name exactly one column for x: image: COLUMN (pictures) or points: "
                            "COLUMN (numeric lists)", "points" if args.get("points") is not None else "image")
    if args.get("target") is not None and args.get("image") is None:
        raise ArgumentError("hf_dataset: target: (a paired image) needs image: as well", "target")
    if (args.get("text") is None) != (args.get("tokenizer") is None):
        raise ArgumentError("hf_dataset: text: needs tokenizer: FOLDER (a local tokenizer saved with "
                            "save_pretrained) and tokenizer: needs text: COLUMN; token ids are only honest "
                            "with the tokenizer the model is trained with", "text" if args.get("text") else "tokenizer")
    if args.get("text") is not None:
        require("transformers")
    _check_counts(args)


def _check_counts(args: dict) -> None:
    for key in ("size", "max_length"):
        _located(check_count, key, args.get(key, 1))
    _located(check_choice, "channels", args.get("channels", 3), (1, 3))
    if args.get("dim") is not None:
        _located(check_count, "dim", args["dim"])


def _located(check, key, *values) -> None:
    try:
        check("hf_dataset", key, *values)
    except ComposerError as err:
        raise ArgumentError(str(err), key) from None


def hf_fields(args: dict) -> dict:
    """{field: (shape, dtype)} from the arguments; a `points` column without `dim` reads the
    dataset's features schema (and its first row when the schema leaves the length open)."""
    if args.get("image") is not None:
        out = image_fields(args.get("channels", 3), args.get("size", 64), labels=args.get("label") is not None,
                           extra=("target",) if args.get("target") is not None else ())
    else:
        dim = args.get("dim") or schema_dim(args)
        out = {"x": ((dim,), torch.float32), **({"y": ((), torch.int64)} if args.get("label") else {})}
    if args.get("text") is not None:
        out["text"] = ((args.get("max_length", 77),), torch.int64)
    return out


def schema_dim(args: dict) -> int:
    """The length of the `points` column, from the schema (cheap) or the first row."""
    path, split, builder, column = args["path"], args.get("split", "train"), args.get("builder", "auto"), args["points"]
    try:
        features = features_of(path, split, builder)
    except ArgumentError as err:
        raise ArgumentError(f"{err}; the length of a points column comes from the data unless dim: N gives it",
                            err.key) from None
    if column not in features:
        raise unknown_column("points", column, list(features), path)
    if getattr(features[column], "length", -1) not in (-1, None):
        return int(features[column].length)
    return points_dim(features[column], open_dataset(path, split, builder), column, None)


def points_dim(feature, dataset, column: str, dim) -> int:
    """The length of a numeric list column: `dim` when given, else the schema's or the first row's."""
    length = getattr(feature, "length", -1)
    found = int(length) if length not in (-1, None) else len(dataset[0][column]) if len(dataset) else 0
    if dim is not None and dim != found:
        raise ArgumentError(f"hf_dataset: dim={dim} but column '{column}' holds vectors of length {found}", "dim")
    return found


def unknown_column(key: str, column: str, names: list, path) -> ArgumentError:
    return ArgumentError(f"hf_dataset: {key}: '{column}' is not a column of '{path}'{did_you_mean(column, names)}; "
                         f"its columns are {', '.join(names)}", key)


def check_columns(dataset, columns: dict, path) -> dict:
    """Each named column exists and holds what its argument needs; returns {argument: kind}."""
    features, kinds = dataset.features, {}
    for key, column in columns.items():
        if column not in features:
            raise unknown_column(key, column, list(features), path)
        kind = KIND_OF[key]
        if not fits(kind, features[column]):
            raise ArgumentError(f"hf_dataset: {key}: column '{column}' is {features[column]}; expected "
                                f"{WANTED[kind]}", key)
        kinds[key] = kind
    return kinds


def fits(kind: str, feature) -> bool:
    """Whether a column's feature holds what a field of `kind` is made from."""
    import datasets

    strings = ("string", "large_string")
    if kind == "image":
        return isinstance(feature, datasets.Image)
    if kind == "points":
        inner = getattr(feature, "feature", None)
        return isinstance(feature, (datasets.List, datasets.Sequence, datasets.LargeList)) \
            and isinstance(inner, datasets.Value) and inner.dtype.startswith(NUMBERS)
    if kind == "text":
        return isinstance(feature, datasets.Value) and feature.dtype in strings
    return isinstance(feature, datasets.ClassLabel) or (
        isinstance(feature, datasets.Value) and (feature.dtype.startswith(("int", "uint")) or feature.dtype in strings))


KIND_OF = {"image": "image", "target": "image", "points": "points", "text": "text", "label": "label"}
NUMBERS = ("int", "uint", "float")
WANTED = {"image": "an Image feature", "points": "a list of numbers", "text": "a string column",
          "label": "a ClassLabel, an integer or a string column"}


def labels_of(dataset, column: str) -> tuple[torch.Tensor, list]:
    """y (int64) from a label column, read once at start (one Arrow column, no image decoded)."""
    import datasets

    values = dataset.data.column(column).to_pylist()
    if any(v is None for v in values):
        raise ArgumentError(f"hf_dataset: label: column '{column}' has missing values", "label")
    feature = dataset.features[column]
    if isinstance(feature, datasets.ClassLabel) or not isinstance(values[0] if values else 0, str):
        y = torch.tensor(values, dtype=torch.int64)
        if len(y) and int(y.min()) < 0:
            raise ArgumentError(f"hf_dataset: label: column '{column}' holds negative labels ({int(y.min())}: "
                                "unlabelled rows?); filter them out first (Dataset.filter, save_to_disk)", "label")
        return y, list(feature.names) if isinstance(feature, datasets.ClassLabel) else []
    classes = sorted(set(values))
    index = {name: i for i, name in enumerate(classes)}
    return torch.tensor([index[v] for v in values], dtype=torch.int64), classes


class HFRows:
    """Row i of a dataset as `{field: tensor}` (picklable, so that DataLoader workers decode;
    the tokenizer is loaded once per process)."""

    def __init__(self, dataset, plan: dict, size: int, channels: int, tokenizer, max_length: int, dim=None,
                 background=None):
        self.dataset, self.plan, self.size, self.channels, self.dim = dataset, plan, size, channels, dim
        self.background = background
        self.tokenizer_path, self.max_length, self._tokenizer = tokenizer, max_length, None

    def __getstate__(self):
        return {**self.__dict__, "_tokenizer": None}

    def __call__(self, i: int) -> dict[str, torch.Tensor]:
        row = self.dataset[int(i)]
        return {name: self.convert(row[column], kind, column, i) for name, (column, kind) in self.plan.items()}

    def convert(self, value, kind: str, column: str, i: int) -> torch.Tensor:
        if kind == "image":
            try:
                image = to_mode(value, self.channels, self.background, f"hf_dataset: the image in column '{column}', row {i},")
            except (AttributeError, OSError, ValueError) as err:
                raise ComposerError(f"hf_dataset: cannot read the image in column '{column}', row {i}: {err}") from err
            return image_to_tensor(image, self.size, self.channels)
        if kind == "points":
            if value is None or len(value) != self.dim:
                raise ComposerError(f"hf_dataset: column '{column}', row {i}: {value!r} is not a vector of length "
                                    f"{self.dim} (the length of the first row, or dim:)")
            return torch.tensor(value, dtype=torch.float32)
        ids = self.tokenizer()(value, padding="max_length", truncation=True, max_length=self.max_length)["input_ids"]
        return torch.tensor(ids, dtype=torch.int64)

    def tokenizer(self):
        if self._tokenizer is None:
            self._tokenizer = load_tokenizer(self.tokenizer_path)
        return self._tokenizer


def load_tokenizer(path):
    """transformers' AutoTokenizer from a local folder (never downloaded); it must be able to pad."""
    transformers = require("transformers")
    try:
        with offline():
            tokenizer = transformers.AutoTokenizer.from_pretrained(str(path), local_files_only=True)
    except (OSError, ValueError) as err:
        raise ArgumentError(f"hf_dataset: cannot load a tokenizer from '{path}' (a local folder written by "
                            f"save_pretrained; nothing is downloaded): {err}", "tokenizer") from None
    if tokenizer.pad_token is None:
        raise ArgumentError(f"hf_dataset: the tokenizer in '{path}' has no pad token; token ids of a fixed "
                            "max_length need one (set tokenizer.pad_token and save it again)", "tokenizer")
    return tokenizer
