"""Sweeps: one graph file trained over a grid of settings x seeds, each trial its own
`composer run` process (up to `jobs` at once), then a table and a plot of the graph's declared
eval metrics per setting (mean +- standard error over seeds).

    OUT/sweep.yaml                  what was asked (file, grid, seeds, overrides): a rerun must match
    OUT/runs/S03_lr=0.001/seed_2/   one run folder per trial (spec.yaml, eval.json, checkpoints, ...)
    OUT/logs/S03_lr=0.001.seed_2.log  the trial's output
    OUT/sweep.json, sweep.md, sweep.png   every trial's metrics and times; the table; the plot

A sweep resumes after an interruption: finished trials (their eval.json exists) are kept, trials
with a checkpoint continue with `--resume` (bit-exact, as any run), the others start afresh
(`--overwrite`: a trial folder that holds no checkpoint is deleted but for files not composer's).
"""
from __future__ import annotations

import itertools
import json
import math
import os
import re
import resource
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from composer.errors import ComposerError, SpecError
from composer.run.runs import summary
from composer.spec.yamlio import Loader


@dataclass(frozen=True)
class Trial:
    """One training run of a sweep: a setting (key path -> value) and a seed."""

    label: str            # the setting's folder name, e.g. S01_optimizers.G.lr=0.001
    setting: dict
    seed: int
    folder: Path
    overrides: tuple = field(default=())   # the sweep's own overrides, applied first

    @property
    def arguments(self) -> list[str]:
        return [*self.overrides, *(f"{k}={_yaml(v)}" for k, v in self.setting.items()), f"train.seed={self.seed}"]

    @property
    def name(self) -> str:
        return f"{self.label}.seed_{self.seed}"


def parse_grid(items: list[str]) -> dict[str, list]:
    """`KEY=[a, b]` (values parse as YAML; one value without brackets is a list of one)."""
    grid = {}
    for item in items:
        key, sep, text = item.partition("=")
        if not sep or not key:
            raise SpecError(f"--grid {item}: expected KEY=[VALUE, ...]")
        try:
            values = yaml.load(text, Loader=Loader)
        except yaml.YAMLError as err:
            raise SpecError(f"--grid {item}: the values are not YAML: {err}") from None
        values = values if isinstance(values, list) else [values]
        if not values:
            raise SpecError(f"--grid {item}: no values")
        if key in grid:
            raise SpecError(f"--grid {key} is given twice")
        grid[key] = values
    return grid


def settings(grid: dict[str, list]) -> list[dict]:
    """Every combination of the grid's values, in the order written (one empty setting for no grid)."""
    return [dict(zip(grid, combo)) for combo in itertools.product(*grid.values())]


def setting_label(index: int | str, setting: dict) -> str:
    """A folder name: S01_key=value,key=value for the grid's setting 1 (a string `index` is used as
    written, e.g. a search's hash); characters other than letters, digits, . _ = , - become _, and
    long names are cut."""
    prefix = f"S{index:02d}" if isinstance(index, int) else index
    text = ",".join(f"{k}={_yaml(v)}" for k, v in setting.items()) or "base"
    return f"{prefix}_" + re.sub(r"[^A-Za-z0-9._=,\-]", "_", text)[:80]


def plan_trials(grid: dict, seeds: int, first_seed: int, out: Path, overrides=()) -> list[Trial]:
    trials = []
    for index, setting in enumerate(settings(grid)):
        label = setting_label(index, setting)
        trials += [Trial(label, setting, seed, out / "runs" / label / f"seed_{seed}", tuple(overrides))
                   for seed in range(first_seed, first_seed + seeds)]
    return trials


def check(file: Path, trials: list[Trial]) -> None:
    """Every setting compiles, before any trial starts (a bad value fails at once, located)."""
    from composer.graph.build import build
    from composer.graph.plan import compile
    from composer.spec.schema import load

    for trial in {t.label: t for t in trials}.values():
        try:
            compile(build(load(file, trial.arguments)))
        except SpecError as err:
            raise SpecError(f"sweep setting {trial.label}: {err}") from None


