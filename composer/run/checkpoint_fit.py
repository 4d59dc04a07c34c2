"""What a checkpoint must be before anything of it is loaded (composer/run/checkpoint.py):

- its state.json names a known format and an integer step equal to its folder's `step_N`;
- its tensors are finite (composer never writes a non-finite one: `Runner.check_state` runs first,
  so a NaN in a checkpoint is damage, and a resume falls back to the previous checkpoint);
- its modules, EMA copies and optimizers are those of the graph, with the same keys and shapes.

The first two are damage (DamagedCheckpoint); the last is a graph that changed since the checkpoint
was written (CheckpointMismatch, "does not fit": a changed width, an added EMA), which no
`--accept-changes` can continue.
"""
from __future__ import annotations

import json
from pathlib import Path

import torch

from composer.errors import ComposerError
from composer.run.folder import RunFolder

FORMAT = 1
"""The checkpoint layout's version, written in state.json as `format` (checkpoints written before
the field existed have the same layout and read as 1)."""


class DamagedCheckpoint(ComposerError):
    """A checkpoint file that cannot be read, or holds what composer never writes."""


class CheckpointMismatch(DamagedCheckpoint):
    """A readable checkpoint of another graph: modules, shapes, optimizers or data differ.
    `finding` says what differs, `advice` what to do."""

    ADVICE = ("A changed architecture cannot continue a run: start a new run (a module can start from the "
              "old weights with `weights:` where the shapes allow)")

    def __init__(self, finding: str, advice: str = ADVICE):
        self.finding, self.advice = finding, advice
        super().__init__(f"{finding}. {advice}")


def read_state(folder: Path) -> dict:
    """state.json, checked: a JSON object with a known `format` and an integer `step` equal to
    the folder's step_N (when the folder is named so) and an integer process count >= 1."""
    path = folder / "state.json"
    try:
        state = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, ValueError) as err:
        raise DamagedCheckpoint(f"checkpoint {folder} is damaged: {path.name} is not JSON ({err})") from None
    if not isinstance(state, dict):
        raise DamagedCheckpoint(f"checkpoint {folder} is damaged: {path.name} is not a JSON object")
    version = state.get("format", FORMAT)
    if not _is_int(version) or version != FORMAT:
        raise DamagedCheckpoint(f"checkpoint {folder}: {path.name} has format {version!r}; this composer reads "
                                f"format {FORMAT}")
    step, named = state.get("step"), RunFolder.checkpoint_step(folder)
    if not _is_int(step) or step < 0 or (named is not None and step != named):
        expected = f"the folder's step, {named}" if named is not None else "an integer >= 0"
        raise DamagedCheckpoint(f"checkpoint {folder} is damaged: {path.name} has step {step!r}; expected {expected}")
    processes = state.get("processes", 1)
    if not _is_int(processes) or processes < 1:
        raise DamagedCheckpoint(f"checkpoint {folder} is damaged: {path.name} has processes {processes!r}; "
                                "expected an integer >= 1")
    return state


def is_valid(folder: Path) -> bool:
    """Whether state.json passes `read_state` (pruning counts only such checkpoints)."""
    try:
        read_state(folder)
    except DamagedCheckpoint:
        return False
    return True


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def check_finite(folder: Path, file: str, tensors: dict) -> None:
    """DamagedCheckpoint naming the first tensor of `file` holding a NaN or an infinity."""
    for key, value in tensors.items():
        if value.is_floating_point() and not bool(torch.isfinite(value).all()):
            raise DamagedCheckpoint(f"checkpoint {folder} is damaged: {file} holds non-finite values in {key} "
                                    "(composer never saves them)")


def check_modules(folder: Path, weights: dict, expected: dict[str, dict]) -> None:
    """CheckpointMismatch when the checkpoint's weights (`name.key` -> tensor) are not those of
    `expected` (module name, or `ema.NAME` for an EMA copy -> its state_dict): names the module
    and says what differs."""
    problems = []
    for name, state in expected.items():
        problems += _module_differences(name, state, {k[len(name) + 1:]: v for k, v in weights.items()
                                                      if k.startswith(name + ".")})
    extra = sorted({key.split(".")[0] if not key.startswith("ema.") else ".".join(key.split(".")[:2])
                    for key in weights if _owner(key, expected) is None})
    if extra:
        problems.append(f"the checkpoint has weights of {', '.join(extra)}, which the graph does not")
    if problems:
        raise CheckpointMismatch(f"checkpoint {folder} does not fit this graph: " + "; ".join(problems[:6])
                                 + (f"; and {len(problems) - 6} more" if len(problems) > 6 else ""))


def _module_differences(name: str, state: dict, saved: dict) -> list[str]:
    what = f"EMA copy {name[4:]}" if name.startswith("ema.") else f"module {name}"
    if not saved and state:
        hint = " (train.ema was added?)" if name.startswith("ema.") else ""
        return [f"{what}: not in the checkpoint{hint}"]
    out = [f"{what}: parameter `{key}` shape {list(saved[key].shape)} in the checkpoint vs "
           f"{list(value.shape)} in the graph" for key, value in state.items()
           if key in saved and tuple(saved[key].shape) != tuple(value.shape)]
    missing, unexpected = [k for k in state if k not in saved], [k for k in saved if k not in state]
    if missing:
        out.append(f"{what}: missing from the checkpoint: {_few(missing)}")
    if unexpected:
        out.append(f"{what}: unexpected in the checkpoint: {_few(unexpected)}")
    return out


def _owner(key: str, expected: dict) -> str | None:
    return next((name for name in expected if key.startswith(name + ".")), None)


def _few(keys: list[str]) -> str:
    shown = ", ".join(f"`{k}`" for k in keys[:4])
    return shown + (f" and {len(keys) - 4} more" if len(keys) > 4 else "")



def check_optimizers(folder: Path, saved: dict, optimizers: dict) -> None:
    """CheckpointMismatch when the checkpoint's optimizer states (name -> state_dict) are not
    those of `optimizers`: a missing or extra optimizer, another number of parameters, a moment
    of another shape than its parameter."""
    problems = [f"optimizer {name}: not in the checkpoint" for name in optimizers if name not in saved]
    problems += [f"the checkpoint has optimizer {name}, which the graph does not" for name in saved
                 if name not in optimizers]
    for name, optimizer in optimizers.items():
        if name in saved:
            problems += _optimizer_differences(name, saved[name], optimizer)
    if problems:
        raise CheckpointMismatch(f"checkpoint {folder} does not fit this graph: " + "; ".join(problems[:6]))


def _optimizer_differences(name: str, saved: dict, optimizer) -> list[str]:
    groups = saved.get("param_groups", [])
    counts = [len(g.get("params", [])) for g in groups]
    wanted = [len(g["params"]) for g in optimizer.param_groups]
    if counts != wanted:
        return [f"optimizer {name}: {sum(counts)} parameter(s) in the checkpoint vs {sum(wanted)} in the graph"]
    params = [p for g in optimizer.param_groups for p in g["params"]]
    ids = [i for g in groups for i in g["params"]]
    out = []
    for index, param in zip(ids, params):
        for key, value in saved.get("state", {}).get(index, {}).items():
            if torch.is_tensor(value) and value.dim() > 0 and tuple(value.shape) != tuple(param.shape):
                out.append(f"optimizer {name}: its {key} has shape {list(value.shape)} in the checkpoint vs "
                           f"{list(param.shape)} for its parameter in the graph")
    return out
