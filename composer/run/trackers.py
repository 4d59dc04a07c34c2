"""Experiment trackers named in `train.log_with`, through Accelerate's tracker interface.

A name is one of Accelerate's trackers (`accelerate.tracking.LOGGER_TYPE_TO_CLASS`: tensorboard,
wandb, mlflow, aim, comet_ml, clearml, dvclive, swanlab, trackio, and any class registered with
`accelerate.tracking.register_tracker_class`). On the main process only, the Trainer starts them,
adds them to `accelerator.trackers` (so `accelerator.log(...)` and
`accelerator.get_tracker("tensorboard")` reach them from callbacks too), logs through
`accelerator.log` the window means of every loss term (`loss/<term>`), the learning rates
(`lr/<optimizer>`), the eval metrics at the end (`eval/<metric>`) and the sample grids as images,
and closes them when the run ends. Trackers that keep files write under RUN/<tracker>/: TensorBoard's
event files are in RUN/tensorboard/<spec name>/ (`tensorboard --logdir RUN/tensorboard`).

Why not `Accelerator(log_with=...)` + `init_trackers` + `end_training`: the Runner creates its
Accelerator before the run folder is known, and `end_training` also destroys the process group,
which the Runner still needs after training (evaluation, generation). The few lines of
`init_trackers` done here are the same: make each tracker, `start()`, store the configuration.

Resume: metrics.jsonl drops the lines past the checkpoint; TensorBoard gets `purge_step` (its
SummaryWriter marks the restart, and TensorBoard hides the older events from that step on).
"""
from __future__ import annotations

from pathlib import Path

from composer.run.folder import RunFolder
from composer.text import flatten


INSTALL = {"tensorboard": "pip install 'composer-graphs[tensorboard]'"}
"""How to install a tracker's library, when it is not `pip install <name>`."""


def missing_library(name: str) -> str | None:
    """The message for a tracker whose library is not installed (None when it is)."""
    from accelerate.tracking import LoggerType, get_available_trackers

    available = {str(t) for t in get_available_trackers()}
    if name not in LoggerType.list() or name in available:    # registered custom classes: always
        return None
    return f"tracker '{name}' needs its library, which is not installed: {INSTALL.get(name, f'pip install {name}')}"


class Trackers:
    """The trackers of one run (none on processes other than the main one)."""

    def __init__(self, accelerator, started=()):
        self.accelerator, self.started = accelerator, list(started)
        self.image_steps: dict[str, int] = {}

    @classmethod
    def start(cls, runner, out: Path, resumed_at: int = 0) -> "Trackers":
        """Start the spec's trackers on the main process; `resumed_at` > 0: a resumed run."""
        spec, accelerator = runner.spec, runner.accelerator
        if not accelerator.is_main_process or not spec.train.log_with:
            return cls(accelerator)
        for k, name in enumerate(spec.train.log_with):
            message = missing_library(name)
            if message:
                raise spec.error(message, "train", "log_with", k)
        started = [_make(spec.name, name, Path(out), resumed_at) for name in spec.train.log_with]
        config = flat_config(spec.data)
        for tracker in started:
            tracker.start()
            if tracker.name != "tensorboard":   # its add_hparams would add a second, timestamped run
                tracker.store_init_configuration(config)
            accelerator.trackers.append(tracker)
        return cls(accelerator, started)

    def log(self, values: dict, step: int) -> None:
        """Numbers to every tracker on the Accelerator (the main process's; nothing elsewhere)."""
        if self.accelerator.trackers:
            self.accelerator.log(values, step=step)

    def log_image(self, tag: str, path: Path, step: int) -> None:
        """A PNG (a sample grid) to the trackers that take images; once per tag and step (the
        final grid of a run whose last step also wrote a periodic one is the same picture)."""
        trackers = self.accelerator.trackers if self.accelerator.is_main_process else []
        if not any(t.name in IMAGE_TAKERS for t in trackers) or self.image_steps.get(tag) == step:
            return
        self.image_steps[tag] = step
        import numpy as np
        from PIL import Image

        with Image.open(path) as file:
            image = np.asarray(file.convert("RGB"))
        for tracker in trackers:
            if tracker.name == "tensorboard":        # the SummaryWriter: one HWC image
                tracker.tracker.add_image(tag, image, step, dataformats="HWC")
                tracker.tracker.flush()
            elif tracker.name in IMAGE_TAKERS:
                tracker.log_images({tag: [image] if IMAGE_TAKERS[tracker.name] == "list" else image}, step=step)

    def finish(self) -> None:
        """Close this run's trackers and take them off the Accelerator (a later run starts its own)."""
        for tracker in self.started:
            tracker.finish()
            if tracker in self.accelerator.trackers:
                self.accelerator.trackers.remove(tracker)
        self.started = []


IMAGE_TAKERS = {"tensorboard": "one", "wandb": "list", "swanlab": "list", "aim": "one", "clearml": "one"}
"""What each Accelerate tracker's `log_images` takes per tag (accelerate/tracking.py)."""


def _make(project: str, name: str, out: Path, resumed_at: int):
    from accelerate.tracking import LOGGER_TYPE_TO_CLASS

    make = LOGGER_TYPE_TO_CLASS[name]
    options = {"purge_step": resumed_at + 1} if name == "tensorboard" and resumed_at else {}
    if make.requires_logging_directory:
        return make(project, RunFolder(out).tracker(name), **options)
    return make(project, **options)


def scalars(prefix: str, values: dict) -> dict[str, float]:
    """`prefix/key` for every number in `values` (nested dicts flattened with `/`)."""
    out = {}
    for key, value in values.items():
        if isinstance(value, dict):
            out.update(scalars(f"{prefix}/{key}", value))
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            out[f"{prefix}/{key}"] = value
    return out


def flat_config(data: dict, path: str = "") -> dict:
    """The spec as `a.b.c: value` pairs of the types trackers store (lists as text)."""
    return {path + ".".join(map(str, keys)): value if value is None or isinstance(value, (bool, int, float, str))
            else str(value) for keys, value in flatten(data).items()}
