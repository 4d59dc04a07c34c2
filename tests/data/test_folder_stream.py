"""Lazy image folders (composer/data/lazy.py, composer/feeds.py): rows decoded on demand equal the
in-memory table's bitwise, a run streams the very batches an in-memory run draws (with 0 and 2
DataLoader workers), an interrupted run resumes exactly, and bad arguments or files are reported
clearly."""

import numpy as np
import pytest
import torch
from PIL import Image

from composer import api
from composer.run import checkpoint
from composer.data.folders import image_folder
from composer.data.lazy import LazyTable, bounded
from composer.data.paired import paired_folder
from composer.errors import ComposerError, SpecError
from composer.data.inputs import reference_table
from conftest import GRAPHS, check_signal_resume

STEPS = 4


def write_images(folder, n=12, side=20, classes=("a", "b")):
    """`n` random RGB PNGs of `side`² (not square for every other one), split into class folders."""
    rng = np.random.default_rng(0)
    for i in range(n):
        sub = folder / classes[i % len(classes)]
        sub.mkdir(parents=True, exist_ok=True)
        shape = (side, side + 4 * (i % 2), 3)
        Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8)).save(sub / f"{i:03d}.png")
    return folder


def dcgan(folder, *overrides):
    """The digits DCGAN, tiny, on `folder` (8² grey images)."""
    real = f"inputs.real={{source: image_folder, path: '{folder}', size: 8, channels: 1, {', '.join(overrides)}}}"
    return api.load(GRAPHS / "dcgan.yaml", [
        real, "modules.G.image_size=8", "modules.D.image_size=8", "modules.G.width=8", "modules.D.width=8",
        "train.batch=5", f"train.steps={STEPS}", "train.threads=1", "train.sample_every=0", "train.log_every=0",
        "train.checkpoint_every=0", "sample.n=4", "eval.metrics={}"])


def test_lazy_rows_equal_the_in_memory_table_bitwise(tmp_path):
    write_images(tmp_path)
    eager, lazy = image_folder(path=tmp_path, size=8, stream=False), image_folder(path=tmp_path, size=8, stream=True)
    assert isinstance(lazy, LazyTable) and not isinstance(eager, LazyTable)
    rows = lazy.rows([3, 0, 11])
    assert torch.equal(rows["x"], eager.x[[3, 0, 11]]) and torch.equal(rows["y"], eager.y[[3, 0, 11]])
    assert torch.equal(lazy.materialize().x, eager.x) and lazy.info["classes"] == ["a", "b"]


def test_lazy_pairs_equal_the_in_memory_pairs_bitwise(tmp_path):
    for side in ("A", "B"):
        write_images(tmp_path / "train" / side, n=5, classes=("s",))
    for direction in ("AtoB", "BtoA"):
        eager = paired_folder(root=tmp_path, size=8, direction=direction, stream=False)
        lazy = paired_folder(root=tmp_path, size=8, direction=direction, stream=True)
        rows = lazy.rows([4, 1])
        assert torch.equal(rows["x"], eager.x[[4, 1]]) and torch.equal(rows["target"], eager.fields["target"][[4, 1]])


def test_stream_auto_streams_only_a_folder_above_the_threshold(tmp_path, monkeypatch):
    from composer.data import lazy

    write_images(tmp_path, n=4)
    assert not isinstance(image_folder(path=tmp_path, size=8), LazyTable)   # 4 × 3·8·8·4 bytes
    monkeypatch.setattr(lazy, "STREAM_BYTES", 4 * 3 * 8 * 8 * 4 - 1)
    assert isinstance(image_folder(path=tmp_path, size=8), LazyTable)


@pytest.mark.parametrize("workers", [0, 2])
def test_a_run_on_a_lazy_folder_draws_the_in_memory_runs_batches(tmp_path, workers):
    write_images(tmp_path)
    eager = api.runner(dcgan(tmp_path, "stream: false"), cpu=True)
    lazy = api.runner(dcgan(tmp_path, "stream: true", f"workers: {workers}"), cpu=True)
    assert lazy.streams["real"].lazy and lazy.streams["real"].table.workers == workers
    for _ in range(STEPS):       # batch 5 of 12 images: across epochs
        assert eager.step().keys() == lazy.step().keys()
    for key, value in checkpoint.module_tensors(eager).items():
        assert torch.equal(value, checkpoint.module_tensors(lazy)[key]), key
    a, b = eager.streams["real"].next(), lazy.streams["real"].next()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_a_lazy_run_interrupted_by_a_signal_resumes_exactly(tmp_path):
    write_images(tmp_path / "images")
    spec = dcgan(tmp_path / "images", "stream: true", "workers: 2")
    straight, resumed = check_signal_resume(spec, tmp_path / "run", STEPS)
    assert torch.equal(straight.streams["real"].next()["x"], resumed.streams["real"].next()["x"])


