"""Evaluation metrics, one line each: `metric(samples, table, **options) -> dict[str, float]` on
generated samples, or `metric(*, runner, **options)` when the metric runs the flow itself."""
from composer.registry import Registry
from composer.metrics.accuracy import accuracy
from composer.metrics.conditional import class_agreement
from composer.metrics.digits_quality import digit_quality
from composer.metrics.inception import inception
from composer.metrics.mixture import mixture
from composer.metrics.paired import paired
from composer.metrics.translation import translation

METRICS = Registry("metric", {
    "mixture": mixture,
    "digits": digit_quality,
    "translation": translation,
    "paired": paired,
    "class_agreement": class_agreement,
    "inception": inception,
    "accuracy": accuracy,
}, supplied=("samples", "table", "runner"))

REGISTRIES = {"metrics": METRICS}   # what this package declares (composer.registry.get)

__all__ = ["METRICS"]
