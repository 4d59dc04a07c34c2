"""Checkpoints that cannot be corrupted, run folders that are safe, resumes that refuse a changed
spec (issue 11): each case from the issue's findings, with its message."""
import json
import pickle
import shutil

import pytest
import torch

from composer import api
from composer.run import checkpoint
from composer.tools.cli import main
from composer.errors import ComposerError
from composer.run.trainer import Trainer
from conftest import interrupt_at
from specs import small_2d_gan

RUN = ["train.steps=4", "train.checkpoint_every=1", "train.keep_checkpoints=2", "train.log_every=1"]


def trained(tmp_path, name="run", overrides=RUN):
    folder = tmp_path / name
    api.train(api.from_dict(small_2d_gan()), folder, overrides, quiet=True)
    return folder


def fake_checkpoint(root, step):
    folder = root / "checkpoints" / f"step_{step:06d}"
    folder.mkdir(parents=True)
    (folder / "state.json").write_text("{}")
    return folder


def test_latest_orders_checkpoints_by_step_number_and_ignores_foreign_folders(tmp_path):
    for step in (999_990, 1_000_000):
        fake_checkpoint(tmp_path, step)
    (tmp_path / "checkpoints" / "step_2000000.tmp").mkdir()
    (tmp_path / "checkpoints" / "step_3000000").mkdir()            # no state.json: not ours
    assert checkpoint.latest(tmp_path).name == "step_1000000"


def test_pruning_removes_only_folders_composer_wrote(tmp_path):
    folder = tmp_path / "run"
    trainer = Trainer(api.runner(api.from_dict(small_2d_gan(), RUN), cpu=True), folder, quiet=True)
    (folder / "checkpoints" / "step_7").mkdir(parents=True)          # the user's own folder, put there
    trainer.run()
    names = sorted(p.name for p in (folder / "checkpoints").iterdir())
    assert names == ["step_000003", "step_000004", "step_7"]


def test_saving_a_step_again_replaces_it_whole(tmp_path):
    runner = api.runner(api.from_dict(small_2d_gan()), cpu=True)
    target = tmp_path / "checkpoints" / "step_000000"
    checkpoint.save(runner, target)
    runner.step()
    runner.step_count = 0
    checkpoint.save(runner, target)
    assert sorted(p.name for p in target.parent.iterdir()) == ["step_000000"]
    fresh = api.runner(api.from_dict(small_2d_gan()), cpu=True)
    checkpoint.load(fresh, target)
    assert all(torch.equal(a, b) for a, b in zip(fresh.raw["D"].parameters(), runner.raw["D"].parameters()))


