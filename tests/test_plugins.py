"""Plugins: the example package (examples/composer-plugin-example) installed into a temporary
folder, the environment untouched, and driven through the CLI in subprocesses; plugins
registered in-process; the errors for a missing plugin and for a name registered twice."""
import inspect
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch
from torch import nn

from composer import api, plugins, registry
from composer.tools.cli import main
from composer.data import Table
from composer.errors import ComposerError, SpecError
from composer.data.source import Source, point_fields
from conftest import ROOT
from specs import small_2d_gan

EXAMPLE = ROOT / "examples" / "composer-plugin-example"
GRAPH = EXAMPLE / "spiral_gan.yaml"
TINY = ["train.steps=3", "train.batch=16", "train.log_every=1", "train.sample_every=0",
        "train.checkpoint_every=3", "sample.n=32", "eval.n=64"]


# ------------------------------------------------------------------ the installed example
@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """The example installed with pip into its own folder (offline, no dependencies, no cache):
    `--target` writes the package and its dist-info, entry points included, which
    importlib.metadata finds on PYTHONPATH. Built from a copy so the source tree stays clean."""
    tmp = tmp_path_factory.mktemp("plugin")
    shutil.copytree(EXAMPLE, tmp / "src", ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
                    "--no-index", "--no-cache-dir", "--disable-pip-version-check", "--target", str(tmp / "site"),
                    str(tmp / "src")], check=True, capture_output=True, timeout=120)
    return tmp / "site"


def _env(site) -> dict:
    path = os.pathsep.join(p for p in (str(site), os.environ.get("PYTHONPATH", "")) if p)
    return {**os.environ, "PYTHONPATH": path, "OMP_NUM_THREADS": "1"}


