"""The `hf_dataset` source (composer/data/hf_dataset.py, hf_open.py): every local loading route,
columns mapped to fields, located errors, shapes known without the data, a short training run,
and a streamed run that resumes exactly. Datasets are built here; nothing is downloaded."""
import json
from pathlib import Path


import numpy as np
import pytest
import torch
import yaml
from PIL import Image

datasets = pytest.importorskip("datasets")

from composer import api  # noqa: E402
from conftest import check_signal_resume  # noqa: E402
from composer.data.folders import image_folder  # noqa: E402
from composer.data.hf_dataset import hf_dataset  # noqa: E402
from composer.data.images import image_to_tensor  # noqa: E402
from composer.data.inputs import fields, reference_table  # noqa: E402
from composer.data.lazy import ArgumentError, LazyTable  # noqa: E402
from composer.errors import SpecError  # noqa: E402
from composer.run import checkpoint  # noqa: E402
from specs import small_2d_gan, small_dcgan  # noqa: E402

CAPTIONS = ["a red square", "a blue square", "red", "a square a square a square a square"]


@pytest.fixture(autouse=True)
def offline(tmp_path, monkeypatch):
    """Offline, with the datasets and hub caches in this test's folder."""
    import huggingface_hub.constants as hub

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "hf_cache")
    monkeypatch.setattr(hub, "HF_HUB_CACHE", str(tmp_path / "hub_cache"))
    datasets.disable_progress_bars()


def pictures(n, side=12, seed=0):
    rng = np.random.default_rng(seed)
    return [Image.fromarray(rng.integers(0, 256, (side, side + 4 * (i % 2), 3), dtype=np.uint8)) for i in range(n)]


def image_dataset(n=12):
    """Images, their paired targets (the next image), class labels and captions."""
    images = pictures(n)
    features = datasets.Features({"img": datasets.Image(), "paired": datasets.Image(),
                                  "label": datasets.ClassLabel(names=["cat", "dog", "owl"]),
                                  "caption": datasets.Value("string")})
    return datasets.Dataset.from_dict({"img": images, "paired": images[1:] + images[:1],
                                       "label": [i % 3 for i in range(n)],
                                       "caption": [CAPTIONS[i % 4] for i in range(n)]}, features=features)


def saved_splits(folder, n=12):
    """A DatasetDict (train: the first n - 4 rows, test: the last 4) written with save_to_disk."""
    data = image_dataset(n)
    splits = {"train": data.select(range(n - 4)), "test": data.select(range(n - 4, n))}
    datasets.DatasetDict(splits).save_to_disk(folder)
    return folder, data


