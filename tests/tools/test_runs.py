"""`composer runs`: a table of run folders (status, steps, time, final losses, eval metrics)."""
import json

import pytest

from composer import api
from composer.tools.cli import main
from composer.run.runs import collect, find
from conftest import GRAPHS

TINY = ["train.steps=2", "train.batch=8", "train.log_every=1", "train.sample_every=0",
        "train.checkpoint_every=0", "sample.n=16", "eval.n=32", "train.threads=1"]


def fake_run(folder, name, steps, metrics, results=None, checkpoint_at=None):
    """A run folder as composer writes one: spec.yaml, metrics.jsonl, eval.json, checkpoints."""
    folder.mkdir(parents=True)
    (folder / "spec.yaml").write_text(f"name: {name}\ntrain: {{steps: {steps}}}\n")
    (folder / "metrics.jsonl").write_text("".join(json.dumps(m) + "\n" for m in metrics))
    if results is not None:
        (folder / "eval.json").write_text(json.dumps(results))
    if checkpoint_at is not None:
        saved = folder / "checkpoints" / f"step_{checkpoint_at:06d}"
        saved.mkdir(parents=True)
        (saved / "state.json").write_text("{}")


@pytest.fixture
def runs(tmp_path):
    root = tmp_path / "runs"
    fake_run(root / "a", "ring", 10, [{"step": 5, "seconds": 1.0, "gan.G": 0.9, "lr.G": 1e-3},
                                      {"step": 10, "seconds": 2.0, "gan.G": 0.7, "lr.G": 1e-3}],
             {"step": 10, "seconds": 2.5, "mixture.modes": 8, "mixture.hq_fraction": 0.9}, checkpoint_at=10)
    fake_run(root / "b", "ring", 10, [{"step": 5, "seconds": 1.0, "gan.G": 0.5}], checkpoint_at=5)
    fake_run(root / "c", "vae", 100, [])
    (root / "c" / "metrics.jsonl").write_text('{"step": 1, "seconds": 0.1, "rec.loss": 3.0}\n{"step": 2, "seco')
    (root / "notes").mkdir()
    return root


def test_rows_read_status_steps_losses_and_eval(runs):
    rows = {r["run"]: r for r in collect(runs)}
    assert list(rows) == ["a", "b", "c"]
    assert rows["a"] == {"run": "a", "graph": "ring", "status": "finished", "step": 10, "steps": 10,
                         "seconds": 2.5, "losses": {"gan.G": 0.7},
                         "eval": {"mixture.modes": 8, "mixture.hq_fraction": 0.9}}
    assert rows["b"]["status"] == "checkpoint at step 5" and rows["b"]["losses"] == {"gan.G": 0.5}
    assert rows["c"]["status"] == "interrupted"
    assert rows["c"]["step"] == 1 and rows["c"]["losses"] == {"rec.loss": 3.0}   # the cut last line skipped


def test_sort_by_a_loss_missing_values_last(runs):
    assert [r["run"] for r in collect(runs, "gan.G")] == ["b", "a", "c"]
    assert [r["run"] for r in collect(runs, "gan.G", descending=True)] == ["a", "b", "c"]
    assert [r["run"] for r in collect(runs, "steps", descending=True)] == ["a", "b", "c"]
    assert [r["run"] for r in collect(runs, "eval.mixture.modes")] == ["a", "b", "c"]


def test_cli_table(runs, capsys):
    assert main(["runs", str(runs), "--sort", "time"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["run", "graph", "status", "steps", "time", "gan.G", "rec.loss",
                                "eval.mixture.modes", "eval.mixture.hq_fraction"]
    assert lines[1].split() == ["c", "vae", "interrupted", "1/100", "0.1s", "-", "3", "-", "-"]
    assert lines[2].split() == ["b", "ring", "checkpoint", "at", "step", "5", "5/10", "1.0s", "0.5", "-", "-", "-"]
    assert lines[3].split() == ["a", "ring", "finished", "10/10", "2.5s", "0.7", "-", "8", "0.9"]


def test_cli_json_columns_and_errors(runs, tmp_path, capsys):
    assert main(["runs", str(runs), "--json"]) == 0
    assert [r["status"] for r in json.loads(capsys.readouterr().out)] == ["finished", "checkpoint at step 5",
                                                                         "interrupted"]
    assert main(["runs", str(runs), "--columns", "eval.*"]) == 0
    assert capsys.readouterr().out.splitlines()[0].split() == ["run", "graph", "status", "steps", "time",
                                                               "eval.mixture.modes", "eval.mixture.hq_fraction"]
    assert main(["runs", str(runs), "--sort", "gan.Q"]) == 2
    assert capsys.readouterr().err.startswith("error: --sort gan.Q: no such column (columns: run, graph, status")
    assert main(["runs", str(tmp_path / "nowhere")]) == 1
    assert capsys.readouterr().err == f"error: {tmp_path / 'nowhere'}: no such folder\n"
    (tmp_path / "empty").mkdir()
    assert main(["runs", str(tmp_path / "empty")]) == 0
    assert capsys.readouterr().out == f"no runs under {tmp_path / 'empty'}\n"


def test_a_real_run_folder(tmp_path, capsys):
    results = api.train(GRAPHS / "gan_ring.yaml", tmp_path / "runs" / "ring", TINY, quiet=True)
    assert find(tmp_path / "runs") == [tmp_path / "runs" / "ring"]
    (row,) = collect(tmp_path / "runs")
    last = json.loads((tmp_path / "runs" / "ring" / "metrics.jsonl").read_text().splitlines()[-1])
    assert row["status"] == "finished" and row["step"] == 2 and row["steps"] == 2
    assert row["losses"] == {k: v for k, v in last.items() if k not in ("step", "seconds") and not k.startswith("lr.")}
    assert set(row["losses"]) == {"gan.D_real", "gan.D_fake", "gan.D_r1", "gan.G"}
    expected = {k: v for k, v in results.items() if k not in ("step", "seconds")}
    assert json.dumps(row["eval"]) == json.dumps(expected)       # NaN widths where no sample is near a mode
    assert main(["runs", str(tmp_path / "runs"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)[0]["eval"]["mixture.modes_total"] == 8


def test_a_damaged_spec_still_lists_the_run(tmp_path):
    fake_run(tmp_path / "r", "x", 1, [{"step": 1, "seconds": 0.5, "loss": 2.0}])
    (tmp_path / "r" / "spec.yaml").write_text("name: [unclosed\n")
    (row,) = collect(tmp_path)
    assert (row["graph"], row["status"], row["steps"], row["losses"]) == ("?", "interrupted", None, {"loss": 2.0})
