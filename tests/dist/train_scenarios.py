"""Run under torchrun with 2 processes: train each scenario of scenarios.py (one after another,
one launch) and write each rank's weights, EMA copies and a few draws of its noise generator."""
import sys
import time

import torch
from safetensors.torch import save_file

import scenarios
from composer import api

out, names = sys.argv[1], sys.argv[2:] or list(scenarios.BATCH)
for name in names:
    started = time.time()
    runner = api.runner(scenarios.spec(name, scenarios.BATCH[name]), cpu=True)   # gloo, also on a GPU box
    rank, world = runner.accelerator.process_index, runner.accelerator.num_processes
    scenarios.train(runner, name, rank, world)
    tensors = scenarios.tensors(runner)
    tensors["world"] = torch.tensor([world])
    tensors["noise"] = torch.randn(4, generator=runner.generator)
    save_file(tensors, f"{out}/{name}.rank{rank}.safetensors")
    print(f"rank {rank}: {name} {time.time() - started:.1f}s", flush=True)
