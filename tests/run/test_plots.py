"""`composer plot RUN` and the loss plot written at the end of a run (matplotlib, optional)."""
import json
import sys

import pytest

from composer import api
from composer.run import plots
from composer.tools.cli import main
from composer.errors import ComposerError
from conftest import GRAPHS

TINY = ["train.steps=3", "train.batch=8", "train.log_every=1", "train.sample_every=0",
        "train.checkpoint_every=0", "sample.n=16", "eval.n=64", "train.threads=1"]
PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("plots") / "ring"
    api.train(GRAPHS / "gan_ring.yaml", folder, TINY, quiet=True)
    return folder


def test_panels_group_terms_by_phase():
    records = [{"step": 1, "seconds": 0.1, "gan.D_real": 1.0, "gan.G": 2.0, "lr.G": 0.1, "fid": 3.0}]
    phases = {"D": ["gan.D_real", "gan.D_fake"], "G": ["gan.G"]}
    assert plots.panels(records, phases) == {"phase D": ["gan.D_real"], "phase G": ["gan.G"],
                                             "learning rates": ["lr.G"], "metrics": ["fid"]}
    assert plots.panels(records, {}) == {"losses": ["gan.D_real", "gan.G", "fid"], "learning rates": ["lr.G"]}


def test_a_finished_run_has_its_loss_plot(run):
    pytest.importorskip("matplotlib")
    assert (run / "loss.png").read_bytes()[:8] == PNG


def test_cli_plot_writes_a_png(run, tmp_path, capsys):
    pytest.importorskip("matplotlib")
    out = tmp_path / "curves.png"
    assert main(["plot", str(run), "-o", str(out)]) == 0
    assert capsys.readouterr().out == f"wrote {out}\n"
    assert out.read_bytes()[:8] == PNG
    assert plots.phase_terms(api.plan(run / "spec.yaml")) == {"D": ["gan.D_real", "gan.D_fake", "gan.D_r1"],
                                                             "G": ["gan.G"]}


def test_without_matplotlib_a_clear_error_and_a_silent_end_of_run(run, tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    assert main(["plot", str(run), "-o", str(tmp_path / "x.png")]) == 1
    assert capsys.readouterr().err == ("error: plots need matplotlib: install composer-graphs[plots] "
                                       "(pip install 'composer-graphs[plots]')\n")
    assert plots.plot_after_run(run, None) is None
    assert not (tmp_path / "x.png").exists()


def test_errors_name_the_folder(tmp_path, capsys):
    assert main(["plot", str(tmp_path)]) == 1
    assert capsys.readouterr().err == f"error: {tmp_path} is not a composer run folder (no spec.yaml)\n"


def test_a_failing_plot_never_fails_the_run(run, tmp_path, monkeypatch):
    pytest.importorskip("matplotlib")
    folder = tmp_path / "copy"
    folder.mkdir()
    (folder / "spec.yaml").write_text((run / "spec.yaml").read_text())
    (folder / "metrics.jsonl").write_text(json.dumps({"step": 1}) + "\n")      # nothing to draw but steps
    monkeypatch.setattr(plots, "plot", lambda *a, **k: (_ for _ in ()).throw(ComposerError("boom")))
    with pytest.warns(UserWarning, match="could not plot .*: boom"):
        assert plots.plot_after_run(folder, api.plan(run / "spec.yaml")) is None
