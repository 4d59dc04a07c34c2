"""Several processes on the CPU (gloo): what DDP must guarantee, and a launch that did not become
distributed.

Three launches run side by side (started once for the module; ~40 s on a loaded 2-core machine):
  - torchrun, 2 processes: tests/distributed/train_scenarios.py trains six small graphs in sequence
    (tests/distributed/scenarios.py) and writes each rank's weights;
  - `composer run` through `accelerate launch` and through `torchrun -m composer run`.
Each scenario is checked twice: the ranks end bitwise identical, and equal (<= 1e-5) to ONE process
trained on the same global batch (2B rows) with the same data and noise: explicitly fed rows for
`r1_fed`, virtual ranks for the others (tests/distributed/virtual_ranks.py: per-rank streams, generators
and image pools reproduced in one process).
"""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import load_file
from torch import nn

from conftest import ROOT

sys.path.insert(0, str(ROOT / "tests" / "distributed"))

import scenarios  # noqa: E402
from composer import api  # noqa: E402
from composer.errors import ComposerError  # noqa: E402
from composer.run.launch import check_launch, launch_warning  # noqa: E402
from specs import small_2d_gan  # noqa: E402
from virtual_ranks import virtual_ranks  # noqa: E402

WORLD = 2
ACCELERATE = ["-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
              "--mixed_precision", "no", "--dynamo_backend", "no"]
TORCHRUN = ["-m", "torch.distributed.run", "--nproc_per_node", "2"]


def _environment(**extra) -> dict:
    """A clean environment: variables set by torch/accelerate in this (pytest) process stay out."""
    keep = ("PATH", "HOME", "LANG", "TMPDIR", "COMPOSER_CACHE")
    env = {k: v for k, v in os.environ.items() if k in keep}
    env.update(PYTHONPATH=os.pathsep.join(str(ROOT / p) for p in ("", "tests", "tests/distributed")),
               OMP_NUM_THREADS="1", **extra)
    return env


def _free_port() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return str(s.getsockname()[1])