def test_a_damaged_newest_checkpoint_falls_back_to_the_previous_one(tmp_path):
    folder = trained(tmp_path)
    newest = checkpoint.latest(folder)
    data = (newest / "modules.safetensors").read_bytes()
    (newest / "modules.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.warns(UserWarning, match=r"step_000004.*modules.safetensors: not a readable safetensors file"):
        run = api.open_run(folder)
    assert run.step_count == 3


def test_a_pickle_is_never_loaded_and_the_message_says_why(tmp_path):
    folder = trained(tmp_path, overrides=RUN + ["train.keep_checkpoints=1"])
    newest = checkpoint.latest(folder)
    (newest / "state.safetensors").write_bytes(pickle.dumps({"x": 1}))
    with pytest.warns(UserWarning), pytest.raises(ComposerError, match=r"no checkpoint of .* could be loaded: "
                                                                       r".*state.safetensors: not a readable safetensors "
                                                                       r"file .*never load pickles"):
        api.open_run(folder)


def test_a_negative_stream_position_is_a_clear_error_not_a_hang(tmp_path):
    folder = trained(tmp_path, overrides=RUN + ["train.keep_checkpoints=1"])
    state_file = checkpoint.latest(folder) / "rank0.json"
    state = json.loads(state_file.read_text())
    state["streams"]["real"]["__dict__"][1][1] = -5
    state_file.write_text(json.dumps(state))
    with pytest.warns(UserWarning), pytest.raises(ComposerError, match=r"is damaged or does not fit this graph: "
                                                                       r"ValueError: data stream at epoch 0, position -5"):
        api.open_run(folder)


def test_out_must_be_a_run_folder_or_new(tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(ComposerError, match=r"is not empty \(notes.txt\) and is not a composer run folder"):
        api.train(api.from_dict(small_2d_gan()), tmp_path, RUN, quiet=True)
    assert (tmp_path / "notes.txt").read_text() == "mine" and not (tmp_path / "spec.yaml").exists()
    with pytest.raises(ComposerError, match=r"notes.txt: a file, not a folder"):
        api.train(api.from_dict(small_2d_gan()), tmp_path / "notes.txt", RUN, quiet=True)


def test_a_second_process_on_the_same_run_folder_is_refused(tmp_path):
    first = Trainer(api.runner(api.from_dict(small_2d_gan(), RUN), cpu=True), tmp_path / "run", quiet=True)
    with pytest.raises(ComposerError, match=r"is in use by another composer process"):
        Trainer(api.runner(api.from_dict(small_2d_gan(), RUN), cpu=True), tmp_path / "run", quiet=True)
    first.run()
    assert not any(p.name.endswith(".tmp") for p in (tmp_path / "run" / "checkpoints").iterdir())


def test_resume_refuses_a_changed_spec_unless_accepted(tmp_path):
    folder = trained(tmp_path)
    with pytest.raises(ComposerError, match=r"--resume: the spec differs from the run's in what changes training: "
                                            r"optimizers.D.lr: 0.001 -> 0.0005.*--accept-changes"):
        api.train(api.from_dict(small_2d_gan()), folder, RUN + ["optimizers.D.lr=5e-4"], resume=True, quiet=True)
    ring = small_2d_gan()
    ring["inputs"]["real"]["source"] = "grid"
    with pytest.raises(ComposerError, match=r"inputs.real.source: 'ring' -> 'grid'"):
        api.train(api.from_dict(ring), folder, RUN, resume=True, quiet=True)
    api.train(api.from_dict(small_2d_gan()), folder, RUN + ["train.log_every=2"], resume=True, quiet=True)  # harmless
    results = api.train(api.from_dict(small_2d_gan()), folder, RUN[1:] + ["train.steps=6"], resume=True, quiet=True,
                        accept_changes=True)
    assert results["step"] == 6
    record = json.loads((folder / "changes.jsonl").read_text())
    assert record == {"resumed_at": 4, "changes": ["train.steps: 4 -> 6"]}


def test_metrics_have_no_duplicate_steps_after_an_interrupted_run_resumes(tmp_path, monkeypatch):
    runner = api.runner(api.from_dict(small_2d_gan(), RUN + ["train.checkpoint_every=2"]), cpu=True)
    interrupt_at(monkeypatch, runner, 3)
    with pytest.raises(KeyboardInterrupt):
        Trainer(runner, tmp_path / "run", quiet=True).run()
    shutil.rmtree(tmp_path / "run" / "checkpoints" / "step_000003")    # as if killed: resume from step 2
    api.train(api.from_dict(small_2d_gan()), tmp_path / "run", RUN + ["train.checkpoint_every=2"], resume=True,
              quiet=True)
    steps = [json.loads(line)["step"] for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert steps == [1, 2, 3, 4]


def test_cli_resume_with_changes_exits_1_and_names_the_flag(tmp_path, capsys):
    folder = trained(tmp_path)
    spec = folder / "spec.yaml"
    assert main(["run", str(spec), "--out", str(folder), "--resume", "optimizers.G.lr=0.01"]) == 1
    assert "--accept-changes" in capsys.readouterr().err


def test_overflowed_optimizer_state_never_reaches_a_checkpoint(tmp_path, capsys):
    runner = api.runner(api.from_dict(small_2d_gan(), RUN), cpu=True)
    runner.step()
    first = next(iter(runner.optimizers["D"].state.values()))
    first["exp_avg_sq"].fill_(float("inf"))
    with pytest.raises(ComposerError, match=r"optimizer D: its exp_avg_sq state is not finite at step 2"):
        Trainer(runner, tmp_path / "run", quiet=True).run()
    assert checkpoint.latest(tmp_path / "run") is None


def test_step_returns_device_values_and_logs_are_floats(tmp_path):
    runner = api.runner(api.from_dict(small_2d_gan(), RUN), cpu=True)
    logs = runner.step()
    assert all(torch.is_tensor(v) and v.dim() == 0 for v in logs.values())
    api.train(api.from_dict(small_2d_gan()), tmp_path / "r", RUN, quiet=True)
    record = json.loads((tmp_path / "r" / "metrics.jsonl").read_text().splitlines()[0])
    assert isinstance(record["gan.G"], float)
