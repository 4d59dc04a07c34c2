"""The training loop around Runner.step: logs, sample grids, checkpoints, resume, interrupts.

A run folder holds everything needed to resume, sample and evaluate:
    spec.yaml  metrics.jsonl  samples/  checkpoints/step_N/  weights.safetensors  eval.json
"""
from __future__ import annotations

import json
import shutil
import signal
import time
from pathlib import Path

import torch
import yaml
from safetensors.torch import save_file

from composer.run import checkpoint
from composer.errors import ComposerError
from composer.run.progress import Progress, WindowMeans
from composer.run.runner import NonFiniteLoss, Runner
from composer.run.trackers import Trackers, scalars


def save_samples(runner: Runner, path: Path) -> Path | None:
    """A grid of `sample.n` samples; nothing when the spec names nothing to generate."""
    from composer.run.generate import generate

    if not runner.spec.sample.output and not runner.spec.sample.objective:
        return None
    return save_grid_or_scatter(runner, generate(runner, runner.spec.sample.n), path)


def save_grid_or_scatter(runner: Runner, samples: torch.Tensor, path: Path) -> Path:
    """A PNG: an image grid (one sample per row for `[N, k, C, H, W]`, several outputs of each
    sample side by side), or for 2D points a scatter over the held-out data."""
    from composer.data.images import save_image_grid, save_scatter

    from composer.data.inputs import reference_table

    spec = runner.spec
    path.parent.mkdir(parents=True, exist_ok=True)
    if samples.dim() == 2:
        item = next((i for i in spec.inputs if i.kind == "data"), None)
        reference = reference_table(spec, item).x[:2000] if item else None
        return save_scatter(samples, path, reference=reference)
    if samples.dim() == 5:
        return save_image_grid(samples.flatten(0, 1).clamp(-1, 1), path, nrow=samples.shape[1])
    return save_image_grid(samples.clamp(-1, 1), path, nrow=spec.sample.nrow)


class Callback:
    """User code run by the Trainer (subclass and override what you need; all run on every
    process: check `trainer.main` for rank 0). `logs` are the step's loss terms."""

    def on_step(self, trainer: "Trainer", step: int, logs: dict) -> None:
        """After every training step."""

    def on_checkpoint(self, trainer: "Trainer", folder: Path) -> None:
        """After a checkpoint folder was written."""

    def on_sample(self, trainer: "Trainer", path: Path) -> None:
        """After a sample grid was written (main process)."""

    def on_end(self, trainer: "Trainer", results: dict) -> None:
        """After the final checkpoint and evaluation."""


