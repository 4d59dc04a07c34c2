"""The Trainer's built-in behaviours as callbacks (hook points: composer/run/callbacks.py), in the
order they run, and the `callbacks` registry a graph's `train.callbacks` names entries of."""
from __future__ import annotations

import json
import time

from composer.registry import Registry
from composer.run import checkpoint
from composer.run.callbacks import Callback, combine
from composer.run.progress import Progress as ProgressDisplay
from composer.run.progress import WindowMeans
from composer.run.trackers import Trackers as TrackerSet
from composer.run.trackers import scalars


def learning_rates(runner) -> dict[str, float]:
    """Each optimizer's current learning rate."""
    return {n: s.get_last_lr()[0] for n, s in runner.schedulers.items()}


class Trackers(Callback):
    """Logs to the experiment trackers of `train.log_with`: loss means and learning rates at
    logging steps, sample grids, the final evaluation; closes them when the run ends."""

    name = "trackers"

    def __init__(self):
        self.trackers = None

    def on_run_start(self, trainer):
        self.trackers = TrackerSet.start(trainer.runner, trainer.out, resumed_at=trainer.runner.step_count)

    def on_log(self, trainer, step, means):
        if trainer.main:
            self.trackers.log({**scalars("loss", means), **scalars("lr", learning_rates(trainer.runner))}, step=step)

    def on_sample(self, trainer, path):
        self.trackers.log_image("samples", path, trainer.runner.step_count)

    def on_eval(self, trainer, results):
        if trainer.main:
            values = {k: v for k, v in results.items() if k not in ("step", "seconds")}
            self.trackers.log(scalars("eval", values), step=trainer.runner.step_count)

    def on_close(self, trainer):
        if self.trackers is not None:
            self.trackers.finish()


class Progress(Callback):
    """The progress bar (or plain lines), and at every `train.log_every` steps the loss terms'
    means over the window: a line of RUN/metrics.jsonl, then `on_log`."""

    name = "progress"

    def __init__(self):
        self.window = WindowMeans()

    def on_run_start(self, trainer):
        self.window = WindowMeans()
        trainer.progress = ProgressDisplay(trainer.total, trainer.runner.step_count,
                                           enabled=trainer.main and not trainer.quiet)

    def on_step_end(self, trainer, step, logs):
        runner, every = trainer.runner, trainer.runner.spec.train.log_every
        self.window.add(logs)                      # tensors: no host read until a logging step
        trainer.progress.update(step)
        if not every or (step % every != 0 and step != trainer.total):
            return
        means = self.window.read(runner.accelerator.reduce)
        if trainer.main:
            lrs = learning_rates(runner)
            record = {"step": step, "seconds": round(time.time() - trainer.started, 2), **means,
                      **{f"lr.{n}": v for n, v in lrs.items()}}
            trainer.folder.append_metrics(record)
        trainer.call("on_log", step, means)
        if trainer.main:
            trainer.progress.report(step, means)

    def on_loop_end(self, trainer):
        trainer.progress.close()


class Weights(Callback):
    """RUN/weights.safetensors at the end: every module's weights and EMA copies."""

    name = "weights"

    def on_run_end(self, trainer, results):
        from safetensors.torch import save_file

        if trainer.main:
            save_file(checkpoint.module_tensors(trainer.runner), trainer.folder.weights)


class Samples(Callback):
    """A sample grid every `train.sample_every` steps (RUN/samples/step_N.png) and at the end
    (RUN/samples/final.png), then `on_sample`."""

    name = "samples"

    def on_step_end(self, trainer, step, logs):
        every = trainer.runner.spec.train.sample_every
        if every and step % every == 0 and trainer.main:
            self.write(trainer, trainer.folder.sample(step))

    def on_run_end(self, trainer, results):
        if trainer.main:
            self.write(trainer, trainer.folder.sample())

    def write(self, trainer, path) -> None:
        from composer.run.grids import save_samples

        written = save_samples(trainer.runner, path)
        if written is not None:
            trainer.call("on_sample", written)


class Checkpoints(Callback):
    """A checkpoint every `train.checkpoint_every` steps (the Trainer writes the last one and
    one on an interrupt itself), keeping the newest `train.keep_checkpoints`."""

    name = "checkpoints"

    def on_step_end(self, trainer, step, logs):
        every = trainer.runner.spec.train.checkpoint_every
        if every and step % every == 0 and step < trainer.total:
            trainer.checkpoint()

    def on_checkpoint(self, trainer, folder):
        if trainer.main:   # only valid folders composer wrote, never the newest (checkpoint.prune)
            checkpoint.prune(trainer.out, folder, trainer.runner.spec.train.keep_checkpoints)


class Eval(Callback):
    """The graph's metrics (`eval.metrics`) at the end, added to the results, written to
    RUN/eval.json and printed; then `on_eval`."""

    name = "eval"

    def on_run_end(self, trainer, results):
        from composer.run.evaluate import evaluate

        results.update(evaluate(trainer.runner))
        if trainer.main:
            trainer.folder.eval.write_text(json.dumps(results, indent=2))
            trainer.log("eval: " + json.dumps(results))
        trainer.call("on_eval", results)


class Plots(Callback):
    """RUN/loss.png at the end: the loss curves per phase (needs matplotlib; skipped without)."""

    name = "plots"

    def on_run_end(self, trainer, results):
        from composer.run.plots import plot_after_run

        if trainer.main:
            plot_after_run(trainer.out, trainer.runner.plan)


DEFAULTS = (Trackers, Progress, Weights, Samples, Checkpoints, Eval, Plots)
"""The default callbacks, in the order they run at each hook."""

CALLBACKS = Registry("callback", {c.name: c for c in DEFAULTS},
                     examples={c.name: f"train: {{callbacks: [{c.name}]}}" for c in DEFAULTS})
"""What `train.callbacks` can name: the defaults and the callbacks plugins register."""

REGISTRIES = {"callbacks": CALLBACKS}   # what this module declares (composer.registry.get)


def callbacks_for(spec, given=()) -> list[Callback]:
    """The run's callbacks: the defaults, the graph's `train.callbacks` (made with no
    arguments), then `given`; a callback named as a default takes its place."""
    return combine([c() for c in DEFAULTS], named(spec) + list(given))


def named(spec) -> list[Callback]:
    """The graph's `train.callbacks`, each a registered callback made with no arguments
    (SpecError at its line)."""
    out = []
    for k, name in enumerate(spec.train.callbacks):
        if name not in CALLBACKS:
            raise spec.error(CALLBACKS.unknown(name), "train", "callbacks", k)
        try:
            out.append(CALLBACKS[name]())
        except TypeError as err:
            raise spec.error(f"callback '{name}' must take no arguments: {err}", "train", "callbacks", k) from None
    return out
