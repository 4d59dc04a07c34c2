"""Whose folder `--out` is (composer/run/ownership.py): composer writes a run only into a new or
empty folder or one it marked as its own, never replaces finished results without --resume or
--overwrite, and never deletes a file it did not write (issue 28, finding 2)."""
import json

import pytest
import yaml

from composer import api
from composer.errors import ComposerError
from composer.run import ownership
from composer.run.folder import RunFolder
from composer.run.ownership import RunFolderRefused
from composer.run.sweep import Trial, run_trial
from composer.tools.cli import main
from specs import small_2d_gan

MARKER = RunFolder.MARKER
RUN = ["train.steps=2", "train.batch=16", "train.log_every=1", "train.sample_every=2", "train.checkpoint_every=1",
       "train.threads=1", "sample.n=16", "eval.n=64"]


@pytest.fixture(scope="module")
def graph(tmp_path_factory):
    path = tmp_path_factory.mktemp("graph") / "g.yaml"
    path.write_text(yaml.safe_dump(small_2d_gan(), sort_keys=False))
    return path


@pytest.fixture(scope="module")
def finished(tmp_path_factory, graph):
    """A finished run folder, trained once; tests copy it."""
    root = tmp_path_factory.mktemp("finished") / "run"
    assert main(["run", str(graph), "--out", str(root), *RUN]) == 0
    return root


def copy_of(finished, tmp_path):
    import shutil

    return shutil.copytree(finished, tmp_path / "run")


def snapshot(root):
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def users_folder(root, *, checkpoints=False):
    """A folder of the user's own that happens to hold the names a run writes."""
    root.mkdir()
    (root / "spec.yaml").write_text("my: own spec\n")
    (root / "eval.json").write_text('{"mine": 1}')
    (root / "weights.safetensors").write_bytes(b"my weights")
    (root / "metrics.jsonl").write_text('{"step": 7}\n')
    (root / "samples").mkdir()
    (root / "samples" / "final.png").write_bytes(b"my picture")
    if checkpoints:
        (root / "checkpoints").mkdir()
    return snapshot(root)


def test_a_new_run_marks_its_folder(finished):
    mark = json.loads((finished / MARKER).read_text())
    assert mark["format"] == ownership.FORMAT and mark["graph"] == "small_2d" and mark["created"].endswith("Z")


@pytest.mark.parametrize("holds", ["spec.yaml", "checkpoints/"])
def test_a_users_folder_with_a_spec_or_checkpoints_is_refused_and_kept(tmp_path, graph, capsys, holds):
    root = tmp_path / "mine"
    before = users_folder(root, checkpoints=holds == "checkpoints/")
    if holds == "checkpoints/":
        (root / "spec.yaml").unlink()
        before.pop("spec.yaml")
    for flags in ([], ["--overwrite"], ["--resume"]):
        assert main(["run", str(graph), "--out", str(root), *RUN, *flags]) == 2
        err = capsys.readouterr().err
        assert "is not a composer run folder (it has no .composer-run.json marker)" in err
        assert "eval.json" in err and "choose another --out, or move these files away" in err
        assert snapshot(root) == before and not (root / MARKER).exists()


def test_a_finished_run_is_not_retrained_silently(tmp_path, finished, graph, capsys):
    root = copy_of(finished, tmp_path)
    before = snapshot(root)
    assert main(["run", str(graph), "--out", str(root), *RUN]) == 2
    err = capsys.readouterr().err
    assert "holds a finished run (weights.safetensors, eval.json, samples/final.png)" in err
    assert "pass --resume to continue it from step_000002" in err and "pass --overwrite" in err
    assert snapshot(root) == before


def test_a_finished_run_without_its_checkpoints_is_refused(tmp_path, finished, graph, capsys):
    import shutil

    root = copy_of(finished, tmp_path)
    shutil.rmtree(root / "checkpoints")
    before = snapshot(root)
    assert main(["run", str(graph), "--out", str(root), *RUN]) == 2
    assert "it has no checkpoint to --resume from, pass --overwrite" in capsys.readouterr().err
    assert main(["run", str(graph), "--out", str(root), *RUN, "--resume", "--accept-changes"]) == 1
    assert "holds no checkpoint to resume from" in capsys.readouterr().err
    assert snapshot(root) == before


@pytest.mark.parametrize("marked", [True, False])
def test_a_run_kept_as_spec_and_weights_is_refused(tmp_path, finished, graph, capsys, marked):
    root = tmp_path / "kept"
    root.mkdir()
    for name in ("spec.yaml", "weights.safetensors") + ((MARKER,) if marked else ()):
        (root / name).write_bytes((finished / name).read_bytes())
    before = snapshot(root)
    assert main(["run", str(graph), "--out", str(root), *RUN]) == 2
    assert ("holds a finished run (weights.safetensors)" if marked else "is not a composer run folder") in \
        capsys.readouterr().err
    assert snapshot(root) == before


