"""The small pieces the interpreter and the meta-device shape check share."""
from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class OpContext:
    """What an `fn` node may touch: modules it names, the step's RNG, its own saved state."""

    modules: dict
    generator: torch.Generator | None
    state: dict            # node name -> state dict (image pools); saved with checkpoints
    device: torch.device

    def state_of(self, name: str) -> dict:
        return self.state.setdefault(name, {})


def noise_like(node, inputs, batch: int, generator, device) -> torch.Tensor:
    """Draw a noise node's value: per-sample `shape`, or the shape of its `like` input."""
    args = node.args
    if inputs:
        size, dtype = tuple(inputs[0].shape), inputs[0].dtype
    else:
        size, dtype = (batch,) + tuple(args.get("shape") or ()), torch.float32
    if device.type == "meta":
        return torch.empty(size, dtype=dtype, device="meta")
    if node.target == "normal":
        value = torch.randn(size, generator=generator, dtype=dtype, device="cpu") * args.get("scale", 1.0)
    else:
        low, high = args.get("low", 0.0), args.get("high", 1.0)
        value = low + (high - low) * torch.rand(size, generator=generator, dtype=dtype, device="cpu")
    return value.to(device)
