"""Checkpoints without pickle: tensors in safetensors files, everything else in JSON.

    RUN/checkpoints/step_000500/
        modules.safetensors   module and EMA weights ("G.main.0.weight", "ema.G....")
        state.safetensors     optimizer moments (the same on every rank)
        state.json            format version, step, process count, optimizer/LR-scheduler structure,
                              fp16 loss scales
        rank{r}.safetensors   what each rank has of its own: data-stream orders, image pools,
        rank{r}.json          the noise generator and the global torch RNG (and their structure)

With several processes every rank draws its own data, noise and pool, so a resume must give each
rank back its own: a checkpoint resumes only with the number of processes that wrote it.

Loading uses `safetensors.torch.load_file` and `json.load` only: nothing executes code. A
checkpoint is checked before anything of it is loaded (composer/run/checkpoint_fit.py): damage
(non-finite tensors, a state.json whose step is not its folder's) makes `load_latest` fall back to
the previous checkpoint; another graph's checkpoint "does not fit". The spec's optimizer
hyperparameters and LR schedule, on the spec's horizon, then replace the checkpoint's
(`optim.apply_spec`), so a resume with accepted changes trains with them.
"""
from __future__ import annotations

import json
import shutil
import warnings
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from composer.errors import ComposerError
from composer.run.checkpoint_fit import (FORMAT, CheckpointMismatch, DamagedCheckpoint, check_finite, check_modules,
                                         check_optimizers, is_valid, read_state)
from composer.run.feeds import DataChanged
from composer.run.folder import STEP, RunFolder
from composer.run.optim import apply_spec

__all__ = ["CheckpointMismatch", "DamagedCheckpoint", "ProcessCountMismatch", "complete", "latest", "load",
           "load_latest", "prune", "save"]

TENSOR = "__tensor__"


def _tree(obj, path: str, tensors: dict):
    """A JSON tree of `obj` with tensors replaced by references into `tensors`."""
    if isinstance(obj, torch.Tensor):
        tensors[path] = obj.detach().cpu().contiguous()
        return {TENSOR: path}
    if isinstance(obj, dict):
        return {"__dict__": [[k, _tree(v, f"{path}.{k}", tensors)] for k, v in obj.items()]}
    if isinstance(obj, (list, tuple)):
        return {"__list__": [_tree(v, f"{path}.{i}", tensors) for i, v in enumerate(obj)],
                "tuple": isinstance(obj, tuple)}
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    raise ComposerError(f"cannot checkpoint a {type(obj).__name__} at {path}")


def _untree(node, tensors: dict):
    if isinstance(node, dict) and TENSOR in node:
        return tensors[node[TENSOR]]
    if isinstance(node, dict) and "__dict__" in node:
        return {k: _untree(v, tensors) for k, v in node["__dict__"]}
    if isinstance(node, dict) and "__list__" in node:
        items = [_untree(v, tensors) for v in node["__list__"]]
        return tuple(items) if node["tuple"] else items
    return node


def module_tensors(runner) -> dict[str, torch.Tensor]:
    out = {}
    for name in runner.raw:
        for key, value in runner.unwrapped(name, ema=False).state_dict().items():
            out[f"{name}.{key}"] = value.detach().cpu().contiguous()
    for name, module in runner.ema.items():
        for key, value in module.state_dict().items():
            out[f"ema.{name}.{key}"] = value.detach().cpu().contiguous()
    return out


def save(runner, folder: str | Path) -> Path:
    """Write the full training state; the folder appears atomically (written aside, renamed)."""
    folder = Path(folder)
    accelerator = runner.accelerator
    tmp = folder.with_name(folder.name + ".tmp")
    if accelerator.is_main_process:
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        save_file(module_tensors(runner), tmp / "modules.safetensors")
        tensors: dict = {}
        state = {
            "format": FORMAT,
            "step": runner.step_count,
            "processes": accelerator.num_processes,
            "optimizers": {n: _tree(o.state_dict(), f"opt.{n}", tensors) for n, o in runner.optimizers.items()},
            "schedulers": {n: _tree(s.state_dict(), f"sched.{n}", tensors) for n, s in runner.schedulers.items()},
            "forward_calls": runner.forward_calls,
            "loss_scales": runner.precision.state_dict(),      # fp16: one GradScaler per phase
        }
        save_file(tensors, tmp / "state.safetensors")
        (tmp / "state.json").write_text(json.dumps(state))
    accelerator.wait_for_everyone()
    _save_rank(runner, tmp, accelerator.process_index)
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        _replace(tmp, folder)
    accelerator.wait_for_everyone()
    return folder