class Trainer:
    def __init__(self, runner: Runner, out: str | Path, resume: bool = False, quiet: bool = False,
                 callbacks=(), accept_changes: bool = False):
        self.runner, self.out, self.quiet = runner, Path(out), quiet
        self.callbacks = list(callbacks)
        self.stop_signal = None
        self.main = runner.accelerator.is_main_process
        self.progress, self.trackers = None, Trackers(runner.accelerator)
        self.lock = run_folder(self.out, self.main, runner.accelerator.wait_for_everyone)
        existing = checkpoint.latest(self.out)
        if resume:
            if existing is None:
                raise ComposerError(f"--resume: {self.out} holds no checkpoint to resume from")
            changes = self._check_changes(accept_changes)
            existing = checkpoint.load_latest(runner, self.out)
            self.log(f"resumed from {existing} at step {runner.step_count}")
            if changes and self.main:
                with open(self.out / "changes.jsonl", "a") as f:
                    f.write(json.dumps({"resumed_at": runner.step_count, "changes": changes}) + "\n")
            if self.main:
                _truncate_metrics(self.out / "metrics.jsonl", runner.step_count)
        elif existing is not None:
            raise ComposerError(f"{self.out} already holds checkpoints ({existing.name}); "
                                "pass --resume to continue it or choose another --out")
        if self.main:
            self.out.mkdir(parents=True, exist_ok=True)
            data = _copy_weights(runner.spec, self.out)
            (self.out / "spec.yaml").write_text(yaml.safe_dump(data, sort_keys=False))

    def _check_changes(self, accept: bool) -> list[str]:
        """A resume continues the same training: refuse a spec that changed anything that changes
        training, unless accepted (then the changes are recorded in RUN/changes.jsonl)."""
        saved = self.out / "spec.yaml"
        if not saved.is_file():
            return []
        changes = spec_changes(yaml.safe_load(saved.read_text()) or {}, self.runner.spec.data)
        if not changes:
            return []
        shown = "; ".join(changes[:6]) + (f"; and {len(changes) - 6} more" if len(changes) > 6 else "")
        if not accept:
            raise ComposerError(f"--resume: the spec differs from the run's in what changes training: {shown}. "
                                "Start a new run, or pass --accept-changes to continue with them (recorded in "
                                "the run folder)")
        self.log(f"resuming with changes: {shown}")
        return changes

    def log(self, text: str) -> None:
        if self.main and not self.quiet:
            if self.progress is not None:     # above the bar, while there is one
                self.progress.write(text)
            else:
                print(text, flush=True)

    def run(self, steps: int | None = None) -> dict:
        runner, train = self.runner, self.runner.spec.train
        total = steps if steps is not None else train.steps
        started, last, window = time.time(), {}, WindowMeans()
        self.trackers = Trackers.start(runner, self.out, resumed_at=runner.step_count)
        self.progress = Progress(total, runner.step_count, enabled=self.main and not self.quiet)
        previous = _defer_signals(self)
        try:
            while runner.step_count < total:
                if self._stop_requested():            # arrived during the last step: it is complete
                    raise KeyboardInterrupt
                last = runner.step()
                step = runner.step_count
                window.add(last)                      # tensors: no host read until a logging step
                self.progress.update(step)
                if train.log_every and (step % train.log_every == 0 or step == total):
                    self._write_metrics(step, window.read(runner.accelerator.reduce), time.time() - started)
                if train.sample_every and step % train.sample_every == 0 and self.main:
                    self._sample(self.out / "samples" / f"step_{step:06d}.png")
                if train.checkpoint_every and step % train.checkpoint_every == 0 and step < total:
                    self.checkpoint()
                for callback in self.callbacks:
                    callback.on_step(self, step, last)
        except KeyboardInterrupt:
            folder = self.checkpoint()
            self.log(f"interrupted at step {runner.step_count}: saved {folder}; continue with --resume")
            self.release()
            raise
        except NonFiniteLoss:
            self.log(f"stopped: the last good checkpoint is {checkpoint.latest(self.out)}")
            self.release()
            raise
        finally:
            self.progress.close()
            for signum, handler in previous.items():
                signal.signal(signum, handler)
        try:
            return self.finish(time.time() - started)
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
        """Unlock the run folder (done by `run`; the process ending does it too)."""
        self.trackers.finish()
        if self.lock is not None:
            self.lock.close()
            self.lock = None

    def finish(self, seconds: float) -> dict:
        from composer.run.evaluate import evaluate
        from composer.run.plots import plot_after_run

        runner = self.runner
        self.checkpoint()
        if self.main:
            save_file(checkpoint.module_tensors(runner), self.out / "weights.safetensors")
            self._sample(self.out / "samples" / "final.png")
        results = {"step": runner.step_count, "seconds": round(seconds, 1), **evaluate(runner)}
        if self.main:
            (self.out / "eval.json").write_text(json.dumps(results, indent=2))
            self.log("eval: " + json.dumps(results))
            plot_after_run(self.out, runner.plan)      # RUN/loss.png; skipped without matplotlib
            self.trackers.log(scalars("eval", {k: v for k, v in results.items() if k not in ("step", "seconds")}),
                              step=runner.step_count)
        for callback in self.callbacks:
            callback.on_end(self, results)
        return results

    def _sample(self, path: Path) -> None:
        written = save_samples(self.runner, path)
        if written is not None:
            self.trackers.log_image("samples", written, self.runner.step_count)
            for callback in self.callbacks:
                callback.on_sample(self, written)

    def checkpoint(self) -> Path:
        runner = self.runner
        runner.check_state()
        folder = checkpoint.save(runner, self.out / "checkpoints" / f"step_{runner.step_count:06d}")
        if self.main:   # only folders composer wrote (step_N with state.json), oldest by step number
            for old in checkpoint.complete(self.out)[:-runner.spec.train.keep_checkpoints]:
                shutil.rmtree(old, ignore_errors=True)
        for callback in self.callbacks:
            callback.on_checkpoint(self, folder)
        return folder

    def _write_metrics(self, step: int, means: dict, seconds: float) -> None:
        """`means`: each term's mean over the steps since the last log (WindowMeans), read once."""
        if not self.main:
            return
        lrs = {n: s.get_last_lr()[0] for n, s in self.runner.schedulers.items()}
        record = {"step": step, "seconds": round(seconds, 2), **means, **{f"lr.{n}": v for n, v in lrs.items()}}
        with open(self.out / "metrics.jsonl", "a") as f:
            f.write(json.dumps(record) + "\n")
        self.trackers.log({**scalars("loss", means), **scalars("lr", lrs)}, step=step)
        self.progress.report(step, means)


