"""Exact resume after any interruption, for three kinds of graph: a GAN with R1, CycleGAN (image
pools: node state), diffusion (EMA, log-SNR times, gradient clipping).

A signal inside a step finishes that step, checkpoints it and stops; `kill -9` loses the steps
since the last periodic checkpoint. Either way `--resume` must end bitwise equal to a run that
was never interrupted: weights, EMA copies, and what comes next from the data streams.
"""
import os
import signal
import subprocess
import sys
import time

import pytest
import torch
import yaml
from safetensors.torch import load_file

from composer import api
from composer.run import checkpoint
from composer.run.trainer import Trainer
from conftest import GRAPHS, ROOT
from specs import small_2d_gan

STEPS = 6
GAN = ("gan", lambda: api.from_dict(small_2d_gan(penalty="r1"), [f"train.steps={STEPS}", "train.threads=1"]))
CYCLEGAN = ("cyclegan", lambda: api.load(GRAPHS / "cyclegan.yaml", [
    f"train.steps={STEPS}", "train.batch=2", "train.threads=1", "objectives.gan_A.pool=3", "objectives.gan_B.pool=3",
    *[f"inputs.real_{d}.size=8" for d in "AB"],
    *[f"modules.{g}.{k}" for g in ("G_AB", "G_BA") for k in ("width=4", "n_blocks=1")],
    *[f"modules.{d}.{k}" for d in ("D_A", "D_B") for k in ("width=8", "n_layers=1")],
    "sample.n=4", "eval.n=8", "train.sample_every=0", "train.log_every=0"]))
DIFFUSION = ("diffusion", lambda: api.load(GRAPHS / "diffusion.yaml", [
    f"train.steps={STEPS}", "train.batch=4", "train.threads=1", "modules.eps_net.width=8",
    "modules.eps_net.groups=4", "train.ema={eps_net: 0.5}", "train.grad_clip=1.0", "sample.n=4", "sample.steps=2",
    "eval.n=8", "train.sample_every=0", "train.log_every=0"]))


def _state(runner) -> dict:
    """Weights and EMA copies, and the next batch each data stream would give."""
    tensors = checkpoint.module_tensors(runner)
    for name, stream in runner.streams.items():
        tensors.update({f"next.{name}.{k}": v for k, v in stream.next().items()})
    tensors["next.noise"] = torch.randn(4, generator=runner.generator)
    return tensors


def _assert_equal(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


@pytest.mark.parametrize("graph", [GAN, CYCLEGAN, DIFFUSION], ids=lambda g: g[0])
def test_a_signal_inside_a_step_then_resume_equals_an_uninterrupted_run(tmp_path, graph):
    _, make = graph
    straight = api.runner(make(), cpu=True)
    for _ in range(STEPS):
        straight.step()
    runner = api.runner(make(), cpu=True)
    real_run_ops, last_phase = runner._run_ops, runner.plan.phases[-1].name

    def run_ops(phase, *args):                 # the signal arrives inside step 3's last phase
        if runner.step_count == 3 and phase.name == last_phase:
            os.kill(os.getpid(), signal.SIGTERM)
        return real_run_ops(phase, *args)

    runner._run_ops = run_ops
    with pytest.raises(KeyboardInterrupt):
        Trainer(runner, tmp_path / "run", quiet=True).run()
    assert checkpoint.latest(tmp_path / "run").name == "step_000004"
    resumed = Trainer(api.runner(make(), cpu=True), tmp_path / "run", resume=True, quiet=True).runner
    while resumed.step_count < STEPS:
        resumed.step()
    if graph is CYCLEGAN:
        assert resumed.state and all(resumed.state.values())      # the pools came back
    _assert_equal(_state(straight), _state(resumed))


def _launch(graph: str, out, *extra) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-m", "composer", "run", graph, "--out", str(out), "--cpu", *extra],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


@pytest.mark.slow
def test_kill_9_then_resume_from_the_periodic_checkpoint_equals_an_uninterrupted_run(tmp_path):
    """The killed run is a real `composer run` process; the reference and the resume run here."""
    data = small_2d_gan(penalty="r1")
    data["train"].update(steps=120, checkpoint_every=10, keep_checkpoints=20, log_every=10, threads=1)
    graph = tmp_path / "gan.yaml"
    graph.write_text(yaml.safe_dump(data))
    killed = _launch(str(graph), tmp_path / "killed")
    api.train(graph, tmp_path / "straight", quiet=True, cpu=True)
    deadline = time.time() + 120
    while checkpoint.latest(tmp_path / "killed") is None and time.time() < deadline and killed.poll() is None:
        time.sleep(0.02)
    killed.kill()
    _, errors = killed.communicate()
    survivor = checkpoint.latest(tmp_path / "killed")
    assert survivor is not None and int(survivor.name.split("_")[1]) < 120, errors
    api.train(graph, tmp_path / "killed", resume=True, quiet=True, cpu=True)
    _assert_equal(load_file(tmp_path / "straight" / "weights.safetensors"),
                  load_file(tmp_path / "killed" / "weights.safetensors"))
    steps = [yaml.safe_load(line)["step"] for line in (tmp_path / "killed" / "metrics.jsonl").read_text().splitlines()]
    assert steps == sorted(set(steps)) and steps[-1] == 120
