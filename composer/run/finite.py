"""Finiteness: a phase's loss before its optimizer step, and the whole training state before a
checkpoint is written, so that weights are never moved by a NaN and the last checkpoint is
always a good one."""
from __future__ import annotations

import math

import torch

from composer.errors import ComposerError


class NonFiniteLoss(ComposerError):
    """A loss term became NaN or infinite; raised before the optimizer step, so weights are intact."""


def check_loss(runner, name: str, phase, loss: torch.Tensor, logs: dict) -> bool:
    """Stop before the optimizer step when the phase's loss is not finite: one host read per
    phase (the ranks agree on it, so none waits in a backward the others skipped); the terms
    are looked at only then, to name the culprits. In fp16, an overflow the phase's scale
    caused skips the step instead (False)."""
    accelerator = runner.accelerator
    if accelerator.num_processes == 1:
        if math.isfinite(loss.item()):   # one read, no tensor op: the step's hot path
            return True
    else:
        finite = torch.isfinite(loss.detach()).float()
        if bool(accelerator.reduce(finite, reduction="sum") / accelerator.num_processes == 1):
            return True
    if runner.precision.overflowed(name):
        return False
    bad = {t: float(logs[t]) for t in phase.terms if t in logs and not torch.isfinite(logs[t])}
    terms = ", ".join(f"{t}={v}" for t, v in bad.items()) or "the weighted sum (here or on another process)"
    raise NonFiniteLoss(f"non-finite loss in phase {name} at step {runner.step_count}: {terms}")


def check_state(runner) -> None:
    """Weights, EMA copies and optimizer moments are finite; NonFiniteLoss names the first bad
    tensor."""
    step = runner.step_count
    for name, module in list(runner.raw.items()) + [(f"ema.{n}", m) for n, m in runner.ema.items()]:
        for key, value in module.state_dict().items():
            if value.is_floating_point() and not bool(torch.isfinite(value).all()):
                raise NonFiniteLoss(f"module {name}: {key} is not finite at step {step}")
    for opt_name, optimizer in runner.optimizers.items():
        for state in optimizer.state.values():
            for key, value in state.items():
                if torch.is_tensor(value) and value.is_floating_point() and not bool(torch.isfinite(value).all()):
                    raise NonFiniteLoss(f"optimizer {opt_name}: its {key} state is not finite at step "
                                        f"{step} (the learning rate may be too high)")