UNTRAINED = (("name",), ("train", "log_every"), ("train", "sample_every"), ("train", "checkpoint_every"),
             ("train", "keep_checkpoints"), ("train", "log_with"), ("train", "threads"), ("train", "compile"),
             ("train", "channels_last"), ("train", "standing_stats"), ("sample",), ("eval",))
"""Keys a resume may change freely: they do not change what is trained (threads and the fast
modes change only the rounding: a resume that switches them is not bitwise equal to a run that
never did)."""


def spec_changes(old: dict, new: dict) -> list[str]:
    """`key.path: old -> new` for every difference that changes training (a module's `weights:`
    path is compared by the run's own copy, so it is left out)."""
    def flat(data, path=()):
        if isinstance(data, dict):
            return {k: v for key, value in data.items() for k, v in flat(value, path + (key,)).items()}
        return {path: data}

    a, b = flat(old), flat(new)
    out = []
    for path in sorted(set(a) | set(b), key=lambda p: tuple(map(str, p))):
        if any(path[:len(u)] == u for u in UNTRAINED) or path[-1:] == ("weights",) or a.get(path) == b.get(path):
            continue
        out.append(f"{'.'.join(map(str, path))}: {a.get(path, '(none)')!r} -> {b.get(path, '(none)')!r}")
    return out


def run_folder(out: Path, main: bool, barrier=lambda: None):
    """Check that `out` can be a run folder and lock it for this process: a second process on the
    same folder is refused (the lock is released when the process ends). With several ranks,
    every rank checks before the main one writes anything (`barrier`)."""
    import fcntl

    if out.exists() and not out.is_dir():
        raise ComposerError(f"--out {out}: a file, not a folder")
    if out.is_dir() and any(out.iterdir()) and not (out / "spec.yaml").is_file() and not (out / "checkpoints").is_dir():
        raise ComposerError(f"--out {out}: a non-empty folder that is not a composer run folder; choose another")
    barrier()
    if not main:
        return None
    out.mkdir(parents=True, exist_ok=True)
    handle = open(out / ".lock", "w")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.close()
        raise ComposerError(f"{out} is in use by another composer process (its lock is {out / '.lock'})") from None
    return handle


def _truncate_metrics(path: Path, step: int) -> None:
    """After a resume from `step`, drop log lines of steps that will be trained again."""
    if not path.is_file():
        return
    kept = [line for line in path.read_text().splitlines() if line.strip() and json.loads(line).get("step", 0) <= step]
    path.write_text("".join(line + "\n" for line in kept))


def _copy_weights(spec, out: Path) -> dict:
    """The spec to save in the run folder, with every `weights:` file copied into RUN/inputs/
    and named relative to the folder, so the run folder is self-contained."""
    import copy

    from composer.run.checkpoint import weights_path

    data = copy.deepcopy(spec.data)
    for module in spec.modules:
        if module.weights:
            target = out / "inputs" / f"{module.name}.safetensors"
            target.parent.mkdir(exist_ok=True)
            source = weights_path(spec, module)
            if source.resolve() != target.resolve():
                shutil.copyfile(source, target)
            data["modules"][module.name]["weights"] = f"inputs/{module.name}.safetensors"
    return data


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


