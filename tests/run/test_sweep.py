"""composer sweep: grids x seeds as separate processes, resume, the table; the Optuna search."""
import json
import math

import pytest
import yaml

from composer import api
from composer.errors import ComposerError, SpecError
from composer.run import search, sweep
from conftest import GRAPHS

TINY = ["train.steps=4", "train.batch=64", "train.threads=1", "train.log_every=2", "train.sample_every=0",
        "train.checkpoint_every=0", "eval.n=200", "sample.n=16"]


def test_grid_values_parse_as_yaml_and_combine_in_order():
    grid = sweep.parse_grid(["optimizers.G.lr=[0.001, 1e-4]", "train.batch=[32, 64]", "schedule.order=[[G, D]]"])
    assert grid == {"optimizers.G.lr": [0.001, 1e-4], "train.batch": [32, 64], "schedule.order": [["G", "D"]]}
    assert sweep.settings(grid)[:2] == [{"optimizers.G.lr": 0.001, "train.batch": 32, "schedule.order": ["G", "D"]},
                                        {"optimizers.G.lr": 0.001, "train.batch": 64, "schedule.order": ["G", "D"]}]
    assert len(sweep.settings(grid)) == 4 and sweep.settings({}) == [{}]
    assert sweep.parse_grid(["train.batch=16"]) == {"train.batch": [16]}
    assert sweep.setting_label(3, {"schedule.order": ["G", "D"], "x": "a/b"}) == "S03_schedule.order=_G,_D_,x=a_b"
    assert search.label({"lr": 0.001}).startswith("P") and search.label({"lr": 0.001}).endswith("_lr=0.001")


@pytest.mark.parametrize("item, message", [
    ("train.batch", r"--grid train.batch: expected KEY=\[VALUE, ...\]"),
    ("train.batch=[]", "--grid train.batch=\\[\\]: no values"),
    ("train.batch=[1, 2", "the values are not YAML"),
])
def test_bad_grids_are_refused(item, message):
    with pytest.raises(SpecError, match=message):
        sweep.parse_grid([item])


def test_a_grid_key_given_twice_is_refused():
    with pytest.raises(SpecError, match="--grid a is given twice"):
        sweep.parse_grid(["a=[1]", "a=[2]"])


def test_mean_and_standard_error_per_setting():
    assert sweep.mean_se([2.0]) == (2.0, 0.0)
    mean, se = sweep.mean_se([1.0, 2.0, 3.0])
    assert mean == 2.0 and math.isclose(se, 1 / math.sqrt(3))
    results = [{"setting": "S00", "values": {"a": 1}, "seed": s, "eval": {"m": float(s), "name": "x"}} for s in range(3)]
    (row,) = sweep.aggregate(results)
    assert row["seeds"] == [0, 1, 2] and row["metrics"] == {"m": {"mean": 1.0, "se": pytest.approx(1 / math.sqrt(3)), "n": 3}}
    assert sweep.report_table([row], ["m", "other"]).splitlines()[2] == "| `S00` | 3 | 1 ± 0.5774 | - |"


def test_a_sweep_folder_holds_one_sweep(tmp_path):
    sweep.manifest(tmp_path, {"file": "a.yaml", "seeds": 2})
    sweep.manifest(tmp_path, {"file": "a.yaml", "seeds": 2})           # the same sweep again: resumes
    with pytest.raises(SpecError, match=r"holds a sweep with other seeds .*rerun it as it was to resume, or give another --out"):
        sweep.manifest(tmp_path, {"file": "a.yaml", "seeds": 3})


def test_a_bad_setting_fails_before_any_trial_runs(tmp_path):
    with pytest.raises(SpecError, match=r"sweep setting S01_optimizers.G.lr=-1: .*optimizers.G"):
        api.sweep(GRAPHS / "gan_ring.yaml", ["optimizers.G.lr=[0.001, -1]"], out=tmp_path, overrides=TINY)
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("item, message", [
    ("lr=float:1e-3:1e-5", "LOW < HIGH"),
    ("lr=float:0:1:log", "LOW > 0 for log"),
    ("lr=flot:1:2", "did you mean 'float'"),
    ("loss=choice:hinge", "choice takes a YAML list"),
    ("depth=int:1.5:3", "LOW and HIGH must be int numbers"),
])
def test_search_spaces(item, message):
    assert search.parse_space(["lr=float:1e-5:1e-3:log", "depth=int:1:4", "loss=choice:[hinge, lsgan]"]) == {
        "lr": ("float", (1e-5, 1e-3, True)), "depth": ("int", (1, 4, False)), "loss": ("choice", ["hinge", "lsgan"])}
    with pytest.raises(SpecError, match=message):
        search.parse_space([item])