@pytest.mark.parametrize("key, value, message", [
    ("stream", "maybe", "stream='maybe' is not allowed; expected true (decode images on demand), false"),
    ("workers", "-1", "workers=-1; expected an integer >= 0 (0 decodes in the training process)"),
])
def test_a_bad_stream_or_workers_value_is_a_located_spec_error(tmp_path, key, value, message):
    text = (GRAPHS / "dcgan.yaml").read_text()
    line = next(t for t in text.splitlines() if t.strip().startswith("real:"))
    graph = tmp_path / "graph.yaml"
    graph.write_text(text.replace(line, f"  real: {{source: image_folder, path: nowhere, {key}: {value}}}"))
    with pytest.raises(SpecError) as caught:
        api.runner(api.load(graph), cpu=True)
    row = text.splitlines().index(line) + 1
    assert str(caught.value).startswith(f"{graph}:{row}:")
    assert f": inputs.real.{key}: source image_folder: {message}" in str(caught.value)


@pytest.mark.parametrize("workers", [0, 2])
def test_a_corrupt_image_found_lazily_names_the_file(tmp_path, workers):
    write_images(tmp_path, n=4)
    (tmp_path / "a" / "002.png").write_bytes(b"not a png")
    runner = api.runner(dcgan(tmp_path, "stream: true", f"workers: {workers}"), cpu=True)
    with pytest.raises(ComposerError) as caught:
        for _ in range(STEPS):
            runner.step()
    assert str(caught.value).startswith(f"cannot read image '{tmp_path / 'a' / '002.png'}'")
    assert "Traceback" not in str(caught.value)


def test_references_of_a_lazy_folder_are_a_bounded_decoded_subset(tmp_path):
    write_images(tmp_path)
    spec = dcgan(tmp_path, "stream: true", "workers: 0")
    table = reference_table(spec, spec.input("real"))
    assert len(table) == 12 and table.x.shape == (12, 1, 8, 8)
    lazy = image_folder(path=tmp_path, size=8, channels=1, stream=True)
    small = bounded(lazy, max_bytes=5 * 8 * 8 * 4)
    assert len(small) == 5 and torch.equal(small.x, lazy.subset(small_indices(lazy, small)).x)
    with pytest.raises(ComposerError, match="is read lazily"):
        lazy.x


def small_indices(lazy, small):
    """Which rows of `lazy` the subset `small` holds (its rows are distinct random images)."""
    everything = lazy.materialize().x
    return [int((everything == row).flatten(1).all(1).nonzero()) for row in small.x]


def test_generation_decodes_only_the_held_out_rows_it_draws(tmp_path, monkeypatch):
    from composer.run.generate import run_flow

    write_images(tmp_path)
    eager = api.runner(dcgan(tmp_path, "stream: false"), cpu=True)
    lazy = api.runner(dcgan(tmp_path, "stream: true", "workers: 0"), cpu=True)
    decoded, real_rows = [], LazyTable.rows
    monkeypatch.setattr(LazyTable, "rows", lambda self, rows: decoded.append(len(rows)) or real_rows(self, rows))
    draw = [run_flow(r, 3, ["real"], None, torch.Generator().manual_seed(5))[0] for r in (eager, lazy)]
    assert torch.equal(draw[0], draw[1]) and decoded == [3]


def test_a_lazy_stream_delivers_on_its_device_and_pins_memory_for_cuda(tmp_path):
    from composer.run.feeds import BatchStream, make_loader

    write_images(tmp_path, n=4)
    table = image_folder(path=tmp_path, size=8, stream=True, workers=0)
    here, there = BatchStream(table, 3, seed=1), BatchStream(table, 3, seed=1).to("meta")   # meta: a stand-in
    a, b = here.next(), there.next()
    assert b["x"].device.type == "meta" and b["x"].shape == a["x"].shape == (3, 3, 8, 8)
    assert not make_loader(there).pin_memory
    there.device = torch.device("cuda")        # only the flag: pinning itself needs a GPU
    assert make_loader(there).pin_memory
