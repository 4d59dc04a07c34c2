"""Trackers named in `train.log_with` (Accelerate's tracker classes): names checked when the spec
is read, a clear message for a missing library, TensorBoard event files with the window means of
every term, learning rates, eval metrics and sample grids, and a resume that does not duplicate."""
import json
import time
import shutil

import pytest

from composer import api
from composer.errors import SpecError
from composer.spec.schema import parse
from composer.run.trackers import scalars
from composer.spec.values import name_problem, tracker_names
from composer.run.trainer import Callback, Trainer
from composer.spec.yamlio import load_text
from specs import small_2d_gan

SPEC = """\
name: tiny
train:
  log_with: [{names}]
"""


def _parse(names: str):
    data, locs = load_text(SPEC.format(names=names), "run.yaml")
    return parse(data, locs, "run.yaml")


def test_accelerates_trackers_are_the_names():
    assert {"tensorboard", "wandb", "mlflow", "aim"} <= set(tracker_names())
    assert "all" not in tracker_names()              # every tracker named explicitly


@pytest.mark.parametrize("names, message", [
    ("tensorbord", r"^run.yaml:3:14: train.log_with.0: unknown tracker 'tensorbord' \(did you mean 'tensorboard'\?\)$"),
    ("tensorboard, tensorboard", r"^run.yaml:3:27: train.log_with.1: tracker 'tensorboard' is named twice$"),
    ("3", r"^run.yaml:3:14: train.log_with.0: a tracker name is a string, got 3$"),
])
def test_a_bad_tracker_name_is_a_spec_error(names, message):
    with pytest.raises(SpecError, match=message):
        _parse(names)


def test_log_with_is_a_list():
    assert _parse("tensorboard, wandb").train.log_with == ["tensorboard", "wandb"]
    data, locs = load_text("train:\n  log_with: tensorboard\n", "run.yaml")
    with pytest.raises(SpecError, match=r"run.yaml:2:3: train.log_with: expected list, got 'tensorboard'"):
        parse(data, locs, "run.yaml")
    assert name_problem("wandb") is None


def test_a_missing_library_is_named_with_its_install_command(tmp_path, monkeypatch):
    import accelerate.tracking

    monkeypatch.setattr(accelerate.tracking, "get_available_trackers", lambda: [])
    spec = api.from_dict(small_2d_gan(), ["train.log_with=[tensorboard]", "train.threads=1"])
    with pytest.raises(SpecError, match=r"train.log_with.0: tracker 'tensorboard' needs its library, which is not "
                                        r"installed: pip install 'composer-graphs\[tensorboard\]'$"):
        api.train(spec, tmp_path / "run", quiet=True)


def test_scalars_are_prefixed_and_flattened():
    assert scalars("eval", {"fid": 3, "mixture": {"modes": 8}, "ok": True, "name": "x"}) == \
        {"eval/fid": 3, "eval/mixture/modes": 8}


def _events(folder):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(folder), size_guidance={"scalars": 0, "images": 0})
    events.Reload()
    return events


TINY = ["train.steps=4", "train.log_every=2", "train.sample_every=2", "train.threads=1",
        "train.log_with=[tensorboard]"]


class TrackerSeen(Callback):
    """What a callback finds on the Accelerator (Accelerate's own lookup)."""

    def __init__(self):
        self.seen = []

    def on_step(self, trainer, step, logs):
        self.seen.append(trainer.runner.accelerator.get_tracker("tensorboard").name)


