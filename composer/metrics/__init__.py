"""Evaluation metrics: `metric(samples, table, **options) -> dict[str, float]`, one line each."""
from composer.metrics.digits_quality import digit_quality
from composer.metrics.mixture import mixture

METRICS = {
    "mixture": mixture,
    "digits": digit_quality,
}

__all__ = ["METRICS"]
