"""The training loop around Runner.step: lock, resume, signals, the steps, and the hook points
its callbacks run at (composer/run/callbacks.py). Logs, sample grids, checkpoints, the final
evaluation, plots and trackers are default callbacks (composer/run/default_callbacks.py); the
run folder's layout is composer/run/folder.py's RunFolder.
"""
from __future__ import annotations

import signal
import time
from pathlib import Path

import torch
import yaml

from composer.errors import ComposerError
from composer.run import checkpoint, ownership
from composer.run.callbacks import Callback
from composer.run.default_callbacks import callbacks_for
from composer.run.folder import RunFolder, with_data_paths
from composer.run.runner import NonFiniteLoss, Runner
from composer.spec.schema import OptimizerSpec, TrainSpec
from composer.text import flatten

__all__ = ["Callback", "Trainer", "spec_changes"]


class Trainer:
    """Trains a Runner in the run folder `out`; `callbacks` join the defaults (a callback named
    as a default replaces it). `progress` is the display `log` writes through (the `progress`
    callback sets it), `total` the last step of `run` and `started` its start time."""

    def __init__(self, runner: Runner, out: str | Path, resume: bool = False, quiet: bool = False,
                 callbacks=(), accept_changes: bool = False, overwrite: bool = False):
        self.runner, self.folder, self.quiet = runner, RunFolder(out), quiet
        self.out = self.folder.root
        self.callbacks = callbacks_for(runner.spec, callbacks)
        self.stop_signal, self.progress = None, None
        self.total, self.started = runner.spec.train.steps, time.time()
        self.main = runner.accelerator.is_main_process
        action, self.lock = ownership.claim(self.folder, runner.spec.name, self.main,
                                            runner.accelerator.wait_for_everyone, resume=resume,
                                            overwrite=overwrite, log=self.log)
        if resume:
            if checkpoint.latest(self.out) is None:
                raise ComposerError(f"--resume: {self.out} holds no checkpoint to resume from")
            self._resume(accept_changes)
            if action == "adopt" and self.main:
                ownership.adopt(self.folder, runner.spec.name, self.log)
        if self.main:
            sources = {m.name: checkpoint.weights_path(runner.spec, m) for m in runner.spec.modules if m.weights}
            self.folder.write_spec(runner.spec, sources)

    def _resume(self, accept_changes: bool) -> None:
        runner = self.runner
        changes = self._check_changes(accept_changes)
        existing = checkpoint.load_latest(runner, self.out)
        self.log(f"resumed from {existing} at step {runner.step_count}")
        if changes and self.main:
            self.folder.record_changes(runner.step_count, changes)
        if self.main:
            self.folder.truncate_metrics(runner.step_count)

    def _check_changes(self, accept: bool) -> list[str]:
        """A resume continues the same training: refuse a spec that changed anything that changes
        training, unless accepted (then the changes are recorded in RUN/changes.jsonl); what a
        resume cannot apply is refused by name even then (`FIXED`; an architecture that changed, when
        the checkpoint does not fit)."""
        saved = self.folder.spec
        if not saved.is_file():
            return []
        old, new = yaml.safe_load(saved.read_text()) or {}, with_data_paths(self.runner.spec)
        changes = spec_changes(old, new)
        if not changes:
            return []
        shown = "; ".join(changes[:6]) + (f"; and {len(changes) - 6} more" if len(changes) > 6 else "")
        if not accept:
            raise ComposerError(f"--resume: the spec differs from the run's in what changes training: {shown}. "
                                "Start a new run, or pass --accept-changes to continue with them (recorded in "
                                "the run folder)")
        refused = refused_changes(old, new)
        if refused:
            raise ComposerError("--accept-changes: a resume cannot apply " + "; ".join(refused)
                                + ". Start a new run for these")
        self.log(f"resuming with changes: {shown}")
        return changes

    def log(self, text: str) -> None:
        if self.main and not self.quiet:
            if self.progress is not None:     # above the bar, while there is one
                self.progress.write(text)
            else:
                print(text, flush=True)

    def call(self, hook: str, *args) -> None:
        """Run one hook point on every callback, in order."""
        for callback in self.callbacks:
            getattr(callback, hook)(self, *args)

    def run(self, steps: int | None = None) -> dict:
        runner = self.runner
        self.total = steps if steps is not None else runner.spec.train.steps
        self.started = time.time()
        self.call("on_run_start")
        previous, stopped = _defer_signals(self), False
        try:
            while runner.step_count < self.total:
                if self._stop_requested():            # arrived during the last step: it is complete
                    raise KeyboardInterrupt
                logs = runner.step()
                self.call("on_step_end", runner.step_count, logs)
        except KeyboardInterrupt:
            folder, stopped = self.checkpoint(), True
            self.log(f"interrupted at step {runner.step_count}: saved {folder}; continue with --resume")
            raise
        except NonFiniteLoss:
            stopped = True
            self.log(f"stopped: the last good checkpoint is {checkpoint.latest(self.out)}")
            raise
        finally:
            self.call("on_loop_end")
            for signum, handler in previous.items():
                signal.signal(signum, handler)
            if stopped:
                self.release()
        try:
            return self.finish(time.time() - self.started)
        finally:
            self.release()

    def _stop_requested(self) -> bool:
        """A signal arrived (on any rank: with several processes the ranks agree, so all stop
        after the same step and their checkpoint is consistent)."""
        accelerator = self.runner.accelerator
        if accelerator.num_processes == 1:
            return self.stop_signal is not None
        flag = torch.tensor([float(self.stop_signal is not None)], device=accelerator.device)
        return bool(accelerator.reduce(flag, reduction="sum") > 0)

    def release(self) -> None:
        """`on_close`, then unlock the run folder (done by `run`; the process ending does it too)."""
        self.call("on_close")
        if self.lock is not None:
            self.lock.close()
            self.lock = None

    def finish(self, seconds: float) -> dict:
        """The final checkpoint, then `on_run_end` (weights, final grid, eval, plots): the results."""
        self.checkpoint()
        results = {"step": self.runner.step_count, "seconds": round(seconds, 1)}
        self.call("on_run_end", results)
        return results

    def checkpoint(self) -> Path:
        """Write a checkpoint of the current step, then `on_checkpoint`."""
        runner = self.runner
        runner.check_state()
        folder = checkpoint.save(runner, self.folder.checkpoint(runner.step_count))
        self.call("on_checkpoint", folder)
        return folder


