"""Cross-entropy of class logits against labels: the auxiliary classifier of AC-GAN (Odena et al.
2017), InfoGAN's categorical code (Chen et al. 2016), or a plain classifier in a graph.

Which modules it moves is the scheduler's business: AC-GAN's `cls_real` (logits of the critic's
class head on real images) moves only the critic; `cls_fake` (on generated images, labels = the
requested classes) moves the critic and the generator unless the objective's `trains:` narrows it.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from composer.graph.nodes import Loss, Node, Tensor
from composer.ranges import Fraction


class CrossEntropy:
    def __init__(self, label_smoothing: float):
        self.label_smoothing = label_smoothing

    def __call__(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(logits.float(), labels, reduction="none", label_smoothing=self.label_smoothing)


def cross_entropy(name, /, *, logits: Tensor, labels: Tensor, label_smoothing: Fraction = 0.0) -> list[Node]:
    """One term, CE(logits [B, K], labels [B] int64 (or [B, K] probabilities)) per sample, moving
    every trainable module upstream of the logits (or only the objective's `trains:`)."""
    if not 0 <= label_smoothing < 1:
        raise ValueError(f"label_smoothing must be in [0, 1), got {label_smoothing!r}")
    return [Node(f"{name}.loss", "term", "cross_entropy", (logits, labels),
                 op=Loss(CrossEntropy(label_smoothing), "cross_entropy"))]
