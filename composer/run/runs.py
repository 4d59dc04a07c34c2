"""`composer runs [DIR]`: one row per run folder under DIR (default runs/): graph, status, steps,
wall time, the final logged losses (the last line of metrics.jsonl) and the evaluation metrics
(eval.json), sortable by any column, as a table or JSON.

A run folder is a folder holding spec.yaml (composer/run/folder.py); its status is `finished`
(eval.json written), `checkpoint at step N` (stopped or still running; `--resume` continues it)
or `interrupted` (no checkpoint was written).
"""
from __future__ import annotations

import fnmatch
import json
import math
import os
from pathlib import Path

import yaml

from composer.errors import ComposerError, SpecError
from composer.run import checkpoint
from composer.run.folder import RunFolder
from composer.text import aligned

FIXED = ("run", "graph", "status", "steps", "seconds")
"""Columns every row has; the losses and the `eval.` metrics follow."""


def find(root: str | Path) -> list[Path]:
    """Run folders under `root` (or `root` itself), in name order; nothing inside a run folder
    is searched further."""
    root = Path(root)
    if not root.is_dir():
        raise ComposerError(f"{root}: no such folder")
    found = []
    for folder, children, files in os.walk(root):
        if RunFolder.SPEC in files:
            found.append(Path(folder))
            children.clear()
        children.sort()
    return sorted(found)


def summary(folder: Path, root: Path) -> dict:
    """One run as a plain dict (the JSON of `composer runs --json`)."""
    run = RunFolder(folder)
    try:
        spec = yaml.safe_load(run.spec.read_text())
    except yaml.YAMLError:
        spec = None
    spec = spec if isinstance(spec, dict) else {}
    last = last_record(run.metrics)
    results = _read_json(run.eval)
    latest = checkpoint.latest(folder)
    saved = RunFolder.checkpoint_step(latest) if latest is not None else None
    if results is not None:
        status = "finished"
    elif saved is not None:
        status = f"checkpoint at step {saved}"
    else:
        status = "interrupted"
    step = (results or {}).get("step", max(last.get("step", 0), saved or 0))
    return {
        "run": str(folder.relative_to(root)) if folder != root else folder.name,
        "graph": spec.get("name", "?"),
        "status": status,
        "step": step,
        "steps": spec["train"].get("steps") if isinstance(spec.get("train"), dict) else None,
        "seconds": (results or {}).get("seconds", last.get("seconds")),
        "losses": {k: v for k, v in last.items() if k not in ("step", "seconds") and not k.startswith("lr.")},
        "eval": {k: v for k, v in (results or {}).items() if k not in ("step", "seconds")},
    }


def last_record(path: Path) -> dict:
    """The last complete JSON line of a metrics file ({} when there is none)."""
    if not path.is_file():
        return {}
    for line in reversed(path.read_text().splitlines()):
        try:
            record = json.loads(line)
        except json.JSONDecodeError:     # a line cut short by a kill
            continue
        if isinstance(record, dict):
            return record
    return {}


def _read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text()) if path.is_file() else None
    except json.JSONDecodeError:
        return None


def collect(root: str | Path, sort: str | None = None, descending: bool = False) -> list[dict]:
    """Every run under `root`, sorted by a column (`steps`, `seconds`, a loss name such as
    `gan.G`, or an eval metric as `eval.NAME`); rows without the value come last."""
    root = Path(root)
    rows = [summary(folder, root) for folder in find(root)]
    sort = {"time": "seconds"}.get(sort, sort)
    if sort is None:
        return rows
    columns = _columns(rows)
    if sort not in columns and rows:
        raise SpecError(f"--sort {sort}: no such column (columns: {', '.join(columns)})")
    present = [r for r in rows if _known(_value(r, sort))]
    missing = [r for r in rows if not _known(_value(r, sort))]
    present.sort(key=lambda r: _key(_value(r, sort)), reverse=descending)
    return present + missing


def jsonable(value):
    """`value` with NaN and infinities as None (null): strict JSON for tools such as jq."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [jsonable(v) for v in value]
    return value


def _known(value) -> bool:
    return value is not None and not (isinstance(value, float) and math.isnan(value))


def _key(value):
    return (0, value, "") if isinstance(value, (int, float)) else (1, 0, str(value))


def _value(row: dict, column: str):
    if column == "steps":
        return row["step"]
    if column in row and column not in ("losses", "eval"):
        return row[column]
    if column.startswith("eval.") and column[5:] in row["eval"]:
        return row["eval"][column[5:]]
    return row["losses"].get(column)


def _columns(rows: list[dict]) -> list[str]:
    rows = sorted(rows, key=lambda r: r["run"])          # the same columns however the rows are sorted
    losses = list(dict.fromkeys(k for r in rows for k in r["losses"]))
    metrics = list(dict.fromkeys(f"eval.{k}" for r in rows for k in r["eval"]))
    return list(FIXED) + losses + metrics


def shown_columns(rows: list[dict], patterns: list[str] | None = None, sort: str | None = None) -> list[str]:
    """The table's columns: those matching `patterns` (shell-style, `eval.digits.*`) after the
    fixed ones; by default the losses and the first three metrics of each eval metric (the
    headline ones: metrics list them first), plus the sort column."""
    columns = _columns(rows)
    if patterns:
        chosen = [c for c in columns if c in FIXED or any(fnmatch.fnmatchcase(c, p) for p in patterns)]
    else:
        families: dict[str, int] = {}
        chosen = []
        for column in columns:
            family = column.rsplit(".", 1)[0] if column.startswith("eval.") else None
            families[family] = families.get(family, 0) + 1
            if family is None or families[family] <= 3:
                chosen.append(column)
    return chosen + ([sort] if sort in columns and sort not in chosen else [])


def format_table(rows: list[dict], columns: list[str] | None = None) -> str:
    """A text table: run | graph | status | steps | time | losses... | eval metrics..."""
    columns = columns or _columns(rows)
    header = [c if c != "seconds" else "time" for c in columns]
    return "\n".join(aligned([header] + [[_cell(r, c) for c in columns] for r in rows]))


def _cell(row: dict, column: str) -> str:
    if column == "steps":
        return f"{row['step']}/{row['steps']}" if row["steps"] is not None else str(row["step"])
    value = _value(row, column)
    if column == "seconds":
        return "-" if value is None else _duration(value)
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}" if math.isfinite(value) else str(value)
    return str(value)


def _duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f}s"
    if seconds < 3600:
        return f"{seconds / 60:.1f}min"
    return f"{seconds / 3600:.1f}h"