UNTRAINED = (("name",), ("train", "log_every"), ("train", "sample_every"), ("train", "checkpoint_every"),
             ("train", "keep_checkpoints"), ("train", "log_with"), ("train", "threads"), ("train", "compile"),
             ("train", "channels_last"), ("train", "standing_stats"), ("train", "callbacks"), ("sample",),
             ("eval",))
"""Keys a resume may change freely: they do not change what is trained (threads and the fast
modes change only the rounding: a resume that switches them is not bitwise equal to a run that
never did)."""


FIXED = {("train", "seed"): (TrainSpec.seed, "the checkpoint's random streams continue; the seed only starts them"),
         ("optimizers", "*", "type"): (OptimizerSpec.type, "the checkpoint's optimizer state is of its optimizer type"),
         ("optimizers", "*", "params"): (None, "the checkpoint's optimizer state is of its parameters")}
"""Keys a resume cannot change, with their default and why: `--accept-changes` refuses them by
name (a changed architecture is refused when the checkpoint is loaded: it does not fit)."""


def refused_changes(old: dict, new: dict) -> list[str]:
    """`key.path: old -> new (why)` for each change of `FIXED` between two specs' data (an
    optimizer added or removed is left to the checkpoint's own check)."""
    a, b = flatten(old), flatten(new)
    out = []
    for key, (default, why) in FIXED.items():
        for path in sorted({p for p in set(a) | set(b) if len(p) == len(key)
                            and all(k in ("*", q) for k, q in zip(key, p))}, key=lambda p: tuple(map(str, p))):
            owner = path[:-1]
            if not any(q[:len(owner)] == owner for q in a) or not any(q[:len(owner)] == owner for q in b):
                continue
            before, after = a.get(path, default), b.get(path, default)
            if before != after:
                out.append(f"{'.'.join(map(str, path))}: {before!r} -> {after!r} ({why})")
    return out


def spec_changes(old: dict, new: dict) -> list[str]:
    """`key.path: old -> new` for every difference that changes training (a module's `weights:` and
    `pretrained:` paths are left out: the run folder's spec.yaml names its own copy or the absolute
    path, the graph file the path as written)."""
    a, b = flatten(old), flatten(new)
    out = []
    for path in sorted(set(a) | set(b), key=lambda p: tuple(map(str, p))):
        if (any(path[:len(u)] == u for u in UNTRAINED) or path[-1:] in (("weights",), ("pretrained",))
                or a.get(path) == b.get(path)):
            continue
        out.append(f"{'.'.join(map(str, path))}: {a.get(path, '(none)')!r} -> {b.get(path, '(none)')!r}")
    return out


def _defer_signals(trainer: Trainer) -> dict:
    """SIGINT and SIGTERM only set `trainer.stop_signal`; the loop stops between steps, so the
    checkpoint it writes never holds a half-finished step (some optimizers stepped, RNG and data
    streams advanced). Returns the previous handlers (none outside the main thread)."""
    def stop(signum, frame):
        trainer.stop_signal = signum

    previous = {}
    for signum in (signal.SIGINT, signal.SIGTERM):
        try:
            previous[signum] = signal.signal(signum, stop)
        except ValueError:        # not the main thread: signals stay as they are
            break
    return previous


