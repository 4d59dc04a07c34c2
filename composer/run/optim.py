"""Optimizers and learning-rate schedules named in YAML (plain dict registries)."""
from __future__ import annotations

import math

import torch

from composer.registry import Registry

OPTIMIZERS = Registry("optimizer type", {
    "adam": torch.optim.Adam,
    "adamw": torch.optim.AdamW,
    "sgd": torch.optim.SGD,
    "rmsprop": torch.optim.RMSprop,
}, supplied=("params", "lr"), examples={
    "adamw": "{params: [G], type: adamw, lr: 1.0e-3, weight_decay: 0.01}",
    "sgd": "{params: [G], type: sgd, lr: 0.01, momentum: 0.9}",
    "rmsprop": "{params: [D], type: rmsprop, lr: 5.0e-5}",
})


def constant(step: int, *, total: int) -> float:
    """The learning rate as given, at every step.

    Example: `lr_schedule: {type: constant}`
    """
    return 1.0


def linear_decay(step: int, *, total: int, start: int | None = None) -> float:
    """Constant until `start`, then linear to 0 at `total` (CycleGAN's n_epochs + n_epochs_decay)."""
    start = total // 2 if start is None else start
    return 1.0 if step < start else max(0.0, 1.0 - (step - start) / max(1, total - start))


def cosine(step: int, *, total: int, warmup: int = 0, floor: float = 0.0) -> float:
    """Linear warm-up over `warmup` steps, then half a cosine from 1 down to `floor` at `total`
    (Loshchilov & Hutter 2017, without restarts)."""
    if step < warmup:
        return (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress))


def step_decay(step: int, *, total: int, every: int, gamma: float = 0.1) -> float:
    """Multiplied by `gamma` every `every` steps.

    Example: `lr_schedule: {type: step, every: 1000, gamma: 0.5}`
    """
    return gamma ** (step // every)


LR_SCHEDULES = Registry("lr schedule", {
    "constant": constant,
    "linear_decay": linear_decay,
    "cosine": cosine,
    "step": step_decay,
}, supplied=("step", "total"))


class ScheduleFactor:
    """A LambdaLR factor `LR_SCHEDULES[kind](step, total=..., **options)` whose state is plain
    data (it is saved as JSON in checkpoints)."""

    def __init__(self, kind: str, total: int, options: dict):
        self.kind, self.total, self.options = kind, total, options

    def __call__(self, step: int) -> float:
        return LR_SCHEDULES[self.kind](step, total=self.total, **self.options)


def make_optimizer(opt, params):
    """The torch optimizer `opt` names, over `params`. Its type, arguments and LR schedule were
    checked when the graph was built (`composer.spec.values.check_optimizer`), so nothing here can fail on the spec."""
    args = {k: tuple(v) if isinstance(v, list) else v for k, v in opt.args.items()}
    return OPTIMIZERS[opt.type](params, lr=opt.lr, **args)


def make_lr_schedule(opt, optimizer, total: int):
    """`opt`'s LR schedule over `total` steps as a `LambdaLR` (checked at build time, as above)."""
    options = dict(opt.lr_schedule)
    kind = options.pop("type", "constant")
    return torch.optim.lr_scheduler.LambdaLR(optimizer, ScheduleFactor(kind, total, options))