def state(trial: Trial) -> str:
    """finished (eval.json written), resumable (a checkpoint), or new."""
    if not (trial.folder / "spec.yaml").is_file():
        return "new"
    status = summary(trial.folder, trial.folder.parent)["status"]
    return "finished" if status == "finished" else "resumable" if status.startswith("checkpoint") else "new"


def run_trial(file: Path, trial: Trial, logs: Path) -> dict:
    """Train one trial in its own process (resuming it where a checkpoint exists); its eval
    metrics and its wall and CPU seconds (CPU: user + system of the process and its threads)."""
    status = state(trial)
    if status != "finished":
        command = [sys.executable, "-m", "composer", "run", str(file), "--out", str(trial.folder), *trial.arguments]
        if status == "resumable":
            command.append("--resume")
        elif trial.folder.is_dir() and any(trial.folder.iterdir()):   # a trial that left no checkpoint
            command.append("--overwrite")
        logs.mkdir(parents=True, exist_ok=True)
        times = _timed(command, logs / f"{trial.name}.log")
        (trial.folder / "sweep_times.json").write_text(json.dumps(times))
    row = summary(trial.folder, trial.folder.parent)
    times_file = trial.folder / "sweep_times.json"
    times = json.loads(times_file.read_text()) if times_file.is_file() else {}
    return {"setting": trial.label, "values": trial.setting, "seed": trial.seed, "status": row["status"],
            "eval": row["eval"], **times}


def _timed(command: list[str], log: Path) -> dict:
    before, start = resource.getrusage(resource.RUSAGE_CHILDREN), time.time()
    with log.open("w") as out:
        code = subprocess.run(command, stdout=out, stderr=subprocess.STDOUT).returncode
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if code != 0:
        tail = "".join(log.read_text().splitlines(keepends=True)[-5:])
        raise ComposerError(f"trial failed (exit {code}; log {log}):\n{tail}")
    return {"wall_seconds": round(time.time() - start, 2), "cpu_seconds": round(cpu, 2),
            "load": round(os.getloadavg()[0], 2)}


def run_trials(file: Path, trials: list[Trial], logs: Path, jobs: int = 1, progress=print) -> list[dict]:
    """Every trial, up to `jobs` processes at a time; results in the trials' order. With several
    jobs, CPU seconds are shared out between concurrent trials and are then upper bounds."""
    def one(trial):
        result = run_trial(file, trial, logs)
        progress(f"{trial.name}: {result['status']}, " + ", ".join(f"{k} {_short(v)}" for k, v in result["eval"].items()))
        return result

    if jobs <= 1:
        return [one(t) for t in trials]
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        return list(pool.map(one, trials))


def mean_se(values: list[float]) -> tuple[float, float]:
    """Mean and standard error of the mean (sample standard deviation / sqrt(n); 0 for one value)."""
    n = len(values)
    mean = sum(values) / n
    if n < 2:
        return mean, 0.0
    return mean, math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1) / n)


def aggregate(results: list[dict]) -> list[dict]:
    """One row per setting: its values, the seeds, and mean/se of every numeric eval metric."""
    rows: dict[str, dict] = {}
    for result in results:
        row = rows.setdefault(result["setting"], {"setting": result["setting"], "values": result["values"],
                                                  "seeds": [], "metrics": {}})
        row["seeds"].append(result["seed"])
        for key, value in result["eval"].items():
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                row["metrics"].setdefault(key, []).append(float(value))
    for row in rows.values():
        row["metrics"] = {k: dict(zip(("mean", "se"), mean_se(v)), n=len(v)) for k, v in row["metrics"].items()}
    return list(rows.values())