class Launch:
    def __init__(self, args: list, out: Path, **env):
        self.out = out
        self.process = subprocess.Popen([sys.executable, *args], env=_environment(**env), cwd=out,
                                        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self._done = None

    def wait(self) -> Path:
        if self._done is None:
            self._done, _ = self.process.communicate(timeout=300)
        if self.process.returncode != 0:   # composer's own "error:" lines first, then the tail
            errors = [line for line in self._done.splitlines() if line.startswith("error:")]
            pytest.fail("\n".join(errors + ["..."]) + self._done[-3000:])
        return self.out

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.communicate()


def _cli_graph(folder: Path) -> Path:
    data = small_2d_gan()
    data["train"].update(steps=3, batch=8, threads=1)
    data["sample"]["n"], data["eval"]["n"] = 16, 100
    path = folder / "small_2d.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


@pytest.fixture(scope="module")
def launches(tmp_path_factory):
    ranks = tmp_path_factory.mktemp("ranks")
    cli = tmp_path_factory.mktemp("cli")
    graph = _cli_graph(cli)
    started = {
        "scenarios": Launch([*TORCHRUN, "--master_port", _free_port(),
                             str(ROOT / "tests" / "distributed" / "train_scenarios.py"), str(ranks)], ranks),
        "accelerate": Launch([*ACCELERATE, "--main_process_port", _free_port(), "-m", "composer", "run",
                              str(graph), "--out", str(cli / "accelerate")], cli,
                             ACCELERATE_USE_CPU="1", HF_HOME=str(cli / "hf")),
        "torchrun": Launch([*TORCHRUN, "--master_port", _free_port(), "-m", "composer", "run", "--cpu",
                            str(graph), "--out", str(cli / "torchrun")], cli),
    }
    started["graph"] = graph
    yield started
    for launch in started.values():
        if isinstance(launch, Launch):
            launch.stop()


def _one_process(name: str) -> tuple[dict, object]:
    """The scenario in one process on the global batch, with the ranks' data and noise."""
    runner = api.runner(scenarios.spec(name, WORLD * scenarios.BATCH[name]), cpu=True)
    if name in scenarios.FED:
        scenarios.train(runner, name)
    else:
        with virtual_ranks(runner, WORLD):
            scenarios.train(runner, name)
    return scenarios.tensors(runner), runner


def _ranks(launches, name: str) -> tuple[dict, dict]:
    folder = launches["scenarios"].wait()
    return tuple(load_file(folder / f"{name}.rank{r}.safetensors") for r in range(WORLD))


def _assert_ranks_identical(rank0: dict, rank1: dict) -> None:
    assert int(rank0["world"]) == WORLD
    assert not torch.equal(rank0["noise"], rank1["noise"]), "every rank must draw its own noise"
    assert not torch.equal(rank0["dropout"], rank1["dropout"]), "and its own dropout masks"
    for key in rank0:
        if key not in ("world", "noise", "dropout"):
            assert torch.equal(rank0[key], rank1[key]), key


def _assert_close(reference: dict, rank0: dict, skip=frozenset()) -> None:
    for key, value in reference.items():
        if key not in skip:
            torch.testing.assert_close(rank0[key], value, rtol=0, atol=1e-5, msg=lambda m: f"{key}: {m}")


@pytest.mark.parametrize("name", ["r1_fed", "plain", "wgan_gp", "diffusion", "two_heads", "vqvae"])
def test_two_ranks_equal_one_process_on_the_global_batch(launches, name):
    reference, _ = _one_process(name)
    rank0, rank1 = _ranks(launches, name)
    _assert_ranks_identical(rank0, rank1)
    _assert_close(reference, rank0)
    if name == "diffusion":     # the EMA copy is kept per rank, from identical weights
        assert any(k.startswith("ema.") for k in reference)


def test_two_ranks_equal_one_process_cyclegan_with_image_pools(launches):
    """Per-rank image pools (full after two steps, then coin flips) and InstanceNorm. A conv bias
    right before an InstanceNorm has an analytically zero gradient: Adam turns its rounding noise
    into +-lr steps that differ between 1 and 2 processes. Those biases do not change any output
    (checked: swapping in the ranks' values leaves all four networks' outputs as they were);
    every other tensor agrees to 1e-5."""
    reference, runner = _one_process("cyclegan")
    rank0, rank1 = _ranks(launches, "cyclegan")
    _assert_ranks_identical(rank0, rank1)
    dead = {f"{m}.{key}" for m in runner.raw for key in _biases_before_instance_norm(runner.raw[m])}
    assert dead
    _assert_close(reference, rank0, skip=dead)
    images = torch.randn(4, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    for name, module in runner.raw.items():
        expected = module(images)
        swapped = {k[len(name) + 1:]: rank0[k] for k in dead if k.startswith(name + ".")}
        assert any(not torch.equal(v, module.state_dict()[k]) for k, v in swapped.items())
        module.load_state_dict(swapped, strict=False)
        torch.testing.assert_close(module(images), expected, rtol=0, atol=1e-6)


def test_a_signal_on_one_rank_stops_both_and_resume_is_bit_exact(launches):
    """SIGTERM reaching rank 1 alone: both ranks stop after the same step (they agree), each saves
    its own data stream, noise and image pool, and the resumed 2-process run ends bitwise equal
    to the uninterrupted one on every rank."""
    folder = launches["scenarios"].wait()
    for rank in range(WORLD):
        tensors = load_file(folder / f"resume_cyclegan.rank{rank}.safetensors")
        assert int(tensors["stopped_at"]) == 1
        straight = {k[len("straight."):]: v for k, v in tensors.items() if k.startswith("straight.")}
        assert straight
        for key, value in straight.items():
            assert torch.equal(tensors[f"resumed.{key}"], value), f"rank {rank}: {key}"
    step = folder / "resume_cyclegan" / "checkpoints" / "step_000001"
    pools = [load_file(step / f"rank{r}.safetensors") for r in range(WORLD)]
    pool_keys = [k for k in pools[0] if k.startswith("node.")]
    assert pool_keys and any(not torch.equal(pools[0][k], pools[1][k]) for k in pool_keys)
    assert json.loads((step / "state.json").read_text())["processes"] == WORLD
    states = [load_file(step / f"rank{r}.safetensors") for r in range(WORLD)]
    assert not torch.equal(states[0]["rng.noise"], states[1]["rng.noise"])


def test_a_checkpoint_resumes_only_with_the_process_count_that_wrote_it(launches):
    """Sampling and evaluating read any checkpoint in one process (see the launcher test above)."""
    folder = launches["torchrun"].wait() / "torchrun"
    with pytest.raises(ComposerError, match=r"written by 2 process\(es\), this run has 1: each process resumes "
                                            r"its own data stream, noise and pools, so resume with the same"):
        api.train(launches["graph"], folder, ["train.steps=5"], resume=True, quiet=True, cpu=True,
                  accept_changes=True)


def _biases_before_instance_norm(module: nn.Module) -> list[str]:
    leaves = [(n, m) for n, m in module.named_modules() if not list(m.children())]
    return [f"{name}.bias" for (name, conv), (_, norm) in zip(leaves, leaves[1:])
            if isinstance(conv, nn.modules.conv._ConvNd) and conv.bias is not None
            and isinstance(norm, nn.InstanceNorm2d)]


@pytest.mark.parametrize("launcher", ["accelerate", "torchrun"])
def test_composer_run_under_a_launcher_trains_one_synchronised_model(launches, launcher):
    """`composer run` through the launcher: rank 0 writes the run folder, both ranks checkpoint
    their own RNG, and the weights equal one process on the global batch (two unsynchronised
    copies would each have trained on their own half)."""
    folder = launches[launcher].wait() / launcher
    weights = load_file(folder / "weights.safetensors")
    step = folder / "checkpoints" / "step_000003"
    noise = [load_file(step / f"rank{r}.safetensors")["rng.noise"] for r in range(WORLD)]
    assert not torch.equal(*noise)
    runner = api.runner(api.load(launches["graph"], [f"train.batch={WORLD * 8}"]), cpu=True)
    with virtual_ranks(runner, WORLD):
        for _ in range(3):
            runner.step()
    _assert_close(scenarios.tensors(runner), weights)
    reopened = api.open_run(folder, cpu=True)
    for key, value in scenarios.tensors(reopened).items():
        assert torch.equal(value, weights[key]), key


def test_accelerate_launch_and_torchrun_give_the_same_run(launches):
    a, b = (load_file(launches[k].wait() / k / "weights.safetensors") for k in ("accelerate", "torchrun"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


# ---------------------------------------------------------------- a launch that is not distributed
def test_a_process_of_a_multi_process_launch_alone_is_refused():
    with pytest.raises(ComposerError, match=r"WORLD_SIZE=2 processes \(RANK=1\), but Accelerate set up 1: "
                                            r"each would train an unsynchronised copy.*torchrun.*"
                                            r"ACCELERATE_USE_CPU=1 accelerate launch --multi_gpu"):
        check_launch(1, {"WORLD_SIZE": "2", "RANK": "1", "LOCAL_RANK": "1"})
    with pytest.raises(ComposerError, match="OMPI_COMM_WORLD_SIZE=4 processes"):
        check_launch(1, {"OMPI_COMM_WORLD_SIZE": "4"})
    with pytest.raises(ComposerError, match="WORLD_SIZE='two' in the environment is not a number"):
        check_launch(1, {"WORLD_SIZE": "two"})


def test_single_and_matching_launches_pass():
    check_launch(1, {})
    check_launch(1, {"WORLD_SIZE": "1", "RANK": "0"})
    check_launch(1, {"WORLD_SIZE": ""})
    check_launch(2, {"WORLD_SIZE": "2", "RANK": "1"})


@pytest.mark.skipif(torch.cuda.is_available(), reason="with a GPU, cpu=False would start an NCCL rendezvous")
def test_runner_in_a_torchrun_environment_that_stays_one_process_fails(monkeypatch):
    """What torchrun sets up, with Accelerate kept on one process (cpu=False on a GPU-less machine
    gives DistributedType.NO): the runner refuses instead of training an unsynchronised copy."""
    for key, value in {"WORLD_SIZE": "2", "RANK": "0", "LOCAL_RANK": "0", "LOCAL_WORLD_SIZE": "2",
                       "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": _free_port()}.items():
        monkeypatch.setenv(key, value)
    with pytest.raises(ComposerError, match="unsynchronised copy"):
        api.runner(api.from_dict(small_2d_gan()), cpu=False)


# ---------------------------------------------------------------- a launch that became one process
ACCELERATE_CPU_2 = {"ACCELERATE_USE_CPU": "True", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": "29500",
                    "ACCELERATE_MIXED_PRECISION": "no", "ACCELERATE_DYNAMO_BACKEND": "NO"}
"""What `accelerate launch --cpu --num_processes 2` sets for the one process it starts (accelerate 1.16,
utils/launch.py: prepare_simple_launcher_cmd_env); with --num_processes 1 it sets no MASTER_ADDR."""


def test_a_multi_process_accelerate_launch_that_runs_one_process_warns():
    assert "trains in one (`accelerate launch --cpu --num_processes N` starts one process)" in \
        launch_warning(1, ACCELERATE_CPU_2)
    without_master = {k: v for k, v in ACCELERATE_CPU_2.items() if not k.startswith("MASTER")}
    assert launch_warning(1, without_master) is None                          # --num_processes 1
    assert launch_warning(2, ACCELERATE_CPU_2) is None                        # it did start two
    assert launch_warning(1, {**ACCELERATE_CPU_2, "WORLD_SIZE": "1"}) is None   # torchrun: check_launch's
    assert launch_warning(1, {"MASTER_ADDR": "10.0.0.1"}) is None             # not accelerate launch


def test_the_runner_prints_the_warning_on_stdout(monkeypatch, capsys):
    for key, value in ACCELERATE_CPU_2.items():
        monkeypatch.setenv(key, value)
    api.runner(api.from_dict(small_2d_gan()), cpu=True)
    out = capsys.readouterr().out
    assert out.startswith("warning: `accelerate launch` was asked for several processes, but this run trains in one")
    assert "torchrun --nproc_per_node N -m composer run FILE" in out


@pytest.mark.slow
def test_accelerate_launch_cpu_two_processes_warns_for_real(tmp_path):
    graph = tmp_path / "g.yaml"
    graph.write_text(yaml.safe_dump(small_2d_gan(), sort_keys=False))
    env = {k: v for k, v in os.environ.items() if k not in ACCELERATE_CPU_2 and k not in ("WORLD_SIZE", "RANK")}
    done = subprocess.run([sys.executable, "-m", "accelerate.commands.launch", "--cpu", "--num_processes", "2",
                           "--main_process_port", _free_port(), "-m", "composer", "run", str(graph), "--out",
                           str(tmp_path / "run"), "train.steps=1", "train.threads=1"],
                          capture_output=True, text=True, env={**env, "HF_HOME": str(tmp_path / "hf")}, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("this run trains in one") == 1