def test_tensorboard_gets_every_term_lrs_eval_and_samples(tmp_path):
    pytest.importorskip("tensorboard")
    seen = TrackerSeen()
    runner = api.runner(api.from_dict(small_2d_gan()), TINY)
    results = Trainer(runner, tmp_path / "run", quiet=True, callbacks=[seen]).run()
    assert seen.seen == ["tensorboard"] * 4 and runner.accelerator.trackers == []    # closed at the end
    events = _events(tmp_path / "run" / "tensorboard" / "small_2d")
    records = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    terms = [k for k in records[0] if k.startswith("gan.")]
    assert terms == ["gan.D_real", "gan.D_fake", "gan.G"]
    for term in terms:
        logged = [(e.step, e.value) for e in events.Scalars(f"loss/{term}")]
        assert logged == [(r["step"], pytest.approx(r[term], rel=1e-6)) for r in records]
    assert [e.value for e in events.Scalars("lr/G")] == pytest.approx([1e-3, 1e-3])
    modes = events.Scalars("eval/mixture.modes")
    assert [(e.step, e.value) for e in modes] == [(4, results["mixture.modes"])]
    assert [e.step for e in events.Images("samples")] == [2, 4]    # step_2, step_4 (final.png: the same)


def test_a_resume_does_not_repeat_tensorboard_steps(tmp_path):
    pytest.importorskip("tensorboard")
    overrides = TINY + ["train.log_every=1", "train.checkpoint_every=2", "train.sample_every=0"]
    run = tmp_path / "run"
    api.train(api.from_dict(small_2d_gan()), run, overrides, quiet=True)
    shutil.rmtree(run / "checkpoints" / "step_000004")           # as if stopped after step 4's log
    api.train(api.from_dict(small_2d_gan()), run, overrides, resume=True, quiet=True)
    events = _events(run / "tensorboard" / "small_2d")
    assert [e.step for e in events.Scalars("loss/gan.G")] == [1, 2, 3, 4]
    assert [e.step for e in events.Scalars("eval/mixture.modes")] == [4]
    assert [json.loads(line)["step"] for line in (run / "metrics.jsonl").read_text().splitlines()] == [1, 2, 3, 4]


@pytest.mark.slow
def test_mlflow_logs_to_a_local_store_in_the_run_folder(tmp_path, monkeypatch):
    mlflow = pytest.importorskip("mlflow")
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    results = api.train(api.from_dict(small_2d_gan()), tmp_path / "run", [*TINY[:-1], "train.log_with=[mlflow]"],
                        quiet=True)
    store = tmp_path / "run" / "mlflow" / "mlflow.db"
    assert store.is_file()
    client = mlflow.tracking.MlflowClient(f"sqlite:///{store}")
    (run,) = client.search_runs([e.experiment_id for e in client.search_experiments() if e.name == "small_2d"])
    records = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    for term in ("gan.D_real", "gan.D_fake", "gan.G"):
        logged = [(m.step, m.value) for m in client.get_metric_history(run.info.run_id, f"loss/{term}")]
        assert sorted(logged) == [(r["step"], pytest.approx(r[term], rel=1e-6)) for r in records]
    assert run.data.metrics["eval/mixture.modes"] == results["mixture.modes"]
    assert run.data.params["optimizers.G.lr"] == "0.001" and run.data.params["train.steps"] == "4"


@pytest.mark.slow
def test_wandb_offline_writes_every_logged_value_in_the_run_folder(tmp_path, monkeypatch):
    pytest.importorskip("wandb")
    for name, value in {"WANDB_MODE": "offline", "WANDB_SILENT": "true"}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("WANDB_DIR", raising=False)
    api.train(api.from_dict(small_2d_gan()), tmp_path / "run", [*TINY[:-1], "train.log_with=[wandb]"], quiet=True)
    (log,) = (tmp_path / "run" / "wandb").glob("wandb/offline-run-*/run-*.wandb")   # what `wandb sync` uploads
    records = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    deadline = time.time() + 60                 # W&B's service process may still be writing its log
    while json.dumps(records[-1]["gan.G"]).encode() not in (written := log.read_bytes()) and time.time() < deadline:
        time.sleep(0.5)
    for record in records:      # every window mean, as W&B's history stores it (JSON text in its records)
        for term in ("gan.D_real", "gan.D_fake", "gan.G"):
            assert json.dumps(record[term]).encode() in written, (record["step"], term)
    for key in (b"loss/gan.G", b"lr/G", b"eval/mixture.modes", b"optimizers.G.lr", b"samples"):
        assert key in written
