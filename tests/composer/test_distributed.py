"""Two CPU processes (torchrun, gloo): modules are wrapped in DDP, gradients all-reduced, so the
ranks end with identical parameters while drawing different noise (per-rank seeds)."""
import os
import subprocess
import sys

import torch
from safetensors.torch import load_file

from conftest import ROOT


def test_two_cpu_processes_stay_synchronised(tmp_path):
    # a clean environment: variables set by torch/accelerate in this (pytest) process stay out
    keep = ("PATH", "HOME", "LANG", "TMPDIR", "COMPOSER_CACHE")
    env = {k: v for k, v in os.environ.items() if k in keep}
    env.update(PYTHONPATH=str(ROOT / "tests"), OMP_NUM_THREADS="1")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29533",
           str(ROOT / "tests" / "dist" / "train_two_ranks.py"), str(tmp_path)]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    rank0, rank1 = (load_file(tmp_path / f"rank{r}.safetensors") for r in (0, 1))
    assert int(rank0["world"]) == 2
    assert not torch.equal(rank0["noise"], rank1["noise"])
    for key in rank0:
        if key not in ("world", "noise"):
            assert torch.equal(rank0[key], rank1[key]), key
