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
    return torch.optim.lr_scheduler.LambdaLR(optimizer, schedule_factor(opt, total))


def schedule_factor(opt, total: int) -> ScheduleFactor:
    """The factor of `opt`'s LR schedule over `total` steps."""
    options = dict(opt.lr_schedule)
    kind = options.pop("type", "constant")
    return ScheduleFactor(kind, total, options)


def spec_hyperparameters(opt) -> dict:
    """Every hyperparameter of `opt`'s optimizer as the spec gives it, the type's defaults for the
    rest (lr, betas, weight_decay, eps, momentum, ...: the keys of a torch param group)."""
    return dict(make_optimizer(opt, [torch.zeros(1, requires_grad=True)]).defaults)


def apply_spec(opt, optimizer, scheduler, total: int) -> None:
    """After a checkpoint's optimizer and LR-schedule state is loaded: the spec's hyperparameters
    and LR schedule over `total` steps replace the checkpoint's, at the loaded step. The moments
    are kept; a resume whose spec changed nothing is left exactly as loaded (the same values
    computed the same way), one with accepted changes continues as if the spec had always said
    so from this step on (`--accept-changes`)."""
    values = spec_hyperparameters(opt)
    lr = values.pop("lr")
    groups = optimizer.param_groups
    for group in groups:
        group.update(values)
        group["initial_lr"] = lr
    scheduler.base_lrs = [lr] * len(groups)
    scheduler.lr_lambdas = [schedule_factor(opt, total) for _ in groups]
    lrs = [base * factor(scheduler.last_epoch) for factor, base in zip(scheduler.lr_lambdas, scheduler.base_lrs)]
    for group, value in zip(groups, lrs):   # as LambdaLR.get_lr computes it, so a fresh run's are equal
        group["lr"] = value
    scheduler._last_lr = lrs
