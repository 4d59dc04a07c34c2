"""Differentiable augmentation of image batches, the flow op `diffaugment` (DiffAugment, Zhao et al.
NeurIPS 2020: "Differentiable Augmentation for Data-Efficient GAN Training").

A GAN's critic trained for hundreds of epochs on a small set (1,437 digits) memorises it; the
remedy of DiffAugment (and of ADA, Karras et al. 2020) is to show the critic only augmented
images, the real ones and the fakes alike, through transformations that gradients pass to G:

    flow:
      fake: G(z)
      real_seen: diffaugment(real)
      fake_seen: diffaugment(fake)
    objectives:
      gan: {recipe: adversarial, critic: D, real: real_seen, fake: fake_seen, penalty: r1}

The policies are DiffAugment's `color,translation,cutout`, each per sample:
- `brightness`: x + u, u ~ U(-b, b)   (DiffAugment: b = 0.5; its saturation is a no-op on grey)
- `contrast`:   mean + (x - mean) * s, s ~ U(1 - c, 1 + c) about the image mean (c = 0.5)
- `translation`: shift by whole pixels, up to round(translation * size) each way, zero-filled
- `cutout`:     a zeroed square of side round(cutout * size) at a uniform random position
(0 turns a policy off.) Draws come from the run's generator, as `reparameterize`'s do, so runs
are reproducible. Written here rather than taken from kornia: kornia's augmentations draw from
torch's global RNG, not from the generator the run hands each op.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from composer.graph.nodes import FlowOp


class DiffAugment(FlowOp):
    """DiffAugment (Zhao et al. 2020) of images [B, C, H, W]: random brightness, contrast,
    translation and cutout per sample, differentiable in the images; feed both the critic's real
    and fake inputs through it."""

    name = "diffaugment"

    def __init__(self, *, brightness: float = 0.5, contrast: float = 0.5, translation: float = 0.125,
                 cutout: float = 0.5):
        for key, value in (("brightness", brightness), ("contrast", contrast)):
            if not isinstance(value, (int, float)) or value < 0:
                raise ValueError(f"{key} must be a number >= 0, got {value!r}")
        for key, value in (("translation", translation), ("cutout", cutout)):
            if not isinstance(value, (int, float)) or not 0 <= value <= 1:
                raise ValueError(f"{key} must be a fraction of the image size in [0, 1], got {value!r}")
        super().__init__(brightness=brightness, contrast=contrast, translation=translation, cutout=cutout)

    def __call__(self, ctx, x):
        _check_images(x)
        a, g = self.args, ctx.generator
        x = _brightness(x, a["brightness"], g) if a["brightness"] else x
        x = _contrast(x, a["contrast"], g) if a["contrast"] else x
        x = _translate(x, round(a["translation"] * x.shape[-2]), round(a["translation"] * x.shape[-1]), g)
        return _cutout(x, round(a["cutout"] * x.shape[-2]), round(a["cutout"] * x.shape[-1]), g)

    def meta(self, ctx, x):
        _check_images(x)
        return torch.empty_like(x)


def _check_images(x: torch.Tensor) -> None:
    if x.dim() != 4:
        raise ValueError(f"diffaugment expects images [B, C, H, W], got shape {list(x.shape)}")


def _uniform(n: int, low: float, high: float, generator, like: torch.Tensor) -> torch.Tensor:
    """n draws of U(low, high), shaped [n, 1, 1, 1] to broadcast over images."""
    u = torch.rand(n, generator=generator).to(like)
    return (low + (high - low) * u).reshape(n, 1, 1, 1)


def _brightness(x, b: float, generator):
    return x + _uniform(len(x), -b, b, generator, x)


def _contrast(x, c: float, generator):
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    return mean + (x - mean) * _uniform(len(x), 1 - c, 1 + c, generator, x)


def _offsets(n: int, low: int, high: int, generator, device) -> torch.Tensor:
    """n integers uniform in [low, high]."""
    return torch.randint(low, high + 1, (n,), generator=generator).to(device)


def _translate(x, dy: int, dx: int, generator):
    """Shift each image by integers in [-dy, dy] x [-dx, dx]; pixels shifted in are zero."""
    if dy == 0 and dx == 0:
        return x
    n, _, h, w = x.shape
    rows = torch.arange(h, device=x.device) + dy - _offsets(n, -dy, dy, generator, x.device)[:, None]
    cols = torch.arange(w, device=x.device) + dx - _offsets(n, -dx, dx, generator, x.device)[:, None]
    padded = F.pad(x, (dx, dx, dy, dy))
    batch = torch.arange(n, device=x.device)[:, None, None]
    return padded.permute(0, 2, 3, 1)[batch, rows[:, :, None], cols[:, None, :]].permute(0, 3, 1, 2)


def _cutout(x, sy: int, sx: int, generator):
    """Zero a sy x sx square per image, its top-left corner uniform so that it may hang over the
    border by up to half its side (as DiffAugment's centre lies anywhere in the image)."""
    if sy == 0 or sx == 0:
        return x
    n, _, h, w = x.shape
    top = _offsets(n, -(sy // 2), h - 1 - sy // 2, generator, x.device)[:, None]
    left = _offsets(n, -(sx // 2), w - 1 - sx // 2, generator, x.device)[:, None]
    r, c = torch.arange(h, device=x.device), torch.arange(w, device=x.device)
    inside_rows = (r >= top) & (r < top + sy)
    inside_cols = (c >= left) & (c < left + sx)
    keep = ~(inside_rows[:, :, None] & inside_cols[:, None, :])
    return x * keep[:, None].to(x.dtype)
