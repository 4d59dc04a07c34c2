"""Image history pool (Shrivastava et al. 2017), as CycleGAN feeds its discriminators.

Its state (the stored fakes) lives in the run's explicit state dict and is saved in checkpoints.
"""
from __future__ import annotations

import torch

from composer.graph.nodes import Op


class ImagePool(Op):
    """Return a batch where each fake is, once the pool is full, swapped with probability
    `prob` for a stored older fake (which the new one replaces)."""

    def __init__(self, size: int, prob: float = 0.5, key: str = "pool"):
        if size < 0 or not 0 <= prob <= 1:
            raise ValueError(f"pool needs size >= 0 and 0 <= prob <= 1, got {size}, {prob}")
        self.size, self.prob, self.key = size, prob, key

    def __call__(self, ctx, fake: torch.Tensor) -> torch.Tensor:
        fake = fake.detach()
        if self.size == 0:
            return fake
        state = ctx.state_of(self.key)
        stored = state.get("images")
        out = []
        for image in fake:
            image = image.unsqueeze(0)
            count = 0 if stored is None else stored.shape[0]
            if count < self.size:
                stored = image.clone() if stored is None else torch.cat([stored, image.clone()])
                out.append(image)
            elif torch.rand((), generator=ctx.generator).item() < self.prob:
                index = int(torch.randint(count, (), generator=ctx.generator))
                out.append(stored[index:index + 1].clone())
                stored[index] = image[0]
            else:
                out.append(image)
        state["images"] = stored
        return torch.cat(out)

    def meta(self, ctx, fake: torch.Tensor) -> torch.Tensor:
        return fake.detach()

    def __repr__(self) -> str:
        return f"image_pool[{self.size}]"
