"""A few-step CPU smoke run of each GAN graph file: it trains, writes its run folder, evaluates."""
import json

import numpy as np
import pytest
from PIL import Image

from composer import api
from conftest import GRAPHS

from specs import TINY_RUN as TINY


@pytest.mark.parametrize("name", ["dcgan", "sngan", "gan_ring", "gan_grid"])
def test_graph_trains_a_few_steps(tmp_path, name):
    results = api.train(GRAPHS / f"{name}.yaml", tmp_path, TINY, quiet=True)
    assert results["step"] == 2
    assert (tmp_path / "samples" / "step_000001.png").exists()
    assert len((tmp_path / "metrics.jsonl").read_text().splitlines()) == 2
    assert json.loads((tmp_path / "eval.json").read_text()) == results
    assert any(k.startswith(("digits.", "mixture.")) for k in results)


def test_dcgan_64_on_a_user_folder(tmp_path):
    folder = tmp_path / "images"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(3):
        Image.fromarray(rng.integers(0, 255, (70, 90, 3), dtype=np.uint8)).save(folder / f"{i}.png")
    overrides = [f"inputs.real.path={folder}", "train.steps=1", "train.batch=2", "sample.n=4",
                 "train.sample_every=0", "train.checkpoint_every=0"]
    results = api.train(GRAPHS / "dcgan_64.yaml", tmp_path / "run", overrides, quiet=True)
    assert results["step"] == 1
    assert Image.open(tmp_path / "run" / "samples" / "final.png").size[0] >= 64 * 4


def test_bf16_autocast_step_runs_on_cpu():
    runner = api.runner(GRAPHS / "gan_ring.yaml", ["train.precision=bf16", "train.batch=8"], cpu=True)
    logs = runner.step()
    assert np.isfinite(list(logs.values())).all()
