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

from . import checkpoint
from .errors import ComposerError
from .runtime import NonFiniteLoss, Runner


def save_samples(runner: Runner, path: Path) -> Path | None:
    """A grid of `sample.n` samples; nothing when the spec names nothing to generate."""
    from .generate import generate

    if not runner.spec.sample.output and not runner.spec.sample.objective:
        return None
    return save_grid_or_scatter(runner, generate(runner, runner.spec.sample.n), path)


def save_grid_or_scatter(runner: Runner, samples: torch.Tensor, path: Path) -> Path:
    """A PNG: an image grid (one sample per row for `[N, k, C, H, W]`, several outputs of each
    sample side by side), or for 2D points a scatter over the held-out data."""
    from composer.data.images import save_image_grid, save_scatter

    from .generate import reference_table

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
                 callbacks=()):
        self.runner, self.out, self.quiet = runner, Path(out), quiet
        self.callbacks = list(callbacks)
        self.stop_signal = None
        self.main = runner.accelerator.is_main_process
        existing = checkpoint.latest(self.out)
        if resume:
            if existing is None:
                raise ComposerError(f"--resume: {self.out} holds no checkpoint to resume from")
            checkpoint.load(runner, existing)
            self.log(f"resumed from {existing} at step {runner.step_count}")
        elif existing is not None:
            raise ComposerError(f"{self.out} already holds checkpoints ({existing.name}); "
                                "pass --resume to continue it or choose another --out")
        if self.main:
            self.out.mkdir(parents=True, exist_ok=True)
            data = _copy_weights(runner.spec, self.out)
            (self.out / "spec.yaml").write_text(yaml.safe_dump(data, sort_keys=False))

    def log(self, text: str) -> None:
        if self.main and not self.quiet:
            print(text, flush=True)

    def run(self, steps: int | None = None) -> dict:
        runner, train = self.runner, self.runner.spec.train
        total = steps if steps is not None else train.steps
        started, last = time.time(), {}
        previous = _defer_signals(self)
        try:
            while runner.step_count < total:
                if self.stop_signal is not None:      # arrived during the last step: it is complete
                    raise KeyboardInterrupt
                last = runner.step()
                step = runner.step_count
                if train.log_every and (step % train.log_every == 0 or step == total):
                    self._write_metrics(step, last, time.time() - started)
                if train.sample_every and step % train.sample_every == 0 and self.main:
                    self._sample(self.out / "samples" / f"step_{step:06d}.png")
                if train.checkpoint_every and step % train.checkpoint_every == 0 and step < total:
                    self.checkpoint()
                for callback in self.callbacks:
                    callback.on_step(self, step, last)
        except KeyboardInterrupt:
            folder = self.checkpoint()
            self.log(f"interrupted at step {runner.step_count}: saved {folder}; continue with --resume")
            raise
        except NonFiniteLoss:
            self.log(f"stopped: the last good checkpoint is {checkpoint.latest(self.out)}")
            raise
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)
        return self.finish(time.time() - started)

    def finish(self, seconds: float) -> dict:
        from .evaluate import evaluate

        runner = self.runner
        self.checkpoint()
        if self.main:
            save_file(checkpoint.module_tensors(runner), self.out / "weights.safetensors")
            self._sample(self.out / "samples" / "final.png")
        results = {"step": runner.step_count, "seconds": round(seconds, 1), **evaluate(runner)}
        if self.main:
            (self.out / "eval.json").write_text(json.dumps(results, indent=2))
            self.log("eval: " + json.dumps(results))
        for callback in self.callbacks:
            callback.on_end(self, results)
        return results

    def _sample(self, path: Path) -> None:
        written = save_samples(self.runner, path)
        if written is not None:
            for callback in self.callbacks:
                callback.on_sample(self, written)

    def checkpoint(self) -> Path:
        runner = self.runner
        folder = checkpoint.save(runner, self.out / "checkpoints" / f"step_{runner.step_count:06d}")
        if self.main:
            kept = sorted(p for p in (self.out / "checkpoints").glob("step_*[0-9]"))
            for old in kept[:-max(1, runner.spec.train.keep_checkpoints)]:
                shutil.rmtree(old, ignore_errors=True)
        for callback in self.callbacks:
            callback.on_checkpoint(self, folder)
        return folder

    def _write_metrics(self, step: int, logs: dict, seconds: float) -> None:
        if not self.main:
            return
        lrs = {f"lr.{n}": s.get_last_lr()[0] for n, s in self.runner.schedulers.items()}
        record = {"step": step, "seconds": round(seconds, 2), **logs, **lrs}
        with open(self.out / "metrics.jsonl", "a") as f:
            f.write(json.dumps(record) + "\n")
        terms = "  ".join(f"{k} {v:.4f}" for k, v in logs.items())
        self.log(f"step {step:6d}  {seconds:7.1f}s  {terms}")


def _copy_weights(spec, out: Path) -> dict:
    """The spec to save in the run folder, with every `weights:` file copied into RUN/inputs/
    and named relative to the folder, so the run folder is self-contained."""
    import copy

    from .checkpoint import weights_path

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


