import json
import os
import signal
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from composer import api
from composer.run import checkpoint
from composer.errors import ComposerError
from composer.tools.cli import main
from composer.run.trainer import Trainer
from conftest import GRAPHS, ROOT, interrupt_at, missing_library
from specs import small_2d_gan


def write_spec(tmp_path, data, name="g.yaml"):
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def test_validate_all_graph_files(capsys, stage_overrides):
    """Every shipped file, those that load an earlier stage's file with a stand-in of it."""
    files = [str(p) for p in sorted(GRAPHS.glob("*.yaml")) if not missing_library(p)]
    alone = [f for f in files if Path(f).stem not in stage_overrides]
    assert main(["validate", *alone]) == 0
    for f in files:
        if Path(f).stem in stage_overrides:
            assert main(["validate", f, *stage_overrides[Path(f).stem]]) == 0
    assert capsys.readouterr().out.count(": ok (") == len(files)


@pytest.mark.parametrize("edit, message", [
    (lambda t: t.replace("block: DCGANDiscriminator", "block: DCGANDiscriminatr"),
     r"dcgan.yaml:10:\d+: modules.D.block: unknown block 'DCGANDiscriminatr' \(did you mean 'DCGANDiscriminator'\?\)"),
    (lambda t: t.replace("fake: G(z)", "fake: G(fake)"), r"dcgan.yaml:\d+:\d+: flow.fake: the flow has a cycle: fake -> fake"),
    (lambda t: t.replace("image_size: 16, channels: 1, width: 32", "image_size: 16, channels: 3, width: 32"),
     r"dcgan.yaml:\d+:\d+: objectives.gan: D\(real\) failed on inputs real \[64, 1, 16, 16\]: .*3 channels"),
])
def test_validate_bad_copies_exit_2_naming_file_line_key(tmp_path, capsys, edit, message):
    bad = tmp_path / "dcgan.yaml"
    bad.write_text(edit((GRAPHS / "dcgan.yaml").read_text()))
    assert main(["validate", str(bad)]) == 2
    err = capsys.readouterr().err
    assert pytest.importorskip("re").search(message, err), err


def test_plan_shows_phases_frozen_and_detach(capsys):
    assert main(["plan", str(GRAPHS / "dcgan.yaml")]) == 0
    out = capsys.readouterr().out
    assert "phase D" in out and "phase G" in out
    assert "trains: G   frozen: D" in out
    assert "detach fake" in out
    assert "forward calls per step: G 1, D 3" in out
    assert "differentiates gan.real_logits" in out    # R1 shares D(real)


def test_plan_json(capsys):
    assert main(["plan", str(GRAPHS / "dcgan.yaml"), "--json"]) == 0
    plan = json.loads(capsys.readouterr().out)
    assert [p["name"] for p in plan["phases"]] == ["D", "G"]
    assert plan["forward_calls_per_step"] == {"G": 1, "D": 3}
    assert {"op": "compute", "node": "gan.r1", "computation": "r1[D](real)",
            "differentiates": "gan.real_logits"} in plan["phases"][0]["ops"]
    assert plan["phases"][1]["frozen"] == ["D"]
    assert plan["parameters"]["G"] == 198016


def test_run_sample_eval_round_trip(tmp_path, capsys):
    spec = write_spec(tmp_path, small_2d_gan())
    run = tmp_path / "run"
    assert main(["run", str(spec), "--out", str(run), "train.steps=4", "train.checkpoint_every=2"]) == 0
    assert (run / "weights.safetensors").exists() and (run / "samples" / "final.png").exists()
    assert (run / "metrics.jsonl").read_text().count("\n") >= 1
    assert main(["sample", str(run), "-n", "50", "-o", str(tmp_path / "s.npy")]) == 0
    samples = np.load(tmp_path / "s.npy")
    assert samples.shape == (50, 2) and np.isfinite(samples).all()
    assert main(["sample", str(run), "-n", "16", "-o", str(tmp_path / "s.png")]) == 0
    assert (tmp_path / "s.png").exists()
    capsys.readouterr()
    assert main(["eval", str(run), "--json"]) == 0
    metrics = json.loads(capsys.readouterr().out)
    assert metrics["mixture.modes_total"] == 8 and 0 <= metrics["mixture.hq_fraction"] <= 1


def test_run_refuses_to_overwrite_and_resume_needs_a_checkpoint(tmp_path, capsys):
    spec = write_spec(tmp_path, small_2d_gan())
    run = tmp_path / "run"
    assert main(["run", str(spec), "--out", str(run), "train.steps=2"]) == 0
    assert main(["run", str(spec), "--out", str(run), "train.steps=2"]) == 2
    assert "holds a finished run" in capsys.readouterr().err
    assert main(["run", str(spec), "--out", str(tmp_path / "new"), "--resume"]) == 1
    assert "holds no checkpoint to resume from" in capsys.readouterr().err