def tokenizer_folder(folder):
    """A tiny word-level tokenizer with a pad token, saved with save_pretrained."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {"[PAD]": 0, "[UNK]": 1, "a": 2, "red": 3, "blue": 4, "square": 5}
    model = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    model.pre_tokenizer = pre_tokenizers.Whitespace()
    PreTrainedTokenizerFast(tokenizer_object=model, pad_token="[PAD]", unk_token="[UNK]").save_pretrained(folder)
    return folder


def expected_image(picture, size, channels):
    return image_to_tensor(picture.convert("L" if channels == 1 else "RGB"), size)


# ---------------------------------------------------------------- routes and fields
def test_a_save_to_disk_dataset_dict_maps_columns_to_fields_per_split(tmp_path):
    folder, data = saved_splits(tmp_path / "disk")
    table = hf_dataset(path=str(folder), image="img", label="label", target="paired", size=8, channels=1)
    assert table.kind == "image" and table.x.shape == (8, 1, 8, 8) and table.fields["target"].shape == (8, 1, 8, 8)
    assert table.y.dtype == torch.int64 and table.y.tolist() == [i % 3 for i in range(8)]
    assert table.info["classes"] == ["cat", "dog", "owl"]
    for i in (0, 5):
        assert torch.equal(table.x[i], expected_image(data[i]["img"], 8, 1))
        assert torch.equal(table.fields["target"][i], expected_image(data[i]["paired"], 8, 1))
    test = hf_dataset(path=str(folder), split="test", image="img", size=8)
    assert test.x.shape == (4, 3, 8, 8) and test.y is None
    assert torch.equal(test.x[0], expected_image(data[8]["img"], 8, 3))


def test_text_becomes_padded_truncated_token_ids(tmp_path):
    folder, _ = saved_splits(tmp_path / "disk")
    tokens = tokenizer_folder(tmp_path / "tok")
    table = hf_dataset(path=str(folder), image="img", text="caption", tokenizer=str(tokens), max_length=6, size=8)
    ids = table.fields["text"]
    assert ids.dtype == torch.int64 and ids.shape == (8, 6)
    assert ids[0].tolist() == [2, 3, 5, 0, 0, 0]            # "a red square", padded
    assert ids[3].tolist() == [2, 5, 2, 5, 2, 5]            # truncated at max_length
    with pytest.raises(ArgumentError, match=r"cannot load a tokenizer from '.*nowhere' \(a local folder written by "
                                            r"save_pretrained; nothing is downloaded\)"):
        hf_dataset(path=str(folder), image="img", text="caption", tokenizer=str(tmp_path / "nowhere"), size=8)


def test_a_parquet_file_of_points_and_string_labels(tmp_path):
    rows = {"xy": [[float(i), -2.0 * i] for i in range(10)], "kind": ["b" if i % 2 else "a" for i in range(10)]}
    datasets.Dataset.from_dict(rows).to_parquet(tmp_path / "points.parquet")
    table = hf_dataset(path=str(tmp_path / "points.parquet"), points="xy", label="kind")
    assert table.kind == "points" and table.x.dtype == torch.float32 and table.x.shape == (10, 2)
    assert torch.equal(table.x[3], torch.tensor([3.0, -6.0])) and table.y.tolist() == [0, 1] * 5
    assert table.info["classes"] == ["a", "b"]
    with pytest.raises(ArgumentError, match="dim=3 but column 'xy' holds vectors of length 2"):
        hf_dataset(path=str(tmp_path / "points.parquet"), points="xy", dim=3)


@pytest.mark.parametrize("suffix", [".jsonl", ".arrow"])
def test_json_and_arrow_files_and_folders(tmp_path, suffix):
    import pyarrow as pa

    data = datasets.Dataset.from_dict({"xy": [[float(i), 1.0] for i in range(6)], "y": [i % 2 for i in range(6)]})
    (tmp_path / "set").mkdir()
    file = tmp_path / "set" / f"rows{suffix}"
    if suffix == ".jsonl":
        data.to_json(file)
    else:
        with pa.OSFile(str(file), "wb") as sink, pa.ipc.new_stream(sink, data.data.schema) as writer:
            writer.write_table(data.data.table)
    for path in (file, tmp_path / "set"):
        table = hf_dataset(path=str(path), points="xy", label="y")
        assert table.x.shape == (6, 2) and table.y.tolist() == [0, 1] * 3 and table.x[4, 0] == 4.0


def test_an_imagefolder_equals_image_folder_bitwise(tmp_path):
    for i, picture in enumerate(pictures(6)):
        (tmp_path / "pics" / ("ab"[i % 2])).mkdir(parents=True, exist_ok=True)
        picture.save(tmp_path / "pics" / "ab"[i % 2] / f"{i:02d}.png")
    ours = image_folder(path=tmp_path / "pics", size=8, stream=False)
    theirs = hf_dataset(path=str(tmp_path / "pics"), builder="imagefolder", image="image", label="label", size=8)
    assert theirs.info["classes"] == ["a", "b"] and theirs.x.shape == ours.x.shape == (6, 3, 8, 8)
    matches = [int((ours.x == row).flatten(1).all(1).nonzero()) for row in theirs.x]   # same rows, any order
    assert sorted(matches) == list(range(6)) and theirs.y.tolist() == ours.y[matches].tolist()


# ---------------------------------------------------------------- errors
def test_a_misspelt_column_or_split_says_did_you_mean(tmp_path):
    folder, _ = saved_splits(tmp_path / "disk")
    with pytest.raises(ArgumentError, match=r"image: 'imgg' is not a column of .*\(did you mean 'img'\?\); "
                                            "its columns are img, paired, label, caption"):
        hf_dataset(path=str(folder), image="imgg")
    with pytest.raises(ArgumentError, match=r"has no split 'tset'; it has train, test \(did you mean 'test'\?\)"):
        hf_dataset(path=str(folder), image="img", split="tset")
    with pytest.raises(ArgumentError, match=r"label: column 'img' is Image\(.*\); expected a ClassLabel, an integer"):
        hf_dataset(path=str(folder), image="img", label="img")
    with pytest.raises(ArgumentError, match=r"points: column 'caption' is Value\('string'\); expected a list of numbers"):
        hf_dataset(path=str(folder), points="caption")


def test_negative_labels_are_refused(tmp_path):
    datasets.Dataset.from_dict({"xy": [[0.0, 1.0]] * 3, "y": [0, -1, 1]}).save_to_disk(tmp_path / "d")
    with pytest.raises(ArgumentError, match=r"label: column 'y' holds negative labels \(-1: unlabelled rows\?\)"):
        hf_dataset(path=str(tmp_path / "d"), points="xy", label="y")


def test_a_hub_name_not_in_the_cache_is_not_downloaded(tmp_path):
    with pytest.raises(ArgumentError, match=r"'someone/faces' is neither a local path nor a hub dataset in the "
                                            r"local caches .*datasets--someone--faces\); composer does not "
                                            r"download data\. Provide it locally"):
        hf_dataset(path="someone/faces", image="image")


def test_a_hub_name_in_the_hub_cache_reads_its_snapshot(tmp_path):
    import huggingface_hub.constants as hub

    root = Path(hub.HF_HUB_CACHE) / "datasets--someone--shapes"
    files = root / "snapshots" / "abc123" / "data"
    files.mkdir(parents=True)
    (root / "refs").mkdir()
    (root / "refs" / "main").write_text("abc123")
    data = image_dataset(6)
    data.select(range(4)).to_parquet(files / "train-00000-of-00001.parquet")
    data.select(range(4, 6)).to_parquet(files / "test-00000-of-00001.parquet")
    table = hf_dataset(path="someone/shapes", split="test", image="img", label="label", size=8)
    assert table.x.shape == (2, 3, 8, 8) and table.y.tolist() == [1, 2]
    assert torch.equal(table.x[0], expected_image(data[4]["img"], 8, 3))


def test_errors_in_a_graph_file_are_located_and_paths_are_relative_to_it(tmp_path, monkeypatch):
    saved_splits(tmp_path / "graphs" / "data")
    graph = tmp_path / "graphs" / "g.yaml"
    graph.write_text(api.to_yaml(api.from_dict(tiny_dcgan("data", image="imgg"))))
    monkeypatch.chdir(tmp_path)                   # 'data' is next to the graph, not in the working directory
    with pytest.raises(SpecError, match=r"g\.yaml:\d+:\d+: inputs\.real\.image: .*did you mean 'img'"):
        api.runner(api.load(graph), cpu=True)
    graph.write_text(api.to_yaml(api.from_dict(tiny_dcgan("data"))))
    assert api.runner(api.load(graph), cpu=True).streams["real"].next()["x"].shape == (5, 1, 8, 8)


def test_a_run_names_its_data_by_absolute_path_so_it_reopens_from_anywhere(tmp_path, monkeypatch):
    saved_splits(tmp_path / "graphs" / "data")
    graph = tmp_path / "graphs" / "g.yaml"
    graph.write_text(api.to_yaml(api.from_dict(tiny_dcgan("data", steps=2))))
    monkeypatch.chdir(tmp_path)
    api.train(api.load(graph), tmp_path / "run", quiet=True)
    saved = yaml.safe_load((tmp_path / "run" / "spec.yaml").read_text())
    assert saved["inputs"]["real"]["path"] == str(tmp_path / "graphs" / "data")
    monkeypatch.chdir(tmp_path / "graphs" / "data")                     # anywhere else
    assert api.sample(api.open_run(tmp_path / "run"), 3).shape == (3, 1, 8, 8)
    monkeypatch.chdir(tmp_path)          # a resume from the graph file as written sees no change in the data
    api.train(api.load(graph), tmp_path / "run", ["train.steps=3"], resume=True, accept_changes=True, quiet=True)
    changes = [json.loads(line)["changes"] for line in (tmp_path / "run" / "changes.jsonl").read_text().splitlines()]
    assert changes == [["train.steps: 2 -> 3"]]


def test_a_missing_library_or_tokenizer_is_a_located_spec_error(monkeypatch):
    import sys

    spec = api.from_dict(tiny_dcgan("nowhere", text="caption"))
    with pytest.raises(SpecError, match=r"inputs\.real\.text: source hf_dataset: text: needs tokenizer: FOLDER \(a "):
        api.validate(spec)
    monkeypatch.setitem(sys.modules, "datasets", None)
    with pytest.raises(SpecError, match=r"inputs\.real\.source: .*the 'datasets' library is not installed; install "
                                        r"it with pip install 'composer-graphs\[datasets\]'"):
        api.validate(api.from_dict(tiny_dcgan("nowhere")))


# ---------------------------------------------------------------- in graphs
def tiny_dcgan(path, steps=3, batch=5, **args):
    """The small DCGAN (8² grey) on an hf_dataset at `path`, with more source `args`."""
    data = small_dcgan(steps=steps, batch=batch, threads=1, sample_every=0, log_every=0, checkpoint_every=0)
    data["inputs"]["real"] = {"source": "hf_dataset", "path": str(path), "image": "img", "label": "label",
                              "size": 8, "channels": 1, **args}
    data["sample"]["n"] = 4
    data["eval"] = {"metrics": {}}
    return data


def test_shapes_are_known_at_validation_without_the_data(tmp_path):
    spec = api.from_dict(tiny_dcgan(tmp_path / "not-there", target="paired", text="caption", tokenizer="tok",
                                    max_length=9))
    api.validate(spec)
    assert fields(spec, spec.input("real")) == {"x": ((1, 8, 8), torch.float32), "y": ((), torch.int64),
                                               "target": ((1, 8, 8), torch.float32), "text": ((9,), torch.int64)}
    with pytest.raises(SpecError, match=r"D\(real\) failed on inputs real \[5, 3, 8, 8\].* to have 1 channels"):
        api.validate(api.from_dict(tiny_dcgan(tmp_path / "not-there", channels=3)))


def test_a_points_column_needs_its_data_or_dim_to_validate(tmp_path):
    data = small_2d_gan()
    data["inputs"]["real"] = {"source": "hf_dataset", "path": str(tmp_path / "absent.parquet"), "points": "xy"}
    with pytest.raises(SpecError, match=r"inputs\.real\.path: source hf_dataset: path '.*absent\.parquet' does not "
                                        r"exist .*; the length of a points column comes from the data unless dim: N"):
        api.validate(api.from_dict(data))
    data["inputs"]["real"]["dim"] = 2
    api.validate(api.from_dict(data))


def test_a_three_step_training_on_an_hf_dataset(tmp_path):
    folder, _ = saved_splits(tmp_path / "disk")
    results = api.train(api.from_dict(tiny_dcgan(folder)), tmp_path / "run", quiet=True)
    assert results is not None and checkpoint.latest(tmp_path / "run") is not None


def test_a_points_gan_on_a_parquet_file_plots_over_its_only_split(tmp_path):
    rows = {"xy": np.random.default_rng(0).normal(size=(40, 2)).astype(np.float32).tolist()}
    datasets.Dataset.from_dict(rows).to_parquet(tmp_path / "p.parquet")
    data = small_2d_gan()
    data["inputs"]["real"] = {"source": "hf_dataset", "path": str(tmp_path / "p.parquet"), "points": "xy"}
    data["train"].update(sample_every=3, log_every=0, checkpoint_every=0, threads=1)
    data["eval"] = {"metrics": {}}
    spec = api.from_dict(data)
    assert fields(spec, spec.input("real")) == {"x": ((2,), torch.float32)}   # from the schema and one row
    assert len(reference_table(spec, spec.input("real"))) == 40            # held_out auto: no test split
    api.train(spec, tmp_path / "run", quiet=True)
    assert list((tmp_path / "run").rglob("*.png"))


def test_held_out_data_is_the_test_split_or_the_one_named(tmp_path):
    folder, _ = saved_splits(tmp_path / "disk")
    spec = api.from_dict(tiny_dcgan(folder))
    assert len(reference_table(spec, spec.input("real"))) == 4
    spec = api.from_dict(tiny_dcgan(folder, held_out="validation"))
    with pytest.raises(SpecError, match=r"inputs\.real\.held_out: source hf_dataset: held_out: '.*disk' has "
                                        r"no split 'validation'; it has train, test"):
        reference_table(spec, spec.input("real"))


# ---------------------------------------------------------------- streaming
def test_streamed_rows_equal_the_in_memory_rows_and_auto_streams_large_sets(tmp_path, monkeypatch):
    from composer.data import lazy

    folder, _ = saved_splits(tmp_path / "disk")
    eager = hf_dataset(path=str(folder), image="img", label="label", target="paired", size=8, stream=False)
    streamed = hf_dataset(path=str(folder), image="img", label="label", target="paired", size=8, stream=True)
    assert isinstance(streamed, LazyTable) and not isinstance(eager, LazyTable)
    rows = streamed.rows([7, 0, 3])
    assert torch.equal(rows["x"], eager.x[[7, 0, 3]]) and torch.equal(rows["y"], eager.y[[7, 0, 3]])
    assert torch.equal(rows["target"], eager.fields["target"][[7, 0, 3]])
    monkeypatch.setattr(lazy, "STREAM_BYTES", 8 * 2 * 3 * 8 * 8 * 4 - 1)     # x and target, 8 rows
    assert isinstance(hf_dataset(path=str(folder), image="img", target="paired", size=8), LazyTable)


@pytest.mark.parametrize("workers", [0, 2])
def test_a_streamed_run_draws_the_in_memory_runs_batches(tmp_path, workers):
    folder, _ = saved_splits(tmp_path / "disk")
    eager = api.runner(api.from_dict(tiny_dcgan(folder, stream=False)), cpu=True)
    lazy = api.runner(api.from_dict(tiny_dcgan(folder, stream=True, workers=workers)), cpu=True)
    assert lazy.streams["real"].lazy and lazy.streams["real"].table.workers == workers
    for _ in range(3):                       # batch 5 of 8 rows: across epochs
        eager.step(), lazy.step()
    for key, value in checkpoint.module_tensors(eager).items():
        assert torch.equal(value, checkpoint.module_tensors(lazy)[key]), key
    a, b = eager.streams["real"].next(), lazy.streams["real"].next()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_a_streamed_run_interrupted_by_a_signal_resumes_exactly(tmp_path):
    folder, _ = saved_splits(tmp_path / "disk")
    spec = api.from_dict(tiny_dcgan(folder, stream=True, workers=2, steps=4))
    straight, resumed = check_signal_resume(spec, tmp_path / "run", 4)
    a, b = straight.streams["real"].next(), resumed.streams["real"].next()
    assert all(torch.equal(a[k], b[k]) for k in a)


# ---------------------------------------------------------------- image depth and transparency
def test_a_16_bit_grey_image_column_keeps_its_scale(tmp_path):
    values = np.linspace(0, 63840, 256).reshape(16, 16).round().astype(np.uint16)
    Image.fromarray(values).save(tmp_path / "g.png")
    features = datasets.Features({"img": datasets.Image()})
    datasets.Dataset.from_dict({"img": [str(tmp_path / "g.png")]}, features=features).save_to_disk(tmp_path / "d")
    for channels in (1, 3):
        x = hf_dataset(path=str(tmp_path / "d"), image="img", size=16, channels=channels).x[0]
        assert x.shape == (channels, 16, 16)
        assert np.abs(x[-1].numpy() - (values / 32767.5 - 1)).max() < 1e-5
        assert (x >= 0.999).float().mean() < 0.01               # convert("L") saturated 99% of it


def test_transparent_image_rows_need_a_background_and_are_composited_on_it(tmp_path):
    rgba = np.zeros((8, 8, 4), dtype=np.uint8)
    rgba[:4, :, :3], rgba[:4, :, 3] = 40, 255                   # top half opaque dark grey, bottom transparent
    features = datasets.Features({"img": datasets.Image()})
    datasets.Dataset.from_dict({"img": [Image.fromarray(rgba, "RGBA")]}, features=features).save_to_disk(tmp_path / "d")
    with pytest.raises(Exception, match=r"column 'img', row 0, has transparent pixels .*set the image source's background"):
        hf_dataset(path=str(tmp_path / "d"), image="img", size=8, channels=1).x
    x = hf_dataset(path=str(tmp_path / "d"), image="img", size=8, channels=1, background="white").x[0, 0]
    assert float(x[6, 4]) == 1.0 and abs(float(x[1, 4]) - (40 / 127.5 - 1)) < 1e-6
    with pytest.raises(ArgumentError, match=r"hf_dataset: background='grey'; expected white, black or \[r, g, b\]"):
        hf_dataset(path=str(tmp_path / "d"), image="img", size=8, background="grey")
