"""A few-step CPU smoke run of graphs/cyclegan.yaml: run folder, sample grids of input |
translation | reconstruction, the translation metric at the end of training and from
`composer eval`, and `composer sample` translating a user folder in both directions."""
import json

import numpy as np
import pytest
import torch
from PIL import Image

from composer import api
from composer.api import open_run
from composer.tools.cli import main
from composer.errors import ComposerError
from composer.run.evaluate import Evaluation
from composer.run.generate import generate
from composer.metrics.translation import translation
from conftest import GRAPHS

TINY = ["train.steps=2", "train.batch=4", "train.log_every=1", "train.sample_every=1",
        "train.checkpoint_every=1", "sample.n=3", "eval.metrics.translation.n=16"]
KEYS = {"A_to_B", "A_to_B_untranslated", "A_to_B_ideal", "B_to_A", "B_to_A_untranslated", "B_to_A_ideal",
        "cycle_l1_A", "cycle_l1_B"}


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("cyclegan") / "run"
    results = api.train(GRAPHS / "cyclegan.yaml", out, TINY, quiet=True)
    return out, results


def test_smoke_run_writes_its_folder_and_metrics(run):
    out, results = run
    assert results["step"] == 2
    for name in ("spec.yaml", "weights.safetensors", "eval.json", "samples/step_000001.png", "samples/final.png"):
        assert (out / name).exists(), name
    assert len((out / "metrics.jsonl").read_text().splitlines()) == 2
    assert json.loads((out / "eval.json").read_text()) == results
    assert {k.removeprefix("translation.") for k in results if k.startswith("translation.")} == KEYS
    for key in KEYS:
        value = results[f"translation.{key}"]
        assert 0 <= value <= (1 if "cycle" not in key else 2), key


def test_sample_grid_shows_input_translation_reconstruction_per_row(run):
    out, _ = run
    grid = Image.open(out / "samples" / "final.png")
    tile = 16 * 2 + 2                                    # 16 px upscaled to 32, 2 px padding
    assert grid.size == (6 * tile + 2, 3 * tile + 2)     # 6 columns, sample.n = 3 rows


def test_generate_a_list_of_outputs_shares_the_inputs(run):
    runner = open_run(str(run[0]))
    values = generate(runner, 5, output=["real_A", "fake_B", "rec_A"])
    assert values.shape == (5, 3, 1, 16, 16)
    G_AB, G_BA = runner.unwrapped("G_AB").eval(), runner.unwrapped("G_BA").eval()
    with torch.no_grad():
        assert torch.allclose(values[:, 1], G_AB(values[:, 0]), atol=1e-6)
        assert torch.allclose(values[:, 2], G_BA(values[:, 1]), atol=1e-6)


def test_translation_metric_from_the_eval_command(run, capsys):
    out, results = run
    capsys.readouterr()
    assert main(["eval", str(out), "--json", "eval.metrics.translation.n=16"]) == 0
    assert json.loads(capsys.readouterr().out) == {k: v for k, v in results.items() if k.startswith("translation.")}


def test_translation_metric_checks_what_it_is_given(run):
    runner = open_run(str(run[0]))
    names = dict(A="real_A", B="real_B", A_to_B="fake_B", B_to_A="fake_A", n=8)
    with pytest.raises(ComposerError, match=r"'fake_A' is computed from \['real_B'\], expected from 'real_A' alone"):
        translation(runner=Evaluation(runner), **{**names, "A_to_B": "fake_A"})
    with pytest.raises(ComposerError, match=r"'real_C' is not a data input \(expected one of \['real_A', 'real_B'\]\)"):
        translation(runner=Evaluation(runner), **{**names, "A": "real_C"})
    assert set(translation(runner=Evaluation(runner), **names)) == {k for k in KEYS if "cycle" not in k}


def test_sample_translates_a_user_folder_both_ways(run, tmp_path, capsys):
    out, _ = run
    rng = np.random.default_rng(0)
    folder = tmp_path / "mine"
    folder.mkdir()
    for i in range(5):
        Image.fromarray(rng.integers(0, 255, (20, 20), dtype=np.uint8)).save(folder / f"{i}.png")
    assert main(["sample", str(out), "--input", f"real_A={folder}", "--node", "fake_B", "-o", str(tmp_path / "b.npy")]) == 0
    assert np.load(tmp_path / "b.npy").shape == (5, 1, 16, 16)
    assert main(["sample", str(out), "--input", f"real_B={folder}", "--node", "fake_A", "-o", str(tmp_path / "a.png")]) == 0
    assert Image.open(tmp_path / "a.png").size[0] > 16
    # no --node: the listed outputs computable from the fed folder, one row per image
    assert main(["sample", str(out), "--input", f"real_A={folder}", "-o", str(tmp_path / "rows.npy")]) == 0
    assert np.load(tmp_path / "rows.npy").shape == (5, 3, 1, 16, 16)
    assert main(["sample", str(out), "--input", f"real_A={folder}", "-o", str(tmp_path / "rows.png")]) == 0
    assert Image.open(tmp_path / "rows.png").size == (3 * 34 + 2, 5 * 34 + 2)


def test_reference_graph_on_a_small_user_folder_steps_and_reports_cycle_errors(tmp_path):
    rng = np.random.default_rng(1)
    for part in ("trainA", "trainB", "testA", "testB"):
        (tmp_path / part).mkdir()
        for i in range(3):
            Image.fromarray(rng.integers(0, 255, (40, 36, 3), dtype=np.uint8)).save(tmp_path / part / f"{i}.png")
    small = [f"inputs.{x}.{k}={v}" for x in ("real_A", "real_B") for k, v in (("root", tmp_path), ("size", 32))]
    small += [f"modules.{m}.width=8" for m in ("G_AB", "G_BA", "D_A", "D_B")]
    small += ["modules.G_AB.n_blocks=1", "modules.G_BA.n_blocks=1"]
    runner = api.runner(GRAPHS / "cyclegan_256.yaml", small, cpu=True)
    logs = runner.step()
    assert np.isfinite(list(logs.values())).all()
    results = translation(runner=Evaluation(runner), A="real_A", B="real_B", A_to_B="fake_B", B_to_A="fake_A",
                          rec_A="rec_A", rec_B="rec_B")
    assert set(results) == {"cycle_l1_A", "cycle_l1_B"}              # no labels: no label preservation
