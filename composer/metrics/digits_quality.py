"""The `digits` metric: how good and how diverse generated digit images are, judged by the
project's digits classifier (`digits_classifier.py`).

- `class_coverage`: classes that receive at least `min_share` of the argmax predictions
  (a mode-collapse count, as in the class-count checks of Salimans et al. 2016 and Che et al. 2017);
- `confident_fraction`: share of samples whose top softmax probability is ≥ `confidence`;
- `class_entropy`: entropy (nats) of the histogram of predicted classes (log 10 ≈ 2.303 is the
  most even spread);
- `frechet_distance`: Fréchet distance (Heusel et al. 2017) between classifier features of the
  samples and of the real digits test split, at the samples' resolution;
- `frechet_ratio`: the Fréchet distance of the samples to the real *train* digits over that of
  real digits drawn at random (`frechet_baseline`), on blocks of as many rows as the held-out
  split has (`frechet.frechet_ratio_iid`): ≈ 1 is as close as fresh real digits drawn at random;
- `class_share_0` … `class_share_9`, `class_share_min`, `class_share_max`: the histogram of
  predicted classes (shares of the samples).
"""
from __future__ import annotations

import math

import torch

from composer.data.digits import digits
from composer.data.table import Table
from composer.errors import ComposerError
from composer.metrics.digits_classifier import classifier_for
from composer.metrics.frechet import frechet_distance, frechet_ratio_iid


def class_entropy(predicted: torch.Tensor, num_classes: int) -> float:
    """H(p̂) = −Σ_c p̂_c log p̂_c of the predicted-class histogram, 0 · log 0 = 0."""
    shares = torch.bincount(predicted, minlength=num_classes).double() / len(predicted)
    shares = shares[shares > 0]
    return float(-(shares * shares.log()).sum()) + 0.0     # + 0.0: one class gives 0.0, not -0.0


def reference_digits(table: Table, size: int, split: str = "test") -> Table:
    """The real `split` matching `table`'s split settings (defaults when it has none)."""
    return digits(
        split=split,
        size=size,
        test_fraction=table.info.get("test_fraction", 0.2),
        seed=table.info.get("seed", 0),
    )


def digit_quality(
    samples: torch.Tensor, table: Table, *, min_share: float = 0.02, confidence: float = 0.9
) -> dict[str, float]:
    """Class coverage, confidence, class entropy and Fréchet distance of generated digits
    `[N, 1 or 3, H, W]` in [-1, 1]; `table` is the training source (used for its split settings)."""
    if samples.dim() != 4 or samples.shape[0] < 2 or samples.shape[-1] != samples.shape[-2]:
        raise ComposerError(
            f"metric 'digits': expected square images [N >= 2, C, H, H], got {tuple(samples.shape)}"
        )
    classifier = classifier_for(samples)
    probabilities = classifier.probabilities(samples)
    num_classes = probabilities.shape[1]
    predicted = probabilities.argmax(dim=1)
    shares = torch.bincount(predicted, minlength=num_classes).double() / len(predicted)
    reference = reference_digits(table, samples.shape[-1])
    train = reference_digits(table, samples.shape[-1], "train")
    features, reference_features = classifier.features(samples), classifier.features(reference.x)
    m = min(len(samples), len(reference.x))
    ratio, baseline = frechet_ratio_iid(features, classifier.features(train.x), m)
    return {
        "class_coverage": int((shares >= min_share - 1e-12).sum()),
        "classes_total": num_classes,
        "confident_fraction": float((probabilities.max(dim=1).values >= confidence).double().mean()),
        "class_entropy": class_entropy(predicted, num_classes),
        "class_entropy_max": math.log(num_classes),
        "frechet_distance": frechet_distance(features, reference_features),
        "frechet_ratio": ratio,
        "frechet_baseline": baseline,
        "class_share_min": float(shares.min()),
        "class_share_max": float(shares.max()),
        **{f"class_share_{c}": float(shares[c]) for c in range(num_classes)},
    }
