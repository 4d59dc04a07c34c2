"""Weight schedules: a loss term's weight as a function of the training step.

    weight: {type: linear, start: 0.0, end: 1.0, steps: 2000}          KL warm-up (Bowman et al. 2016)
    weight: {type: cyclical, period: 1000, ramp: 0.5}                   cyclical annealing (Fu et al. 2019)

A schedule mapping replaces a number wherever an objective or a term takes `weight`.
"""
from __future__ import annotations

import math
from typing import Annotated

from composer.ranges import Count, Range, Size, Weight
from composer.registry import Registry

Ramp = Annotated[float, Range(0, 1, open_low=True, what="a fraction in (0, 1]")]


def constant(step: int, *, value: Weight = 1.0) -> float:
    """The same factor at every step.

    Example: `weight: {type: constant, value: 0.5}`
    """
    return value


def linear(step: int, *, steps: Size, start: Weight = 0.0, end: Weight = 1.0, delay: Count = 0) -> float:
    """`start` until `delay`, then linearly to `end` over `steps` steps, then `end` (warm-up)."""
    progress = min(1.0, max(0.0, (step - delay) / max(1, steps)))
    return start + (end - start) * progress


def cosine(step: int, *, steps: Size, start: Weight = 0.0, end: Weight = 1.0, delay: Count = 0) -> float:
    """From `start` to `end` along half a cosine over `steps` steps after `delay`."""
    progress = min(1.0, max(0.0, (step - delay) / max(1, steps)))
    return end + (start - end) * 0.5 * (1 + math.cos(math.pi * progress))


def cyclical(step: int, *, period: Size, ramp: Ramp = 0.5, start: Weight = 0.0, end: Weight = 1.0) -> float:
    """Repeated warm-ups: within each `period`, linear from `start` to `end` over its first `ramp`
    fraction, then `end` (cyclical KL annealing, Fu et al. 2019)."""
    phase = (step % period) / (period * ramp)
    return start + (end - start) * min(1.0, phase)


WEIGHT_SCHEDULES = Registry("weight schedule", {
    "constant": constant,
    "linear": linear,
    "cosine": cosine,
    "cyclical": cyclical,
}, supplied=("step",))


class WeightSchedule:
    """A term's weight factor `WEIGHT_SCHEDULES[kind](step, **options)`; plain data, printable."""

    def __init__(self, kind: str, options: dict):
        self.kind, self.options = kind, dict(options)
        self(0)   # bad options fail here, at build time

    def __call__(self, step: int) -> float:
        return float(WEIGHT_SCHEDULES[self.kind](step, **self.options))

    def __repr__(self) -> str:
        shown = ", ".join(f"{k}={v}" for k, v in self.options.items())
        return f"{self.kind}({shown})"

