"""RunFolder: the one owner of the run folder's names. A run writes what RunFolder names, and the
trainer, checkpoints, `composer runs`, plots and `api.open_run` find the files through it (so a
renamed file is renamed everywhere); the creation checks and the lock."""
import json

import pytest

from composer import api
from composer.errors import ComposerError
from composer.run import checkpoint, ownership
from composer.run.folder import RunFolder
from composer.run.ownership import RunFolderRefused
from composer.run.plots import plot_run
from composer.run.runs import collect
from specs import small_2d_gan

RUN = ["train.steps=2", "train.batch=16", "train.log_every=1", "train.sample_every=1", "train.checkpoint_every=1",
       "train.threads=1", "sample.n=16", "eval.n=64"]


def test_the_names():
    run = RunFolder("runs/x")
    assert [p.as_posix() for p in (run.spec, run.metrics, run.changes, run.eval, run.weights, run.plot, run.lock)] == [
        "runs/x/spec.yaml", "runs/x/metrics.jsonl", "runs/x/changes.jsonl", "runs/x/eval.json",
        "runs/x/weights.safetensors", "runs/x/loss.png", "runs/x/.lock"]
    assert run.sample(7).as_posix() == "runs/x/samples/step_000007.png"
    assert run.sample().as_posix() == "runs/x/samples/final.png"
    assert run.checkpoint(12).as_posix() == "runs/x/checkpoints/step_000012"
    assert RunFolder.checkpoint_step(run.checkpoint(12)) == 12 and RunFolder.checkpoint_step(run.root / "x") is None
    assert run.input_name("D") == "inputs/D.safetensors"


def test_a_run_writes_what_the_folder_names(tmp_path):
    run = RunFolder(tmp_path / "run")
    api.train(api.from_dict(small_2d_gan()), run.root, RUN, quiet=True)
    for path in (run.spec, run.metrics, run.eval, run.weights, run.plot, run.marker, run.sample(1), run.sample(2), run.sample(),
                 run.checkpoint(2) / "state.json"):
        assert path.is_file(), path
    assert checkpoint.complete(run.root) == [run.checkpoint(1), run.checkpoint(2)]      # keep_checkpoints: 2
    assert RunFolder.holds_run(run.root) and not RunFolder.holds_run(tmp_path)


@pytest.fixture
def renamed(monkeypatch):
    """Every file and folder of the layout under another name."""
    for attr, name in (("SPEC", "graph.yaml"), ("METRICS", "log.jsonl"), ("EVAL", "results.json"),
                       ("WEIGHTS", "final.safetensors"), ("PLOT", "curves.png"), ("SAMPLES", "grids"),
                       ("CHECKPOINTS", "states"), ("LOCK", ".busy"), ("MARKER", ".ours")):
        monkeypatch.setattr(RunFolder, attr, name)


def test_runs_plots_and_the_api_find_the_files_through_the_folder(tmp_path, renamed):
    root = tmp_path / "runs" / "a"
    api.train(api.from_dict(small_2d_gan()), root, RUN, quiet=True)
    names = sorted(p.name for p in root.iterdir())
    assert names == [".busy", ".ours", "curves.png", "final.safetensors", "graph.yaml", "grids", "log.jsonl", "results.json",
                     "states"]
    (row,) = collect(tmp_path / "runs")                                  # composer runs
    assert row["run"] == "a" and row["status"] == "finished" and row["step"] == 2
    assert set(row["losses"]) == {"gan.D_real", "gan.D_fake", "gan.G"} and "mixture.modes" in row["eval"]
    (root / "curves.png").unlink()
    assert plot_run(root) == root / "curves.png" and (root / "curves.png").is_file()      # composer plot
    assert api.open_run(root).step_count == 2                                            # api.open_run
    api.train(api.from_dict(small_2d_gan()), root, RUN + ["train.steps=3"], resume=True, quiet=True,
              accept_changes=True)
    assert [json.loads(line)["step"] for line in (root / "log.jsonl").read_text().splitlines()] == [1, 2, 3]
    assert (root / "changes.jsonl").is_file() and (root / "states" / "step_000003").is_dir()


def test_a_folder_that_is_not_a_run_is_named_so(tmp_path):
    with pytest.raises(ComposerError, match=r"is not a composer run folder \(no spec.yaml\)"):
        api.open_run(tmp_path)
    with pytest.raises(ComposerError, match=r"is not a composer run folder \(no spec.yaml\)"):
        plot_run(tmp_path)
    with pytest.raises(ComposerError, match=r"new is not a composer run folder \(no spec.yaml\)"):
        RunFolder(tmp_path / "new").require()
    (tmp_path / "spec.yaml").write_text("name: x\n")
    assert RunFolder(tmp_path).require().root == tmp_path


def test_claim_checks_the_folder_and_locks_it(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(ComposerError, match=r"notes.txt: a file, not a folder"):
        RunFolder(tmp_path / "notes.txt").claim(main=True)
    with pytest.raises(RunFolderRefused, match=r"is not empty \(notes.txt\) and is not a composer run folder"):
        ownership.claim(RunFolder(tmp_path), "x", main=True)                 # whose folder: ownership.py
    run = RunFolder(tmp_path / "run")
    assert run.claim(main=False) is None and not run.root.exists()       # other ranks only check
    lock = run.claim(main=True)
    ownership.write_marker(run.root, "x")                                 # as the trainer does next
    run.spec.write_text("name: x\n")
    with pytest.raises(ComposerError, match=r"is in use by another composer process \(its lock is .*\.lock\)"):
        run.claim(main=True)
    with pytest.raises(ComposerError, match=r"is in use by another composer process"):
        ownership.claim(run, "x", main=True)
    lock.close()
    run.claim(main=True).close()


def test_resume_bookkeeping(tmp_path):
    run = RunFolder(tmp_path)
    for step in (1, 2, 3):
        run.append_metrics({"step": step, "loss": float(step)})
    run.truncate_metrics(2)
    assert [json.loads(line)["step"] for line in run.metrics.read_text().splitlines()] == [1, 2]
    run.record_changes(2, ["train.steps: 3 -> 4"])
    assert json.loads(run.changes.read_text()) == {"resumed_at": 2, "changes": ["train.steps: 3 -> 4"]}