def test_overwrite_deletes_composers_files_only(tmp_path, finished, graph):
    root = copy_of(finished, tmp_path)
    (root / "notes.txt").write_text("my notes")
    api.train(graph, root, RUN + ["train.steps=1"], overwrite=True, quiet=True)
    assert (root / "notes.txt").read_text() == "my notes"
    assert [json.loads(line)["step"] for line in (root / "metrics.jsonl").read_text().splitlines()] == [1]
    assert json.loads((root / "eval.json").read_text())["step"] == 1
    assert sorted(p.name for p in (root / "checkpoints").iterdir()) == ["step_000001"]
    deleted, kept = ownership.clear(RunFolder(root))
    assert kept == ["notes.txt"] and "weights.safetensors" in deleted and (root / MARKER).is_file()


def test_a_run_that_left_only_its_spec_starts_afresh(tmp_path, graph):
    root = tmp_path / "run"
    root.mkdir()
    ownership.write_marker(root, "small_2d")
    (root / "spec.yaml").write_text("name: small_2d\n")
    api.train(graph, root, RUN, quiet=True)
    assert (root / "eval.json").is_file()


def test_a_run_without_checkpoint_needs_overwrite(tmp_path, graph, capsys):
    root = tmp_path / "run"
    root.mkdir()
    ownership.write_marker(root, "small_2d")
    (root / "metrics.jsonl").write_text('{"step": 1}\n')
    assert main(["run", str(graph), "--out", str(root), *RUN]) == 2
    assert "holds the files of a run that wrote no checkpoint (metrics.jsonl)" in capsys.readouterr().err


def test_an_older_composers_run_resumes_only(tmp_path, graph, capsys):
    root = tmp_path / "run"
    assert main(["run", str(graph), "--out", str(root), *RUN, "train.steps=1"]) == 0
    (root / MARKER).unlink()                                     # as written before the marker existed
    (root / "eval.json").unlink()
    for flags in ([], ["--overwrite"]):
        assert main(["run", str(graph), "--out", str(root), *RUN, "train.steps=1", *flags]) == 2
        err = capsys.readouterr().err
        assert "holds a run of an older composer" in err and "checkpoints up to step_000001" in err
        assert "pass --resume to continue it" in err
    assert "delete this one yourself" in err
    assert main(["run", str(graph), "--out", str(root), *RUN, "train.steps=1", "--resume"]) == 0
    assert json.loads((root / MARKER).read_text())["adopted"] is True
    assert "marked as a composer run folder" in capsys.readouterr().out


def test_a_folder_that_only_looks_like_an_older_run_is_not_marked_by_resume(tmp_path, graph, capsys):
    root = tmp_path / "mine"
    (root / "checkpoints" / "step_000005").mkdir(parents=True)
    (root / "checkpoints" / "step_000005" / "state.json").write_text("{}")
    (root / "spec.yaml").write_text(yaml.safe_dump(small_2d_gan(), sort_keys=False))
    before = snapshot(root)
    assert main(["run", str(graph), "--out", str(root), *RUN, "--resume", "--accept-changes"]) == 1
    assert "step_000005" in capsys.readouterr().err
    assert {k: v for k, v in snapshot(root).items() if k != ".lock"} == before     # the lock was taken to load
    assert not (root / MARKER).exists()


def test_resume_and_overwrite_exclude_each_other(tmp_path, graph, capsys):
    assert main(["run", str(graph), "--out", str(tmp_path / "r"), *RUN, "--resume", "--overwrite"]) == 2
    assert "--resume and --overwrite exclude each other" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()


def test_the_api_refuses_and_overwrites_too(tmp_path, graph):
    root = tmp_path / "run"
    api.train(graph, root, RUN + ["train.steps=1"], quiet=True)
    with pytest.raises(RunFolderRefused, match=r"holds a finished run .*pass --overwrite"):
        api.train(graph, root, RUN + ["train.steps=1"], quiet=True)
    assert api.train(graph, root, RUN + ["train.steps=1"], quiet=True, overwrite=True)["step"] == 1
    assert issubclass(RunFolderRefused, ComposerError)


def test_a_sweep_restarts_a_trial_that_left_no_checkpoint(tmp_path, monkeypatch):
    from composer.run import sweep

    commands = []

    def timed(command, log):                                         # as `composer run` would, without training
        trial.folder.mkdir(parents=True, exist_ok=True)
        (trial.folder / "spec.yaml").write_text("name: g\n")
        commands.append(command)
        return {}

    monkeypatch.setattr(sweep, "_timed", timed)
    trial = Trial(label="S00", setting={}, seed=0, folder=tmp_path / "runs" / "t")
    run_trial(tmp_path / "g.yaml", trial, tmp_path / "logs")           # never ran: a plain run
    run_trial(tmp_path / "g.yaml", trial, tmp_path / "logs")           # ran, wrote no checkpoint
    assert "--overwrite" not in commands[0] and commands[1][-1] == "--overwrite"