def _save_rank(runner, folder: Path, rank: int) -> None:
    """This rank's own state: its data streams, node state (image pools) and generators."""
    tensors: dict = {}
    state = {
        "streams": {n: _tree(s.state_dict(), f"stream.{n}", tensors) for n, s in runner.streams.items()},
        "node_state": _tree(runner.state, "node", tensors),
        "rng": _tree({"noise": runner.generator.get_state(), "torch": torch.get_rng_state()}, "rng", tensors),
    }
    save_file(tensors, folder / f"rank{rank}.safetensors")
    (folder / f"rank{rank}.json").write_text(json.dumps(state))


def _replace(tmp: Path, folder: Path) -> None:
    """Move a finished checkpoint into place; an existing one is renamed aside first and removed
    last, so a kill at any moment leaves either checkpoint complete (or the previous step's)."""
    old = folder.with_name(folder.name + ".old")
    if folder.exists():
        shutil.rmtree(old, ignore_errors=True)
        folder.rename(old)
    tmp.rename(folder)
    shutil.rmtree(old, ignore_errors=True)


class ProcessCountMismatch(ComposerError):
    """A checkpoint written by another number of processes than this run's."""


def load(runner, folder: str | Path, resume: bool = True) -> None:
    """Restore the full training state; DamagedCheckpoint names the file that is wrong. To only
    sample or evaluate (`resume=False`), any number of processes may read any checkpoint (the
    weights are the same on every rank; rank 0's streams and generators are taken)."""
    folder = Path(folder)
    _require(folder / "state.json")
    try:
        _load(runner, folder, resume)
    except (DamagedCheckpoint, ProcessCountMismatch):
        raise
    except DataChanged as err:
        raise CheckpointMismatch(f"checkpoint {folder} does not fit this graph: the data changed since it was "
                                 f"written: {err}", "A resume continues the same data: start a new run") from None
    except Exception as err:  # noqa: BLE001 -- any other damage: truncated, edited
        raise DamagedCheckpoint(f"checkpoint {folder} is damaged or does not fit this graph: "
                                f"{type(err).__name__}: {_first_line(err)}") from None


def _read_tensors(path: Path) -> dict:
    try:
        return load_file(path)
    except Exception as err:  # noqa: BLE001
        raise DamagedCheckpoint(f"{path}: not a readable safetensors file ({_first_line(err)}); composer "
                                "checkpoints are safetensors + JSON and never load pickles") from None


def _first_line(err: Exception) -> str:
    lines = str(err).strip().splitlines()
    return lines[0] if lines else type(err).__name__


def _load(runner, folder: Path, resume: bool) -> None:
    state = read_state(folder)
    rank, processes = runner.accelerator.process_index, runner.accelerator.num_processes
    if int(state.get("processes", 1)) != processes and not resume:
        rank = 0
    elif int(state.get("processes", 1)) != processes:
        raise ProcessCountMismatch(f"{folder} was written by {state.get('processes', 1)} process(es), this run "
                                   f"has {processes}: each process resumes its own data stream, noise and pools, "
                                   "so resume with the same number of processes")
    if not (folder / f"rank{rank}.json").is_file():
        raise DamagedCheckpoint(f"checkpoint {folder} is damaged: rank{rank}.json is missing")
    weights = _read_tensors(folder / "modules.safetensors")
    modules = {name: runner.unwrapped(name, ema=False) for name in runner.raw}
    modules.update({f"ema.{name}": module for name, module in runner.ema.items()})
    check_modules(folder, weights, {name: module.state_dict() for name, module in modules.items()})
    check_finite(folder, "modules.safetensors", weights)
    tensors = _read_tensors(folder / "state.safetensors")
    check_finite(folder, "state.safetensors", tensors)
    saved = {name: _untree(tree, tensors) for name, tree in state["optimizers"].items()}
    check_optimizers(folder, saved, runner.optimizers)
    for name, module in modules.items():
        module.load_state_dict(_prefixed(weights, f"{name}."))
    runner.standing_copies.clear()   # estimates for the weights before (composer/standing.py)
    for name, opt in runner.optimizers.items():
        opt.load_state_dict(saved[name])
    for name, sched in runner.schedulers.items():
        sched.load_state_dict(_untree(state["schedulers"][name], tensors))
    for opt in runner.spec.optimizers:   # the spec's hyperparameters and LR horizon, not the checkpoint's
        apply_spec(opt, runner.optimizers[opt.name], runner.schedulers[opt.name], runner.spec.train.steps)
    runner.step_count = int(state["step"])
    runner.forward_calls.update(state.get("forward_calls", {}))
    runner.precision.load_state_dict(state.get("loss_scales", {}))
    _load_rank(runner, folder, rank, resume)


