"""The run folder's layout: one class knows every file name in it.

    RUN/
        spec.yaml              the spec trained (its `weights:` files copied into inputs/)
        inputs/NAME.safetensors
        metrics.jsonl          one line per logging step: the window means and learning rates
        changes.jsonl          what a resume with --accept-changes changed, one line per resume
        samples/step_N.png     periodic sample grids; samples/final.png at the end
        checkpoints/step_N/    full training state (composer/run/checkpoint.py names the files in it)
        weights.safetensors    module and EMA weights at the end
        eval.json              the final evaluation (written last: a finished run has it)
        loss.png               the loss curves (composer/run/plots.py)
        <tracker>/             files of the experiment trackers (tensorboard/, composer/run/trackers.py)
        .lock                  held by the process training in the folder
        .composer-run.json     the marker: composer made this folder (composer/run/ownership.py)

A folder is read as a run folder when it holds spec.yaml (`composer eval`, `sample`, `runs`, also
an older composer's runs); `composer run` writes only into a folder composer marked as its own
(composer/run/ownership.py decides, before `claim` locks it). Everything that reads or writes a run folder
(the trainer and its callbacks, checkpoints, `composer runs`, plots, `api.open_run`) asks this
class for the names.
"""
from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import yaml

from composer.errors import ComposerError

STEP = re.compile(r"step_(\d+)")
"""A checkpoint folder's name, `step_N` (N zero-padded to 6 digits when written)."""


