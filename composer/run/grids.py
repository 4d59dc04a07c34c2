"""Sample pictures: a grid of generated images, or a scatter of 2-D points over the data."""
from __future__ import annotations

from pathlib import Path

import torch


def save_samples(runner, path: Path) -> Path | None:
    """A grid of `sample.n` samples; nothing when the spec names nothing to generate."""
    from composer.run.generate import generate

    if not runner.spec.sample.output and not runner.spec.sample.objective:
        return None
    return save_grid_or_scatter(runner, generate(runner, runner.spec.sample.n), path)


def save_grid_or_scatter(runner, samples: torch.Tensor, path: Path) -> Path:
    """A PNG: an image grid (one sample per row for `[N, k, C, H, W]`, several outputs of each
    sample side by side), or for 2D points a scatter over the held-out data."""
    from composer.data.images import save_image_grid, save_scatter

    from composer.data.inputs import reference_table

    spec = runner.spec
    path.parent.mkdir(parents=True, exist_ok=True)
    if samples.dim() == 2:
        item = next((i for i in spec.inputs if i.kind == "data"), None)
        reference = reference_table(spec, item).x[:2000] if item else None
        return save_scatter(samples, path, reference=reference)
    if samples.dim() == 5:
        return save_image_grid(samples.flatten(0, 1).clamp(-1, 1), path, nrow=samples.shape[1])
    return save_image_grid(samples.clamp(-1, 1), path, nrow=spec.sample.nrow)