def report_table(rows: list[dict], metrics: list[str]) -> str:
    """A Markdown table: setting | seeds | each metric's mean ± standard error."""
    lines = [["setting", "seeds", *metrics], ["---"] * (len(metrics) + 2)]
    lines += [[f"`{row['setting']}`", str(len(row["seeds"])), *(_cell(row["metrics"].get(m)) for m in metrics)]
              for row in rows]
    return "\n".join("| " + " | ".join(cells) + " |" for cells in lines)


def _cell(stat: dict | None) -> str:
    if stat is None:
        return "-"
    return f"{_short(stat['mean'])} ± {_short(stat['se'])}" if stat["n"] > 1 else _short(stat["mean"])


def _short(value) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _yaml(value) -> str:
    return yaml.safe_dump(value, default_flow_style=True, width=10_000).strip().removesuffix("\n...").strip()


def run_sweep(file: str | Path, grid: dict, seeds: int = 1, out: str | Path | None = None, jobs: int = 1,
              overrides=(), first_seed: int = 0, metric: str | None = None, progress=print) -> dict:
    """Train `file` for every grid setting x seed and write OUT/sweep.{json,md,png}; returns
    {"trials": [...], "settings": [...], "metrics": [...]}. A rerun with the same arguments resumes."""
    file = Path(file)
    if seeds < 1 or jobs < 1:
        raise SpecError(f"seeds and jobs are positive numbers, got seeds={seeds}, jobs={jobs}")
    out = Path(out) if out is not None else Path("sweeps") / file.stem
    manifest(out, {"file": str(file), "grid": grid, "seeds": seeds, "first_seed": first_seed,
                   "overrides": list(overrides)})
    trials = plan_trials(grid, seeds, first_seed, out, overrides)
    check(file, trials)
    results = run_trials(file, trials, out / "logs", jobs, progress)
    return write_results(out, results, metric)


def manifest(out: Path, asked: dict) -> None:
    """OUT/sweep.yaml records what the sweep is; a rerun into OUT must ask the same."""
    path = out / "sweep.yaml"
    if path.is_file():
        before = yaml.safe_load(path.read_text())
        if before != asked:
            changed = sorted(k for k in asked if before.get(k) != asked[k]) if isinstance(before, dict) else ["all"]
            raise SpecError(f"{out} holds a sweep with other {', '.join(changed)} ({path}): rerun it as it was "
                            "to resume, or give another --out")
        return
    out.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(asked, sort_keys=False))


def write_results(out: Path, results: list[dict], metric: str | None = None) -> dict:
    rows = aggregate(results)
    metrics = sorted({k for row in rows for k in row["metrics"]})
    if metric is not None and metric not in metrics:
        from composer.errors import did_you_mean

        raise SpecError(f"--metric {metric}: the trials report no such metric{did_you_mean(metric, metrics)}")
    summary_data = {"trials": results, "settings": rows, "metrics": metrics}
    (out / "sweep.json").write_text(json.dumps(summary_data, indent=2))
    shown = [metric] if metric else metrics
    (out / "sweep.md").write_text(report_table(rows, shown) + "\n")
    if shown:
        plot(rows, shown[0], out / "sweep.png")
    return summary_data


def plot(rows: list[dict], metric: str, path: Path) -> Path | None:
    """`metric` per setting, mean with standard-error bars (nothing when matplotlib is missing)."""
    try:
        from matplotlib.figure import Figure
    except ImportError:
        return None
    values = [row["metrics"].get(metric) for row in rows]
    kept = [(row["setting"], v) for row, v in zip(rows, values) if v is not None]
    figure = Figure(figsize=(max(4.0, 0.9 * len(kept) + 2), 3.6), layout="constrained")
    axes = figure.subplots()
    axes.errorbar(range(len(kept)), [v["mean"] for _, v in kept], yerr=[v["se"] for _, v in kept],
                  fmt="o", capsize=4)
    axes.set_xticks(range(len(kept)), [label for label, _ in kept], rotation=30, ha="right", fontsize=7)
    axes.set_ylabel(metric)
    axes.set_title(f"{metric}: mean ± s.e. over seeds")
    figure.savefig(path, dpi=120)
    return path