def _load_rank(runner, folder: Path, rank: int, resume: bool) -> None:
    """This rank's streams, node state and generators. Only to sample or evaluate (`resume`
    False), a data stream whose data changed (`composer sample RUN inputs.x.split=test`) keeps
    its fresh order: generation draws held-out rows with its own generator, never from the
    training streams, so their saved order matters only to continue training."""
    tensors = _read_tensors(folder / f"rank{rank}.safetensors")
    state = json.loads((folder / f"rank{rank}.json").read_text())
    for name, stream in runner.streams.items():
        try:
            stream.load_state_dict(_untree(state["streams"][name], tensors))
        except DataChanged as err:
            if resume:
                raise DataChanged(f"input {name!r}: {err}") from None
    runner.state.clear()
    runner.state.update(_untree(state["node_state"], tensors))
    rng = _untree(state["rng"], tensors)
    runner.generator.set_state(rng["noise"])
    torch.set_rng_state(rng["torch"])


def _prefixed(tensors: dict, prefix: str) -> dict:
    return {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}


def _require(path: Path) -> None:
    if not path.exists():
        raise ComposerError(f"not a composer checkpoint: {path} is missing")


def complete(run_dir: str | Path) -> list[Path]:
    """The run's complete checkpoint folders (written by composer: `step_N` with state.json),
    oldest first by step number."""
    root = RunFolder(run_dir).checkpoints
    if not root.is_dir():
        return []
    found = [(int(m.group(1)), f) for f in root.iterdir()
             if (m := STEP.fullmatch(f.name)) and f.is_dir() and (f / "state.json").is_file()]
    return [f for _, f in sorted(found)]


def latest(run_dir: str | Path) -> Path | None:
    folders = complete(run_dir)
    return folders[-1] if folders else None


def load_latest(runner, run_dir: str | Path, resume: bool = True) -> Path:
    """Load the newest checkpoint that reads; a damaged newer one is skipped with a warning."""
    folders = complete(run_dir)
    if not folders:
        raise ComposerError(f"{run_dir} has no checkpoint yet")
    errors: list = []
    for index in reversed(range(len(folders))):
        try:
            load(runner, folders[index], resume)
        except DamagedCheckpoint as err:
            errors.append(err)
            following = f"falling back to the previous one, {folders[index - 1].name}" if index else "no older one"
            warnings.warn(f"{err}; {following}", stacklevel=2)
            continue
        return folders[index]
    if all(isinstance(e, CheckpointMismatch) for e in errors):   # the graph changed: one message says so
        older = {1: "", 2: " (nor does the older checkpoint)"}.get(len(errors), f" (nor do the {len(errors) - 1} "
                                                                              "older checkpoints)")
        raise CheckpointMismatch(errors[0].finding + older, errors[0].advice)
    raise DamagedCheckpoint("no checkpoint of " + str(run_dir) + " could be loaded: " + "; ".join(map(str, errors)))


def prune(run_dir: str | Path, written: Path, keep: int) -> None:
    """Remove checkpoints older than the one just `written` beyond the newest `keep` (it
    included). Only folders composer wrote whose state.json is valid count and go: a damaged
    or foreign `step_N` (state.json with `step: 1e30`) never pushes a good one out, and the
    newest valid checkpoint, the one just written, always stays."""
    step = RunFolder.checkpoint_step(written)
    older = [f for f in complete(run_dir) if RunFolder.checkpoint_step(f) < step and is_valid(f)]
    for folder in older[:max(0, len(older) - max(0, keep - 1))]:
        shutil.rmtree(folder, ignore_errors=True)


def weights_path(spec, module) -> Path:
    """A module's `weights:` file (`composer.spec.paths.weights_file`: inside the project, regular)."""
    from composer.spec.paths import weights_file

    return weights_file(spec, module)


def load_module_weights(spec, module, target: torch.nn.Module) -> None:
    """Initialise a module from a safetensors file (`weights:` in the spec); keys may carry the
    module's name as a prefix, as in a run's modules.safetensors (the EMA copy is preferred)."""
    path = weights_path(spec, module)
    tensors = load_file(path)
    for prefix in (f"ema.{module.name}.", f"{module.name}.", ""):
        chosen = _prefixed(tensors, prefix) if prefix else tensors
        if chosen and set(chosen) == set(target.state_dict()):
            target.load_state_dict(chosen)
            return
    raise spec.error(f"{path} holds no weights matching module '{module.name}'", "modules", module.name, "weights")
