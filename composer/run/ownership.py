"""Whose folder `--out` is, and what `composer run` may do in it.

A run folder is one composer marked as its own: the trainer writes `RUN/.composer-run.json`
(`RunFolder.MARKER`: the format version, composer's version, the graph's name, when) when it creates the
folder, before anything else. Ownership is decided by that marker alone, never by a spec.yaml or a
checkpoints/ folder a user may keep for other reasons. What `--out` may be:

| the folder | `composer run` | `--resume` | `--overwrite` |
|---|---|---|---|
| new, or empty | creates the run | refused: no checkpoint | creates the run |
| marked, holding only its spec | starts afresh | refused: no checkpoint | starts afresh |
| marked, with checkpoints or results | refused | continues it | deletes composer's files in it, then as new |
| an older composer's run (no marker; spec.yaml and a complete checkpoint) | refused | continues it, then marks it | refused |
| anything else that is not empty | refused | refused | refused |

`--overwrite` deletes only the names of the run folder's layout (RunFolder) and the trackers'
folders, in a folder composer marked as its own; any other file in it is kept and named. A folder
composer did not mark loses nothing, whatever the flags.
"""
from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

from composer.errors import ComposerError
from composer.run import checkpoint
from composer.run.folder import RunFolder

FORMAT = 1
TRACKER_FOLDERS = ("tensorboard", "wandb", "mlflow", "aim", "clearml", "swanlab", "comet_ml", "dvclive")
"""The trackers' folders a run may hold (composer/run/trackers.py); --overwrite deletes them too."""


class RunFolderRefused(ComposerError):
    """`--out` names a folder `composer run` must not write into as asked (the CLI exits 2)."""


def marker(root: Path) -> dict | None:
    """The folder's marker, or None when it has none (or one that is not composer's JSON)."""
    try:
        data = json.loads(RunFolder(root).marker.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and isinstance(data.get("format"), int) else None


def write_marker(root: Path, graph: str, **extra) -> None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        made_by = version("composer")
    except PackageNotFoundError:
        made_by = "unknown"
    data = {"format": FORMAT, "composer": made_by, "graph": graph,
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), **extra}
    RunFolder(root).marker.write_text(json.dumps(data, indent=1) + "\n")


def own_names() -> tuple[str, ...]:
    """The entries a run writes (RunFolder's layout, the trackers' folders) besides the marker."""
    run = RunFolder
    return (run.SPEC, run.METRICS, run.CHANGES, run.EVAL, run.WEIGHTS, run.PLOT, run.SAMPLES, run.CHECKPOINTS,
            run.INPUTS, *TRACKER_FOLDERS)


def contents(root: Path) -> list[str]:
    """The folder's entries, without the lock and the marker (a new folder holds nothing)."""
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if p.name not in (RunFolder.LOCK, RunFolder.MARKER))


def is_legacy(folder: RunFolder) -> bool:
    """A run written before the marker existed: spec.yaml and a complete checkpoint (`step_N/` with
    its state.json). It may be resumed only, and is marked once its checkpoint has loaded."""
    return folder.spec.is_file() and checkpoint.latest(folder.root) is not None


def decide(folder: RunFolder, resume: bool = False, overwrite: bool = False) -> str:
    """What claiming `folder` does: "create" (a new run; also a marked folder holding only its
    spec), "resume", "adopt" (resume an older composer's run, marking it) or "clear" (--overwrite
    a marked run). Anything else raises RunFolderRefused, naming what is there and the ways out."""
    root = folder.root
    if resume and overwrite:
        raise RunFolderRefused("--resume and --overwrite exclude each other: continue the run, or replace it")
    if root.exists() and not root.is_dir():
        raise ComposerError(f"--out {root}: a file, not a folder")
    found = contents(root)
    owned = marker(root) is not None
    if owned and not set(found) <= {RunFolder.SPEC, RunFolder.INPUTS}:
        return "resume" if resume else "clear" if overwrite else _refuse_run(folder, found)
    if owned or not found:
        if resume:
            raise ComposerError(f"--resume: {root} holds no checkpoint to resume from")
        return "create"
    if is_legacy(folder):
        if resume:
            return "adopt"
        raise RunFolderRefused(
            f"--out {root} holds a run of an older composer ({_listed(found)}; checkpoints up to "
            f"{checkpoint.latest(root).name}) without composer's marker {RunFolder.MARKER}: pass --resume to "
            "continue it, or choose another --out" + ("; --overwrite deletes only folders composer marked as its own, so "
                                         "delete this one yourself to train afresh in it" if overwrite else ""))
    raise RunFolderRefused(
        f"--out {root} is not empty ({_listed(found)}) and is not a composer run folder (it has no {RunFolder.MARKER} "
        "marker), so composer will neither write into it nor delete anything from it"
        + (", with --resume or --overwrite either" if resume or overwrite else "")
        + ": choose another --out, or move these files away")


def _refuse_run(folder: RunFolder, found: list[str]) -> str:
    root = folder.root
    latest = checkpoint.latest(root)
    results = [p.relative_to(root).as_posix() for p in (folder.weights, folder.eval, folder.sample()) if p.is_file()]
    what = (f"a finished run ({', '.join(results)})" if results
            else f"a run stopped at its checkpoint {latest.name}" if latest is not None
            else f"the files of a run that wrote no checkpoint ({_listed(found)})")
    ways = ("pass --resume to continue it from " + (latest.name if latest is not None else "")
            if latest is not None else "it has no checkpoint to --resume from")
    raise RunFolderRefused(f"--out {root} holds {what}; composer does not replace it silently: {ways}, pass "
                           "--overwrite to delete its files and train afresh, or choose another --out")


def clear(folder: RunFolder) -> tuple[list[str], list[str]]:
    """--overwrite: delete composer's own entries of a marked folder; (deleted, kept) names."""
    names = set(own_names())
    deleted, kept = [], []
    for name in contents(folder.root):
        path = folder.root / name
        if name not in names:
            kept.append(name)
            continue
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink()
        deleted.append(name)
    return deleted, kept


def claim(folder: RunFolder, graph: str, main: bool, barrier=lambda: None, resume: bool = False,
          overwrite: bool = False, log=print):
    """Check `folder` for this run (every rank, before the main one writes anything: `barrier`),
    then on the main process lock it, clear it for --overwrite and mark a new run as composer's
    (an older composer's run is marked by `adopt` after its checkpoint loaded). Returns (the
    action of `decide`, the open lock file or None on other ranks)."""
    action = decide(folder, resume, overwrite)
    barrier()
    if not main:
        return action, None
    handle = folder.claim(main=True)
    if action == "clear":
        deleted, kept = clear(folder)
        log(f"--overwrite: deleted {', '.join(deleted)} from {folder.root}"
            + (f"; kept {', '.join(kept)} (not composer's)" if kept else ""))
    if action == "create" or action == "clear":
        write_marker(folder.root, graph)
    return action, handle


def adopt(folder: RunFolder, graph: str, log=print) -> None:
    """Mark an older composer's run as composer's, once its checkpoint has loaded (a folder that
    only looked like one stays unmarked)."""
    write_marker(folder.root, graph, adopted=True)
    log(f"{folder.root}: marked as a composer run folder ({RunFolder.MARKER}); it was written by an older composer")


def _listed(names: list[str], most: int = 6) -> str:
    shown = ", ".join(names[:most])
    return shown + (f" and {len(names) - most} more" if len(names) > most else "")