def _composer(site, *commands) -> list[subprocess.CompletedProcess]:
    """Run `python -m composer ARGS` for each ARGS at once (each pays the torch import)."""
    procs = [subprocess.Popen([sys.executable, "-m", "composer", *map(str, args)], cwd=ROOT, env=_env(site),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for args in commands]
    done = []
    for args, proc in zip(commands, procs):
        out, err = proc.communicate(timeout=120)
        done.append(subprocess.CompletedProcess(args, proc.returncode, out, err))
    return done


@pytest.mark.slow
def test_install_writes_the_entry_point(site):
    (entry_points,) = site.glob("composer_plugin_example-*.dist-info/entry_points.txt")
    assert "[composer.plugins]\nexample = composer_plugin_example:register" in entry_points.read_text()


@pytest.fixture(scope="module")
def first(site, tmp_path_factory):
    """validate, plan and a 3-step run, started together (on two cores the torch imports
    overlap); the run's folder as `out`."""
    out = tmp_path_factory.mktemp("spiral") / "run"
    names = ("validate", "plan", "run")
    done = _composer(site, ["validate", GRAPH], ["plan", GRAPH], ["run", GRAPH, "--out", out, *TINY])
    return {"out": out, **dict(zip(names, done))}


@pytest.mark.slow
def test_validate_and_plan_through_the_cli(first):
    validate, plan = first["validate"], first["plan"]
    assert validate.returncode == 0, validate.stderr
    assert ": ok (9 nodes, 2 modules" in validate.stdout
    assert plan.returncode == 0, plan.stderr
    assert "spiral(arms=2, turns=1.0, std=0.02)" in plan.stdout
    assert "1 * energy_distance(fake, real)" in plan.stdout
    assert plan.stdout.index("phase G") < plan.stdout.index("energy.loss")   # the term moves G only


@pytest.fixture(scope="module")
def run_dir(first):
    assert first["run"].returncode == 0, first["run"].stderr
    return first["out"]


@pytest.mark.slow
def test_run_writes_a_run_folder_that_names_the_plugin(run_dir):
    assert "plugins:\n- example" in (run_dir / "spec.yaml").read_text()
    assert (run_dir / "weights.safetensors").exists()
    assert "energy.distance" in json.loads((run_dir / "eval.json").read_text())
    logged = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert any("energy.loss" in row for row in logged)


@pytest.mark.slow
def test_the_run_folder_reopens_for_sample_and_eval(site, run_dir, tmp_path):
    sample, evaluate = _composer(site, ["sample", run_dir, "-n", "20", "-o", tmp_path / "s.npy"],
                                 ["eval", run_dir, "--json"])
    assert sample.returncode == 0, sample.stderr
    points = np.load(tmp_path / "s.npy")
    assert points.shape == (20, 2) and np.isfinite(points).all()
    assert evaluate.returncode == 0, evaluate.stderr
    distance = json.loads(evaluate.stdout)["energy.distance"]
    assert np.isfinite(distance) and distance >= 0   # a V-statistic energy distance is never negative


@pytest.mark.slow
def test_a_run_folder_without_its_plugin_installed_names_it(run_dir, tmp_path, capsys):
    if "example" in plugins.installed():
        pytest.skip("the example plugin is installed in this environment")
    assert main(["sample", str(run_dir), "-n", "4", "-o", str(tmp_path / "s.npy")]) == 2
    err = capsys.readouterr().err
    assert "spec.yaml" in err and "plugins.0: plugin 'example' is not installed" in err


# ------------------------------------------------------------------ errors, in-process plugins
def test_a_graph_naming_a_missing_plugin_fails_at_the_plugins_line(tmp_path, capsys):
    graph = tmp_path / "g.yaml"
    graph.write_text("name: g\nplugins: [not_a_plugin]\n" + GRAPH.read_text().split("plugins: [example]\n")[1])
    assert main(["validate", str(graph)]) == 2
    err = capsys.readouterr().err
    assert f"{graph}:2:" in err and "plugins.0: plugin 'not_a_plugin' is not installed" in err
    assert "pip install" in err and "entry point 'not_a_plugin' in the group 'composer.plugins'" in err


class Affine(nn.Module):
    """y = a ⊙ x + b, one scale and shift per feature."""

    def __init__(self, *, features: int):
        super().__init__()
        self.a, self.b = nn.Parameter(torch.ones(features)), nn.Parameter(torch.zeros(features))

    def forward(self, x):
        return self.a * x + self.b


def blob(*, n: int = 500, seed: int = 0) -> Table:
    """A standard normal blob in 2-D."""
    return Table(x=torch.randn(n, 2, generator=torch.Generator().manual_seed(seed)), kind="points")


def _graph(plugin: str, **inputs) -> dict:
    data = small_2d_gan()
    data["plugins"] = [plugin]
    data["inputs"].update(inputs)
    data.pop("eval")
    return data


def test_an_in_process_plugin_works_through_the_api(scratch):
    def register(r):
        r.blocks.add("TestAffine", Affine)
        r.sources.add("test_blob", Source(blob, lambda args: point_fields()))

    plugins.register_plugin("inproc", register)
    data = _graph("inproc", real={"source": "test_blob", "n": 64}, z={"noise": "normal", "shape": [2]})
    data["modules"]["G"] = {"block": "TestAffine", "features": 2}
    compiled = api.plan(api.from_dict(data))
    assert "test_blob(n=64)" in api.format_table(compiled)
    assert compiled.graph.param_counts["G"] == 4
    assert registry.get("blocks").origin["TestAffine"] == "plugin inproc"
    assert registry.get("sources").doc("test_blob") == "A standard normal blob in 2-D."


def test_a_plugin_entry_can_carry_its_example(scratch):
    plugins.register_plugin("inproc", lambda r: r.blocks.add("TestAffine", Affine,
                                                             example="{block: TestAffine, features: 2}"))
    plugins.load("inproc")
    assert registry.get("blocks").example("TestAffine") == "{block: TestAffine, features: 2}"


def test_list_shows_a_loaded_plugin_entry_and_its_origin(scratch, capsys):
    plugins.register_plugin("inproc", lambda r: r.blocks.add("TestAffine", Affine))
    plugins.load("inproc")
    assert main(["list", "blocks"]) == 0
    out = capsys.readouterr().out
    assert "TestAffine(features)  [plugin inproc]" in out and "y = a ⊙ x + b" in out


def test_the_example_keeps_the_registry_contracts(scratch, monkeypatch):
    """What tests/test_registries.py checks of every built-in entry, for the example's entries."""
    monkeypatch.syspath_prepend(str(EXAMPLE))
    from composer_plugin_example import register

    plugins.register_plugin("example_source", register)
    plugins.load("example_source")
    added = {kind: [n for n, o in registry.get(kind).origin.items() if o == "plugin example_source"]
             for kind in registry.KINDS}
    assert {k: v for k, v in added.items() if v} == {"blocks": ["SirenMLP"], "recipes": ["energy_distance"],
                                                     "sources": ["spiral"], "metrics": ["energy"]}
    assert all(registry.get(kind).doc(name) for kind, names in added.items() for name in names)
    with torch.device("meta"):
        y = registry.get("blocks")["SirenMLP"](in_features=4, hidden=8, depth=2, out_features=2)(torch.empty(3, 4))
    assert y.shape == (3, 2)
    source = registry.get("sources")["spiral"]
    table = source(n=100)
    assert source.fields_of({}) == {k: (tuple(v.shape[1:]), v.dtype) for k, v in table.columns().items()}
    assert list(inspect.signature(registry.get("metrics")["energy"]).parameters)[:2] == ["samples", "table"]


def test_the_example_energy_distance_is_the_v_statistic(monkeypatch):
    monkeypatch.syspath_prepend(str(EXAMPLE))
    from composer_plugin_example.energy import energy_terms

    x, y = torch.tensor([[0.0], [2.0]], dtype=torch.float64), torch.tensor([[1.0], [1.0], [4.0]], dtype=torch.float64)
    cross = sum(abs(a - b) for a in (0, 2) for b in (1, 1, 4)) / 6
    within_x, within_y = sum(abs(a - b) for a in (0, 2) for b in (0, 2)) / 4, sum(
        abs(a - b) for a in (1, 1, 4) for b in (1, 1, 4)) / 9
    assert energy_terms(x, y).mean().item() == pytest.approx(2 * cross - within_x - within_y)
    assert energy_terms(y, y).mean().item() == pytest.approx(0, abs=1e-12)   # zero for equal samples


def test_a_graph_without_plugins_does_not_see_an_unloaded_plugin(scratch):
    plugins.register_plugin("inproc", lambda r: r.blocks.add("TestAffine", Affine))
    data = small_2d_gan()
    data["modules"]["G"] = {"block": "TestAffine", "features": 4}
    with pytest.raises(SpecError, match=r"modules.G.block: unknown block 'TestAffine'"):
        api.plan(api.from_dict(data))


def test_registering_a_built_in_name_names_who_registered_it(scratch):
    plugins.register_plugin("dup", lambda r: r.blocks.add("MLP", Affine))
    with pytest.raises(SpecError, match=r"plugins.0: block 'MLP' is already registered \(by composer\); "
                                        r"plugin dup cannot register another entry under that name"):
        api.plan(api.from_dict(_graph("dup")))


def test_two_plugins_registering_one_name(scratch):
    plugins.register_plugin("first", lambda r: r.recipes.add("twice", lambda name, /: []))
    plugins.register_plugin("second", lambda r: r.recipes.add("twice", lambda name, /: []))
    plugins.load("first")
    with pytest.raises(ComposerError, match=r"recipe 'twice' is already registered \(by plugin first\); "
                                            r"plugin second cannot"):
        plugins.load("second")


def test_registering_the_same_entry_again_is_allowed(scratch):
    entries = registry.get("blocks")
    assert entries.add("MLP", entries["MLP"]) is entries["MLP"]


def test_a_failing_registration_function_is_reported_with_the_plugin(scratch):
    def register(r):
        raise RuntimeError("boom")

    plugins.register_plugin("broken", register)
    with pytest.raises(SpecError, match=r"plugins.0: plugin 'broken': its registration function failed: boom"):
        api.plan(api.from_dict(_graph("broken")))


def test_an_unknown_registry_kind_in_a_registration_function(scratch):
    plugins.register_plugin("typo", lambda r: r.block.add("X", Affine))
    with pytest.raises(SpecError, match=r"unknown registry 'block' \(did you mean 'blocks'\?\)"):
        api.plan(api.from_dict(_graph("typo")))


def test_a_bare_function_is_a_source(scratch):
    plugins.register_plugin("bare", lambda r: r.sources.add("test_bare", blob))
    api.plan(api.from_dict(_graph("bare", real={"source": "test_bare"})))
