"""Callbacks: code the Trainer runs at named hook points. Its own behaviours (progress and
metrics, trackers, sample grids, checkpoints, the final evaluation, plots, the final weights) are
default callbacks on the same hooks; a user adds callbacks or replaces a default.

Hook points, in the order a run meets them (every hook runs on every process, in the order of
the callback list; check `trainer.main` for rank 0):

| hook | when | arguments |
|---|---|---|
| `on_run_start(trainer)` | `Trainer.run` begins: the folder is locked, a resume loaded, before the first step | |
| `on_step_end(trainer, step, logs)` | after every training step | `logs`: the step's loss terms (0-dim tensors) |
| `on_log(trainer, step, means)` | at a logging step (`train.log_every`), after metrics.jsonl got its line | `means`: each term's mean over the window (floats) |
| `on_sample(trainer, path)` | a sample grid was written (main process only) | `path`: the PNG |
| `on_checkpoint(trainer, folder)` | a checkpoint was written: periodic, on an interrupt, at the end | `folder`: RUN/checkpoints/step_N |
| `on_loop_end(trainer)` | the step loop ended: finished, interrupted or stopped by an error | |
| `on_eval(trainer, results)` | the final evaluation is done (and eval.json written) | `results`: step, seconds, metrics |
| `on_run_end(trainer, results)` | a finished run, after the final checkpoint | `results`: filled by the callbacks before (eval) |
| `on_close(trainer)` | last: the run finished, was interrupted or stopped on a non-finite loss | |

Who fires what: the Trainer fires `on_run_start`, `on_step_end`, `on_checkpoint` (it writes the
checkpoint on an interrupt and at the end itself: resume needs them), `on_loop_end`,
`on_run_end` and `on_close`; the default callbacks fire `on_log` (`progress`), `on_sample`
(`samples`) and `on_eval` (`eval`).

The default callbacks, in their order (composer/run/default_callbacks.py; `composer list
callbacks`): `trackers`, `progress` (the bar or log lines, metrics.jsonl), `weights`
(weights.safetensors), `samples` (RUN/samples/), `checkpoints` (periodic checkpoints, pruning to
`train.keep_checkpoints`), `eval` (eval.json), `plots` (loss.png). Then come the callbacks the
graph names (`train.callbacks: [name, ...]`, registered by plugins: `r.callbacks.add(name,
Class)`, made with no arguments), then those given to `api.train(..., callbacks=[...])`.

Replacing a default: a callback whose `name` is a default's takes its place (and its position);
one that does nothing removes it (`class NoPlots(Callback): name = "plots"`). Callbacks without a
name (the default `None`) are only added.

Callbacks written for the earlier interface keep working: `on_step(trainer, step, logs)` is
called at `on_step_end` and `on_end(trainer, results)` at `on_run_end`; an object that is not a
`Callback` is called as before (its `on_step`, `on_checkpoint`, `on_sample`, `on_end`).
"""
from __future__ import annotations

from pathlib import Path

HOOKS = ("on_run_start", "on_step_end", "on_log", "on_sample", "on_checkpoint", "on_loop_end", "on_eval",
         "on_run_end", "on_close")


class Callback:
    """User code run by the Trainer: subclass and override the hooks you need (the table in this
    module's docstring). `name`: the role it fills; a default callback of the same name is
    replaced by it."""

    name: str | None = None

    def on_run_start(self, trainer) -> None:
        """`Trainer.run` begins, before the first step."""

    def on_step_end(self, trainer, step: int, logs: dict) -> None:
        """After every training step (calls `on_step`, the earlier name)."""
        self.on_step(trainer, step, logs)

    def on_log(self, trainer, step: int, means: dict) -> None:
        """At a logging step: the loss terms' window means."""

    def on_sample(self, trainer, path: Path) -> None:
        """After a sample grid was written (main process)."""

    def on_checkpoint(self, trainer, folder: Path) -> None:
        """After a checkpoint folder was written."""

    def on_loop_end(self, trainer) -> None:
        """The step loop ended (finished, interrupted or stopped by an error)."""

    def on_eval(self, trainer, results: dict) -> None:
        """After the final evaluation."""

    def on_run_end(self, trainer, results: dict) -> None:
        """A finished run, after the final checkpoint and evaluation (calls `on_end`, the
        earlier name)."""
        self.on_end(trainer, results)

    def on_close(self, trainer) -> None:
        """Last: the run finished, was interrupted or stopped on a non-finite loss."""

    def on_step(self, trainer, step: int, logs: dict) -> None:
        """The earlier name of `on_step_end`."""

    def on_end(self, trainer, results: dict) -> None:
        """The earlier name of `on_run_end`."""


class Adapted(Callback):
    """An object that is not a Callback, called as the Trainer called callbacks before the hook
    points: its on_step, on_checkpoint, on_sample and on_end."""

    def __init__(self, target):
        self.target = target

    def on_step_end(self, trainer, step, logs):
        self.target.on_step(trainer, step, logs)

    def on_checkpoint(self, trainer, folder):
        self.target.on_checkpoint(trainer, folder)

    def on_sample(self, trainer, path):
        self.target.on_sample(trainer, path)

    def on_run_end(self, trainer, results):
        self.target.on_end(trainer, results)


def combine(defaults: list, added: list) -> list:
    """The callback list: the defaults, then `added` in order; an added callback whose `name` is
    already in the list takes that entry's place."""
    out = list(defaults)
    for callback in added:
        callback = callback if isinstance(callback, Callback) else Adapted(callback)
        at = next((i for i, c in enumerate(out) if callback.name is not None and c.name == callback.name), None)
        if at is None:
            out.append(callback)
        else:
            out[at] = callback
    return out
