"""Measures for unpaired image-to-image translation (CycleGAN, Zhu et al. 2017).

`label_preservation` follows the FCN-score idea of pix2pix / CycleGAN (Isola et al. 2017 §4.2;
Zhu et al. 2017 §5.1.1): a classifier trained on real images of the *target* domain labels the
translated images; the score is how often it recovers the label of the source image.
`cycle_l1` is the cycle-consistency error ‖x − F(G(x))‖₁ averaged over pixels.
"""
from __future__ import annotations

import torch

from composer.errors import ComposerError


def label_preservation(translated: torch.Tensor, labels: torch.Tensor, classifier) -> float:
    """Share of `translated` images whose predicted class (`classifier.predict`) equals `labels`."""
    if len(translated) != len(labels) or len(labels) == 0:
        raise ComposerError(
            f"label_preservation: {len(translated)} images and {len(labels)} labels; expected equal, > 0"
        )
    predicted = classifier.predict(translated).cpu()
    return float((predicted == labels.cpu()).double().mean())


def cycle_l1(x: torch.Tensor, reconstruction: torch.Tensor) -> float:
    """Mean absolute difference between images and their round-trip reconstructions."""
    if x.shape != reconstruction.shape:
        raise ComposerError(f"cycle_l1: shapes differ, {tuple(x.shape)} vs {tuple(reconstruction.shape)}")
    return float((x.detach().cpu().double() - reconstruction.detach().cpu().double()).abs().mean())
