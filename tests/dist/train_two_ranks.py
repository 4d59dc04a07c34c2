"""Run under torchrun with 2 processes: train a few steps, write each rank's parameters."""
import sys

import torch
from safetensors.torch import save_file

from composer import api
from specs import small_2d_gan

out = sys.argv[1]
runner = api.runner(api.from_dict(small_2d_gan(), ["train.steps=3"]))
for _ in range(3):
    runner.step()
rank = runner.accelerator.process_index
tensors = {f"{m}.{k}": v.contiguous() for m in ("G", "D") for k, v in runner.raw[m].state_dict().items()}
tensors["world"] = torch.tensor([runner.accelerator.num_processes])
tensors["noise"] = torch.randn(4, generator=runner.generator)
save_file(tensors, f"{out}/rank{rank}.safetensors")
