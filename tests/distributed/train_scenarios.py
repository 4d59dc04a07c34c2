"""Run under torchrun with 2 processes: train each scenario of scenarios.py (one after another,
one launch) and write each rank's weights, EMA copies and a few draws of its noise generator.
Then interrupt-and-resume: a signal that reaches rank 1 alone during step 1 of the CycleGAN
scenario (image pools, per-rank data), a resume from the checkpoint both ranks then wrote, and
the same steps uninterrupted; each rank writes both results."""
import sys
import time

import torch
from safetensors.torch import save_file

import scenarios
from composer import api
from composer.run.trainer import Callback, Trainer

out, names = sys.argv[1], sys.argv[2:] or list(scenarios.BATCH)
for name in names:
    started = time.time()
    runner = api.runner(scenarios.spec(name, scenarios.BATCH[name]), cpu=True)   # gloo, also on a GPU box
    rank, world = runner.accelerator.process_index, runner.accelerator.num_processes
    scenarios.train(runner, name, rank, world)
    tensors = scenarios.tensors(runner)
    tensors["world"] = torch.tensor([world])
    tensors["noise"] = torch.randn(4, generator=runner.generator)
    tensors["dropout"] = torch.rand(4)          # the global RNG: dropout masks
    save_file(tensors, f"{out}/{name}.rank{rank}.safetensors")
    print(f"rank {rank}: {name} {time.time() - started:.1f}s", flush=True)


class SignalRankOne(Callback):
    """SIGTERM's effect on rank 1 only, after step 1 (the handler just sets stop_signal)."""

    def on_step(self, trainer, step, logs):
        if step == 1 and trainer.runner.accelerator.process_index == 1:
            trainer.stop_signal = 15


def interrupted_and_resumed(name: str) -> None:
    spec = scenarios.spec(name, scenarios.BATCH[name])
    straight = api.runner(spec, cpu=True)
    for _ in range(scenarios.STEPS):
        straight.step()
    run = f"{out}/resume_{name}"
    try:
        Trainer(api.runner(spec, cpu=True), run, quiet=True, callbacks=[SignalRankOne()]).run()
        raise SystemExit("the signal did not stop the run")
    except KeyboardInterrupt:
        pass
    resumed = Trainer(api.runner(spec, cpu=True), run, resume=True, quiet=True).runner
    stopped_at = resumed.step_count
    while resumed.step_count < scenarios.STEPS:
        resumed.step()
    rank = resumed.accelerator.process_index
    tensors = {f"straight.{k}": v for k, v in scenarios.tensors(straight).items()}
    tensors.update({f"resumed.{k}": v for k, v in scenarios.tensors(resumed).items()})
    tensors["stopped_at"] = torch.tensor([stopped_at])
    save_file(tensors, f"{out}/resume_{name}.rank{rank}.safetensors")


interrupted_and_resumed("cyclegan")