class RunFolder:
    """The paths of one run folder (nothing is created by making one)."""

    SPEC = "spec.yaml"
    METRICS = "metrics.jsonl"
    CHANGES = "changes.jsonl"
    EVAL = "eval.json"
    WEIGHTS = "weights.safetensors"
    PLOT = "loss.png"
    SAMPLES = "samples"
    CHECKPOINTS = "checkpoints"
    INPUTS = "inputs"
    LOCK = ".lock"
    MARKER = ".composer-run.json"

    def __init__(self, root: str | Path):
        self.root = Path(root)

    def __repr__(self) -> str:
        return f"RunFolder({str(self.root)!r})"

    # ------------------------------------------------------------------ names
    @property
    def spec(self) -> Path:
        return self.root / self.SPEC

    @property
    def metrics(self) -> Path:
        return self.root / self.METRICS

    @property
    def changes(self) -> Path:
        return self.root / self.CHANGES

    @property
    def eval(self) -> Path:
        return self.root / self.EVAL

    @property
    def weights(self) -> Path:
        return self.root / self.WEIGHTS

    @property
    def plot(self) -> Path:
        return self.root / self.PLOT

    @property
    def samples(self) -> Path:
        return self.root / self.SAMPLES

    @property
    def checkpoints(self) -> Path:
        return self.root / self.CHECKPOINTS

    @property
    def lock(self) -> Path:
        return self.root / self.LOCK

    @property
    def marker(self) -> Path:
        return self.root / self.MARKER

    def sample(self, step: int | None = None) -> Path:
        """samples/step_N.png, or samples/final.png (`step` None)."""
        return self.samples / ("final.png" if step is None else f"step_{step:06d}.png")

    def checkpoint(self, step: int) -> Path:
        """checkpoints/step_N (zero-padded to 6 digits)."""
        return self.checkpoints / f"step_{step:06d}"

    @staticmethod
    def checkpoint_step(folder: Path) -> int | None:
        """N of a checkpoint folder named step_N (None for any other name)."""
        match = STEP.fullmatch(Path(folder).name)
        return int(match.group(1)) if match else None

    def tracker(self, name: str) -> Path:
        """The folder of an experiment tracker that keeps files (tensorboard/)."""
        return self.root / name

    def input_name(self, module: str) -> str:
        """A module's `weights:` file as the run's spec.yaml names it (relative to the folder)."""
        return f"{self.INPUTS}/{module}.safetensors"

    # ------------------------------------------------------------------ what a folder is
    @classmethod
    def holds_run(cls, path: str | Path) -> bool:
        """Whether `path` is a run folder (holds spec.yaml)."""
        return (Path(path) / cls.SPEC).is_file()

    def require(self) -> "RunFolder":
        """This folder, or ComposerError when it is not a run folder."""
        if not self.holds_run(self.root):
            raise ComposerError(f"{self.root} is not a composer run folder (no {self.SPEC})")
        return self

    def claim(self, main: bool, barrier=lambda: None):
        """Create the folder and lock it for this process: a second process on the same folder is
        refused (the lock is released when the process ends). Whether a run may be written here at
        all is composer/run/ownership.py's decision, made before. Returns the open lock file (None
        on other ranks, which only wait at `barrier`)."""
        import fcntl

        out = self.root
        if out.exists() and not out.is_dir():
            raise ComposerError(f"--out {out}: a file, not a folder")
        barrier()
        if not main:
            return None
        out.mkdir(parents=True, exist_ok=True)
        handle = open(self.lock, "w")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.close()
            raise ComposerError(f"{out} is in use by another composer process (its lock is {self.lock})") from None
        return handle

    # ------------------------------------------------------------------ writing
    def write_spec(self, spec, sources: dict[str, Path]) -> None:
        """spec.yaml, with each module's `weights:` file (`sources`: module -> its file) copied
        into inputs/ and named relative to the folder, so the run folder is self-contained; a
        bridged block's `pretrained:` folder (often gigabytes) is named by its absolute path."""
        import copy

        self.root.mkdir(parents=True, exist_ok=True)
        data = copy.deepcopy(spec.data)
        for module, source in sources.items():
            target = self.root / self.input_name(module)
            target.parent.mkdir(exist_ok=True)
            if source.resolve() != target.resolve():
                shutil.copyfile(source, target)
            data["modules"][module]["weights"] = self.input_name(module)
        for module in spec.modules:     # a bridged block's `pretrained:` as resolved from the graph's folder
            resolved = module.args.get("pretrained")
            if isinstance(resolved, str) and Path(resolved).is_absolute() and isinstance(data["modules"][module.name], dict):
                data["modules"][module.name]["pretrained"] = resolved
        self.spec.write_text(yaml.safe_dump(with_data_paths(spec, data), sort_keys=False))

    def record_changes(self, step: int, changes: list[str]) -> None:
        """One line of changes.jsonl: a resume at `step` accepted these spec changes."""
        with open(self.changes, "a") as f:
            f.write(json.dumps({"resumed_at": step, "changes": changes}) + "\n")

    def truncate_metrics(self, step: int) -> None:
        """After a resume from `step`, drop the metrics lines of steps that will be trained again."""
        if not self.metrics.is_file():
            return
        kept = [line for line in self.metrics.read_text().splitlines()
                if line.strip() and json.loads(line).get("step", 0) <= step]
        self.metrics.write_text("".join(line + "\n" for line in kept))

    def append_metrics(self, record: dict) -> None:
        """One line of metrics.jsonl."""
        with open(self.metrics, "a") as f:
            f.write(json.dumps(record) + "\n")


def with_data_paths(spec, data: dict | None = None) -> dict:
    """The spec's data (or `data`) with each data input's file arguments absolute (`_data_paths`):
    what the run's spec.yaml says, and what a resume compares it with."""
    import copy

    data = copy.deepcopy(spec.data if data is None else data)
    for name, paths in _data_paths(spec).items():
        data["inputs"][name].update(paths)
    return data


def _data_paths(spec) -> dict[str, dict]:
    """input -> {argument: absolute path} for the file arguments of its source (`Source.paths`) that
    name an existing file or folder, next to the graph file or in the working directory; so
    `composer eval RUN` and `--resume` find the data wherever they are started."""
    from composer.data.inputs import resolve_paths, source_of

    out = {}
    for item in spec.inputs:
        if item.kind != "data":
            continue
        source = source_of(spec, item)
        resolved = resolve_paths(spec, source, item.args)
        found = {key: os.path.abspath(value) for key in getattr(source, "paths", ())
                 if isinstance(value := resolved.get(key), str) and Path(value).expanduser().exists()}
        if found:
            out[item.name] = found
    return out