def test_search_needs_its_options():
    with pytest.raises(ComposerError, match="needs --search KEY=..., --metric NAME and --direction"):
        api.sweep(GRAPHS / "gan_ring.yaml", trials=2, search=["optimizers.G.lr=float:1e-4:1e-3"])
    with pytest.raises(ComposerError, match="--grid and --trials do not mix"):
        api.sweep(GRAPHS / "gan_ring.yaml", ["train.batch=[1]"], trials=2)
    with pytest.raises(ComposerError, match="needs --trials"):
        api.sweep(GRAPHS / "gan_ring.yaml", search=["a=int:1:2"])


@pytest.mark.slow
def test_two_settings_by_three_seeds_then_resume(tmp_path):
    out = tmp_path / "sweep"
    result = api.sweep(GRAPHS / "gan_ring.yaml", ["optimizers.G.lr=[0.001, 0.0001]"], seeds=3, out=out, jobs=2,
                       overrides=TINY, quiet=True)
    runs = sorted(p.relative_to(out / "runs").as_posix() for p in (out / "runs").glob("*/seed_*"))
    assert runs == [f"S0{i}_optimizers.G.lr={lr}/seed_{s}" for i, lr in enumerate(["0.001", "0.0001"]) for s in range(3)]
    assert [r["status"] for r in result["trials"]] == ["finished"] * 6
    assert [row["seeds"] for row in result["settings"]] == [[0, 1, 2], [0, 1, 2]]
    assert result["settings"][0]["metrics"]["mixture.hq_fraction"]["n"] == 3
    assert all(t["cpu_seconds"] > 0 and t["wall_seconds"] > 0 for t in result["trials"])
    table = (out / "sweep.md").read_text().splitlines()
    assert len(table) == 4 and "±" in table[2] and (out / "sweep.png").stat().st_size > 1000
    assert json.loads((out / "sweep.json").read_text())["metrics"] == result["metrics"]
    # an interrupted sweep: one trial lost its eval.json (it has its final checkpoint), one never ran
    (out / "runs" / runs[1] / "eval.json").unlink()
    kept = (out / "runs" / runs[0] / "eval.json").stat().st_mtime_ns
    again = api.sweep(GRAPHS / "gan_ring.yaml", ["optimizers.G.lr=[0.001, 0.0001]"], seeds=3, out=out, jobs=1,
                      overrides=TINY, quiet=True)
    assert (out / "runs" / runs[0] / "eval.json").stat().st_mtime_ns == kept        # finished: not rerun
    assert again["trials"][1]["status"] == "finished"
    assert again["trials"][1]["eval"] == result["trials"][1]["eval"]                 # resumed, same result
    assert yaml.safe_load((out / "sweep.yaml").read_text())["seeds"] == 3


@pytest.mark.slow
def test_an_optuna_search_in_sqlite_resumes(tmp_path):
    pytest.importorskip("optuna")
    out = tmp_path / "search"
    space = ["optimizers.G.lr=float:1e-4:1e-2:log"]
    args = dict(search=space, metric="mixture.sliced_wasserstein", direction="minimize", out=out, overrides=TINY,
                quiet=True)
    first = api.sweep(GRAPHS / "gan_ring.yaml", trials=1, **args)
    assert (out / "optuna.db").is_file() and len(first["trials"]) == 1
    second = api.sweep(GRAPHS / "gan_ring.yaml", trials=2, **args)          # the study continues: one more
    assert len(second["trials"]) == 2 and second["best"]["value"] == min(
        t["eval"]["mixture.sliced_wasserstein"] for t in second["trials"])
    assert second["trials"][0] == first["trials"][0]