def test_resume_is_bit_exact(tmp_path):
    data = small_2d_gan()
    straight = api.runner(api.from_dict(data, ["train.steps=6"]), cpu=True)
    Trainer(straight, tmp_path / "a", quiet=True).run()
    first = api.runner(api.from_dict(data, ["train.steps=6"]), cpu=True)
    Trainer(first, tmp_path / "b", quiet=True).run(steps=3)
    resumed = api.runner(api.from_dict(data, ["train.steps=6"]), cpu=True)
    Trainer(resumed, tmp_path / "b", resume=True, quiet=True).run()
    assert resumed.step_count == 6
    for name in ("G", "D"):
        for a, b in zip(straight.raw[name].parameters(), resumed.raw[name].parameters()):
            assert torch.equal(a, b)


def test_interrupt_saves_a_checkpoint(tmp_path, monkeypatch):
    runner = api.runner(api.from_dict(small_2d_gan(), ["train.steps=10"]), cpu=True)
    interrupt_at(monkeypatch, runner, 3)
    with pytest.raises(KeyboardInterrupt):
        Trainer(runner, tmp_path / "run", quiet=True).run()
    assert checkpoint.latest(tmp_path / "run").name == "step_000003"


def test_nan_loss_stops_before_the_step_with_exit_3(tmp_path, capsys):
    data = small_2d_gan()
    data["optimizers"]["D"]["lr"] = 1e30
    data["optimizers"]["G"]["lr"] = 1e30
    spec = write_spec(tmp_path, data)
    code = main(["run", str(spec), "--out", str(tmp_path / "run"), "train.steps=50"])
    assert code == 3
    assert "non-finite loss in phase" in capsys.readouterr().err


def test_sample_from_a_folder_that_is_not_a_run(tmp_path, capsys):
    assert main(["sample", str(tmp_path), "-o", str(tmp_path / "x.npy")]) == 1
    assert "is not a composer run folder" in capsys.readouterr().err


def test_unknown_cli_argument_exits_2(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["plan", str(GRAPHS / "dcgan.yaml"), "--bogus"])
    assert exit_info.value.code == 2


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_mid_step_finishes_the_step_and_resume_is_bit_exact(tmp_path, signum):
    data = small_2d_gan(penalty="r1")
    straight = api.runner(api.from_dict(data, ["train.steps=6"]), cpu=True)
    Trainer(straight, tmp_path / "a", quiet=True).run()
    runner = api.runner(api.from_dict(data, ["train.steps=6"]), cpu=True)
    real_run_ops = runner._run_ops

    def run_ops(phase, *args):                 # the signal arrives inside step 3's D phase
        if runner.step_count == 3 and phase.name == "D":
            os.kill(os.getpid(), signum)
        return real_run_ops(phase, *args)

    runner._run_ops = run_ops
    with pytest.raises(KeyboardInterrupt):
        Trainer(runner, tmp_path / "b", quiet=True).run()
    assert checkpoint.latest(tmp_path / "b").name == "step_000004"     # step 3 (0-based) completed
    resumed = api.runner(api.from_dict(data, ["train.steps=6"]), cpu=True)
    Trainer(resumed, tmp_path / "b", resume=True, quiet=True).run()
    for name in ("G", "D"):
        for a, b in zip(straight.raw[name].parameters(), resumed.raw[name].parameters()):
            assert torch.equal(a, b)


def test_every_verb_is_in_the_readme_commands_table():
    from composer.tools.cli import VERBS

    table = (ROOT / "README.md").read_text().split("## Commands", 1)[1].split("\n## ", 1)[0]
    missing = [name for name in VERBS if f"| `composer {name}" not in table]
    assert not missing, f"README.md's Commands table lacks {missing}: add a row for each verb"


def test_the_api_covers_the_verbs_that_read_graphs_and_runs(tmp_path):
    from composer import api

    assert api.parse_labels("0:3") == [0, 1, 2] and api.parse_labels("4,5") == [4, 5]
    with pytest.raises(ComposerError, match="expected integers like 3, 0,1,2 or 0:10, got 'x'"):
        api.parse_labels("x")
    assert api.draw(GRAPHS / "gan_ring.yaml").startswith("digraph")
    assert api.diff(GRAPHS / "gan_ring.yaml", GRAPHS / "gan_ring.yaml") == []
    assert "inputs.real.source ring -> grid" in api.diff(GRAPHS / "gan_ring.yaml", GRAPHS / "gan_grid.yaml")
    assert api.runs(tmp_path) == []
    assert "## blocks" in api.reference(["blocks"])
