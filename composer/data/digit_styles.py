"""`digit_styles`: a built-in unpaired two-domain task for CycleGAN (Zhu et al. 2017).

Domain A holds plain digits, domain B digits of the other half of the set drawn in another
style. The 1,797 digits are cut into two disjoint class-stratified halves by a seeded
permutation: A draws only from half 0 and B only from half 1, so no image of A has its styled
counterpart in B. Each half is then split 80/20 into train and test. Labels are kept for
evaluation (label preservation), never for training the translation.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from composer.data.checks import check_choice, check_count
from composer.data.digits import NUM_CLASSES, digit_images
from composer.data.splits import split_indices, stratified_split
from composer.data.table import Table
from composer.ranges import Count

DOMAINS = ("A", "B")
TEST_FRACTION = 0.2


def thicken(x: torch.Tensor) -> torch.Tensor:
    """Thicker strokes: a 3×3 max-pool, stride 1, padding 1 (bright ink spreads one pixel)."""
    return F.max_pool2d(x, kernel_size=3, stride=1, padding=1)


def invert(x: torch.Tensor) -> torch.Tensor:
    """Dark ink on a bright background: x ↦ −x."""
    return -x


STYLES = {"thick": thicken, "inverted": invert}


def unpaired_halves(y: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Two disjoint, class-stratified halves of the indices of `y` (sorted index arrays)."""
    halves_seed, _ = np.random.SeedSequence(seed).spawn(2)
    return stratified_split(y, 0.5, halves_seed)


def domain_indices(y: np.ndarray, domain: str, split: str, seed: int) -> np.ndarray:
    """Indices into the full digit set of `split` of `domain`: a split inside that domain's half."""
    half = unpaired_halves(y, seed)[DOMAINS.index(domain)]
    _, split_seed = np.random.SeedSequence(seed).spawn(2)
    return half[split_indices("digit_styles", y[half], split, TEST_FRACTION, split_seed)]


def digit_styles(
    *, domain: str = "A", style: str = "thick", split: str = "train", size: int = 16, seed: Count = 0
) -> Table:
    """Domain `domain` ("A" plain, "B" in `style`) of the unpaired digits task at `size`².

    The style is applied in [-1, 1] after resizing to `size`: "thick" (3×3 max-pool) or
    "inverted" (x ↦ −x). `split` is "train", "test" or "all" (the domain's whole half).
    """
    return _drawn(domain, domain, style, split, size, seed)


def counterparts(
    *, domain: str = "A", style: str = "thick", split: str = "train", size: int = 16, seed: Count = 0
) -> Table:
    """The digits of `digit_styles(domain=...)`, row for row, drawn as the *other* domain draws
    them: the exact translation, which the task never shows a model. Translation metrics score it
    as the ceiling their judge allows (`metrics.translation`)."""
    check_choice("digit_styles", "domain", domain, DOMAINS)
    return _drawn(domain, DOMAINS[1 - DOMAINS.index(domain)], style, split, size, seed)


def _drawn(domain: str, look: str, style: str, split: str, size: int, seed: int) -> Table:
    """The `split` digits of `domain`'s half, drawn as domain `look` draws them."""
    check_choice("digit_styles", "domain", domain, DOMAINS)
    check_choice("digit_styles", "style", style, tuple(STYLES))
    check_count("digit_styles", "size", size)
    x, y = digit_images(size)
    keep = torch.from_numpy(domain_indices(y.numpy(), domain, split, seed))
    x = STYLES[style](x[keep]) if look == "B" else x[keep]
    info = {"num_classes": NUM_CLASSES, "domain": look, "style": style}
    return Table(x=x.contiguous(), y=y[keep], kind="image", info=info)
