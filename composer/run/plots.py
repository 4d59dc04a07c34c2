"""`composer plot RUN`: loss curves of a run, one panel per phase of its plan (the terms that
phase minimises), a panel of learning rates, and a panel of any other logged metric over time
(evaluation metrics when they are logged during training); the final eval.json values are
written under the title. Drawn with matplotlib's object API (`matplotlib.figure.Figure`: no
pyplot state, no GUI backend), an optional extra: `pip install 'composer-graphs[plots]'`.
"""
from __future__ import annotations

import json
import textwrap
import warnings
from pathlib import Path

from composer.errors import ComposerError
from composer.run.folder import RunFolder

MISSING = "plots need matplotlib: install composer-graphs[plots] (pip install 'composer-graphs[plots]')"


def read_metrics(path: Path) -> list[dict]:
    """The records of a metrics.jsonl file (a line cut short by a kill is skipped)."""
    records = []
    for line in path.read_text().splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return [r for r in records if isinstance(r, dict) and "step" in r]


def phase_terms(plan) -> dict[str, list[str]]:
    """{phase: the terms it minimises}, in schedule order."""
    return {p.name: list(p.terms) for p in plan.phases}


def panels(records: list[dict], phases: dict[str, list[str]]) -> dict[str, list[str]]:
    """Panel title -> the logged keys it shows: `phase NAME` (its terms), `learning rates`,
    `metrics` (everything else that was logged)."""
    logged = list(dict.fromkeys(k for r in records for k in r if k not in ("step", "seconds")))
    out = {f"phase {name}": [t for t in terms if t in logged] for name, terms in phases.items()}
    out = {title: keys for title, keys in out.items() if keys}
    shown = {k for keys in out.values() for k in keys}
    rates = [k for k in logged if k.startswith("lr.")]
    rest = [k for k in logged if k not in shown and k not in rates]
    if not phases and rest:          # no plan: every loss in one panel
        return {"losses": rest, **({"learning rates": rates} if rates else {})}
    return {**out, **({"learning rates": rates} if rates else {}), **({"metrics": rest} if rest else {})}


def plot(records: list[dict], phases: dict[str, list[str]], out: Path, title: str = "",
         results: dict | None = None) -> Path:
    """Write the PNG: one panel per entry of `panels`, value against step."""
    try:
        from matplotlib.figure import Figure
        from matplotlib.ticker import MaxNLocator
    except ImportError:
        raise ComposerError(MISSING) from None
    if not records:
        raise ComposerError(f"{out.parent}: nothing logged to plot (metrics.jsonl is empty or missing)")
    chosen = panels(records, phases)
    figure = Figure(figsize=(4.2 * len(chosen), 3.4))    # fixed margins: constrained layout doubles the time
    for axes, (name, keys) in zip(figure.subplots(1, len(chosen), squeeze=False)[0], chosen.items()):
        for key in keys:
            points = [(r["step"], r[key]) for r in records if isinstance(r.get(key), (int, float))]
            axes.plot([p[0] for p in points], [p[1] for p in points], label=key, linewidth=1.2,
                      marker="o" if len(points) < 20 else None, markersize=3)
        axes.set_title(name, fontsize=10)
        axes.set_xlabel("step")
        axes.grid(alpha=0.3)
        axes.legend(fontsize=7)
        axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    caption = textwrap.fill("eval: " + headline(results), width=60 * len(chosen)) if results else ""
    heading = title + (f"\n{caption}" if caption else "")
    figure.suptitle(heading, fontsize=9)
    figure.subplots_adjust(left=0.5 / figure.get_figwidth(), right=1 - 0.15 / figure.get_figwidth(), bottom=0.15,
                           top=1 - (0.45 + 0.16 * heading.count("\n")) / 3.4, wspace=0.25)
    out.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(out, dpi=120)
    return out


def headline(results: dict, per_metric: int = 3) -> str:
    """The first values of each eval metric (metrics report their headline numbers first)."""
    counts: dict[str, int] = {}
    shown = []
    for key, value in results.items():
        family = key.rsplit(".", 1)[0]
        counts[family] = counts.get(family, 0) + 1
        if counts[family] <= per_metric:
            shown.append(f"{key} {value:.4g}" if isinstance(value, float) else f"{key} {value}")
    return ", ".join(shown)


def plot_run(run_dir: str | Path, out: str | Path | None = None, plan=None) -> Path:
    """The loss plot of a run folder (default RUN/loss.png). The phases come from `plan`, or
    from the run's spec.yaml compiled again; when that fails (a plugin gone), one panel."""
    run = RunFolder(run_dir).require()
    folder = run.root
    records = read_metrics(run.metrics) if run.metrics.is_file() else []
    if plan is None:
        plan = _plan(run)
    phases = phase_terms(plan) if plan is not None else {}
    results = _results(run.eval)
    name = plan.spec.name if plan is not None else folder.name
    return plot(records, phases, Path(out) if out is not None else run.plot, f"{name} ({folder})", results)


def _plan(run: RunFolder):
    """The run's spec.yaml compiled again (through the graph stages: no import of the API)."""
    from composer.graph.build import build
    from composer.graph.plan import compile
    from composer.spec.schema import load

    try:
        return compile(build(load(run.spec)))
    except ComposerError as err:
        warnings.warn(f"{run.root}/{run.SPEC} does not compile ({err}); all losses in one panel", stacklevel=3)
        return None


def _results(path: Path) -> dict:
    try:
        data = json.loads(path.read_text()) if path.is_file() else {}
    except json.JSONDecodeError:
        return {}
    return {k: v for k, v in data.items() if k not in ("step", "seconds")}


def plot_after_run(run_dir: Path, plan) -> Path | None:
    """The loss plot at the end of a run: nothing when matplotlib is missing or nothing was
    logged; a failure is a warning, never a failed run."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return None
    if not RunFolder(run_dir).metrics.is_file():
        return None
    try:
        return plot_run(run_dir, plan=plan)
    except Exception as err:  # noqa: BLE001 - the run is finished; a plot must not fail it
        warnings.warn(f"could not plot {run_dir}: {err}", stacklevel=2)
        return None
