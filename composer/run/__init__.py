"""The run layer: the Runner that interprets a compiled Plan on Accelerate, and the Trainer around it."""
from composer.run.optim import LR_SCHEDULES, OPTIMIZERS

REGISTRIES = {"optimizers": OPTIMIZERS, "lr_schedules": LR_SCHEDULES}   # name tables the spec checks against
