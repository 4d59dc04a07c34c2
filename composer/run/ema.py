"""Exponential moving averages of module weights (`train.ema: {module: decay}`), a Runner hook.

The copies are made from the freshly built (and fixed-weight loaded) modules and never train.
After each phase's optimizer step, the copy of every module that phase trained moves towards
its new weights, `ema <- decay * ema + (1 - decay) * w`, and takes its buffers as they are.
For generation a copy comes with standing statistics (composer/run/standing.py): its batch-norm
statistics re-estimated for its own weights, at most once per training step.
"""
from __future__ import annotations

import copy

import torch

from composer.run import standing


class EMA:
    """The EMA copies of the modules in `decays` (name -> decay) of `raw`; `copies` is name ->
    copy (saved with checkpoints), `standing` name -> (step, its standing-statistics copy)."""

    def __init__(self, raw: dict, decays: dict):
        self.decays = decays
        self.copies = {m: copy.deepcopy(raw[m]).requires_grad_(False) for m in decays}
        self.standing: dict = {}

    @torch.no_grad()
    def after_phase(self, runner, phase: str, trained) -> None:
        """The hook: move the copies of the modules the phase `phase` just stepped."""
        for name in trained:
            if name not in self.copies:
                continue
            decay = float(self.decays[name])
            source = runner.accelerator.unwrap_model(runner.modules[name])
            for p_ema, p in zip(self.copies[name].parameters(), source.parameters()):
                p_ema.lerp_(p.detach(), 1 - decay)
            for b_ema, b in zip(self.copies[name].buffers(), source.buffers()):
                b_ema.copy_(b)

    def for_generation(self, runner, name: str) -> torch.nn.Module:
        """The EMA copy of `name` with batch-norm statistics estimated for its weights at this step
        (the copy itself when it has no batch norm or `train.standing_stats` is 0)."""
        batches, ema = runner.spec.train.standing_stats, self.copies[name]
        if not batches or not standing.batch_norms(ema):
            return ema
        step, estimate = self.standing.get(name, (None, None))
        if step != runner.step_count:
            self.standing[name] = (runner.step_count, ema)   # what the estimate's own forward sees
            self.standing[name] = (runner.step_count, standing.estimate(runner, name, batches, into=estimate))
        return self.standing[name][1]
