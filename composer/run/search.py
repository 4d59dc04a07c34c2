"""An Optuna search over a graph's settings: each Optuna trial is one setting, trained over the
sweep's seeds as separate `composer run` processes (composer.run.sweep), scored by the mean of one
declared eval metric.

    --search optimizers.G.lr=float:1e-5:1e-3:log  --search model.width=int:16:64  --search loss=choice:[a, b]

The study lives in an SQLite file (default OUT/optuna.db), so an interrupted search continues
where it stopped and several machines can share one study through `--storage` (one database,
each machine its own `--out` or a shared folder). A setting's run folders are named after its
values, so a trial that an interrupted process left unfinished is asked again with the same values
and its runs resume from their checkpoints.
"""
from __future__ import annotations

import hashlib
import os
import socket
from pathlib import Path

import yaml

from composer.errors import ComposerError, SpecError, did_you_mean
from composer.run.sweep import Trial, check, manifest, run_trials, setting_label, write_results
from composer.spec.yamlio import Loader

KINDS = ("float", "int", "choice")
DIRECTIONS = ("minimize", "maximize")


def parse_space(items: list[str]) -> dict[str, tuple]:
    """KEY=float:LOW:HIGH[:log] | int:LOW:HIGH[:log] | choice:[A, B, ...] -> {key: (kind, args)}."""
    space = {}
    for item in items:
        key, sep, text = item.partition("=")
        kind, _, rest = text.partition(":")
        if not sep or not key or kind not in KINDS:
            raise SpecError(f"--search {item}: expected KEY=float:LOW:HIGH[:log], KEY=int:LOW:HIGH[:log] "
                            f"or KEY=choice:[A, B]{did_you_mean(kind, KINDS) if sep else ''}")
        if key in space:
            raise SpecError(f"--search {key} is given twice")
        space[key] = (kind, _distribution(item, kind, rest))
    return space


def _distribution(item: str, kind: str, text: str):
    if kind == "choice":
        values = yaml.load(text, Loader=Loader) if text else None
        if not isinstance(values, list) or not values:
            raise SpecError(f"--search {item}: choice takes a YAML list, e.g. choice:[hinge, non_saturating]")
        return values
    parts = text.split(":")
    log = parts[2:] == ["log"]
    try:
        low, high = (float(p) if kind == "float" else int(p) for p in parts[:2])
    except ValueError:
        raise SpecError(f"--search {item}: LOW and HIGH must be {kind} numbers") from None
    if len(parts) not in (2, 3) or (len(parts) == 3 and not log) or not low < high or (log and low <= 0):
        raise SpecError(f"--search {item}: expected {kind}:LOW:HIGH[:log] with LOW < HIGH (LOW > 0 for log)")
    return low, high, log


def suggest(trial, space: dict) -> dict:
    """The setting Optuna asks for."""
    setting = {}
    for key, (kind, args) in space.items():
        if kind == "choice":
            setting[key] = trial.suggest_categorical(key, args)
        elif kind == "float":
            setting[key] = trial.suggest_float(key, args[0], args[1], log=args[2])
        else:
            setting[key] = trial.suggest_int(key, args[0], args[1], log=args[2])
    return setting


def label(setting: dict) -> str:
    """A folder name fixed by the setting's values (so a retried setting finds its runs)."""
    digest = hashlib.sha1(yaml.safe_dump(setting, sort_keys=True).encode()).hexdigest()[:8]
    return setting_label(f"P{digest}", setting)


def run_search(file: str | Path, space: dict, trials: int, metric: str, direction: str, seeds: int = 1,
               out: str | Path | None = None, jobs: int = 1, overrides=(), first_seed: int = 0,
               storage: str | None = None, study: str | None = None, progress=print) -> dict:
    """Run Optuna trials until the study holds `trials` complete ones; write OUT/sweep.{json,md,png}."""
    optuna = _optuna()
    file = Path(file)
    if direction not in DIRECTIONS:
        raise SpecError(f"--direction {direction}: expected one of {DIRECTIONS}")
    if trials < 1 or seeds < 1 or jobs < 1:
        raise SpecError(f"trials, seeds and jobs are positive numbers, got {trials}, {seeds}, {jobs}")
    out = Path(out) if out is not None else Path("sweeps") / file.stem
    manifest(out, {"file": str(file), "search": {k: [kind, list(a) if kind != "choice" else a]
                                                  for k, (kind, a) in space.items()},
                   "seeds": seeds, "first_seed": first_seed, "overrides": list(overrides), "metric": metric,
                   "direction": direction})
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = storage or f"sqlite:///{(out / 'optuna.db').resolve()}"
    studied = optuna.create_study(study_name=study or file.stem, storage=storage, direction=direction,
                                  load_if_exists=True)
    _retry_abandoned(optuna, studied)

    def objective(trial):
        setting = suggest(trial, space)
        trial.set_user_attr("process", _process())
        runs = [Trial(label(setting), setting, seed, out / "runs" / label(setting) / f"seed_{seed}", tuple(overrides))
                for seed in range(first_seed, first_seed + seeds)]
        check(file, runs[:1])
        results = run_trials(file, runs, out / "logs", 1, progress)
        values = [r["eval"].get(metric) for r in results]
        if any(not isinstance(v, (int, float)) for v in values):
            raise ComposerError(f"--metric {metric}: trial {runs[0].label} reports {sorted(results[0]['eval'])}")
        trial.set_user_attr("results", results)
        return sum(values) / len(values)

    done = len(_complete(optuna, studied))
    if done < trials:
        studied.optimize(objective, n_trials=trials - done, n_jobs=jobs, catch=())
    results = [r for t in _complete(optuna, studied) for r in t.user_attrs.get("results", [])]
    summary = write_results(out, results, metric)
    best = studied.best_trial
    return {**summary, "best": {"value": best.value, "setting": best.params, "trial": best.number}}


def _complete(optuna, study) -> list:
    return study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))


def _process() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _retry_abandoned(optuna, study) -> None:
    """Trials this machine left running (its process is gone) are failed and asked again with the
    same values, so their run folders resume; other machines' running trials are left alone."""
    host = socket.gethostname()
    for trial in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
        owner = trial.user_attrs.get("process", "")
        name, _, pid = owner.partition(":")
        if name == host and pid.isdigit() and not _alive(int(pid)):
            study.tell(trial.number, state=optuna.trial.TrialState.FAIL)
            study.enqueue_trial(trial.params)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _optuna():
    try:
        import optuna
    except ImportError:
        raise ComposerError("an Optuna search needs optuna: pip install 'composer-graphs[sweep]'") from None
    return optuna
