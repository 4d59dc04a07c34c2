"""`composer diff`: sentences about what differs in two graph files and their compiled plans."""
import pytest

from composer import api
from composer.tools.cli import main
from composer.graph.diff import diff, diff_plans, diff_specs

RING_YAML = """\
name: ring
inputs:
  real: {source: ring}
  z: {noise: normal, shape: [2]}
modules:
  G: {block: MLP, in_features: 2, hidden: 32, depth: 2, out_features: 2}
  D: {block: MLP, in_features: 2, hidden: 32, depth: 2, out_features: 1}
flow:
  fake: G(z)
objectives:
  gan: {recipe: adversarial, loss: non_saturating, critic: D, real: real, fake: fake, penalty: r1, penalty_weight: 0.1}
optimizers:
  D: {params: [D], lr: 2.0e-4}
  G: {params: [G], lr: 2.0e-4}
schedule:
  order: [D, G]
"""
ADD_E = ["modules.E={block: MLP, in_features: 2, hidden: 16, depth: 1, out_features: 2}",
         "flow.h=E(z)", "flow.fake=G(h)", "optimizers.G.params=[G, E]"]


@pytest.fixture(scope="module")
def ring_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("diff") / "ring.yaml"
    path.write_text(RING_YAML)
    return path


@pytest.fixture(scope="module")
def ring(ring_file):
    return api.plan(ring_file)


def test_equal_files_have_no_differences(ring, ring_file):
    assert diff(ring, api.plan(ring_file)) == []


def test_a_changed_weight(ring, ring_file):
    changed = api.plan(ring_file, ["objectives.gan.penalty_weight=5"])
    assert diff_specs(ring.spec, changed.spec) == ["objectives.gan.penalty_weight 0.1 -> 5"]
    assert diff_plans(ring, changed) == ["term gan.D_r1 weight 0.1 -> 5"]


def test_a_changed_schedule_repeat(ring, ring_file):
    changed = api.plan(ring_file, ["schedule.repeat={D: 5}"])
    assert diff(ring, changed) == [
        "schedule.repeat (none) -> {D: 5}",
        "phase D steps 1 -> 5 times per G step",
        "G forward calls 1 -> 5 per step",        # each extra D step draws fresh fakes
        "D forward calls 3 -> 11 per step",       # D(real), shared with R1, and D(fake) per D step
    ]


def test_an_added_module_trained_by_an_optimizer(ring, ring_file):
    changed = api.plan(ring_file, ADD_E)
    assert diff(ring, changed) == [
        "module E added (block MLP)",
        "flow.fake G(z) -> G(h)",
        "flow h added: E(z)",
        "optimizer G now also trains E",
        "phase G now also trains E",
        "E is a new module: 82 parameters, 1 forward call(s) per step",  # phase G reuses fake,
        "parameters in all 2,403 -> 2,485",
    ]
    assert diff_specs(changed.spec, ring.spec)[:3] == ["module E removed (block MLP)", "flow.fake G(h) -> G(z)",
                                                       "flow h removed: E(z)"]
    assert "optimizer G no longer trains E" in diff_specs(changed.spec, ring.spec)


def test_a_removed_penalty_and_a_smaller_module(ring, ring_file):
    lines = diff(ring, api.plan(ring_file, ["objectives.gan.penalty=null", "modules.D.hidden=16"]))
    assert lines == ["modules.D.hidden 32 -> 16", "objectives.gan.penalty r1 -> (none)",
                     "phase D no longer minimises gan.D_r1", "term gan.D_r1 removed",
                     # D forward calls stay 3: R1 shared the loss term's D(real)
                     "D parameters 1,185 -> 337",                      # 2*h+h + h*h+h + h+1
                     "parameters in all 2,403 -> 1,555"]


def test_cli_exit_codes(ring_file, tmp_path, capsys):
    other = tmp_path / "ring_b.yaml"
    other.write_text(ring_file.read_text().replace("penalty_weight: 0.1", "penalty_weight: 0.5"))
    assert main(["diff", str(ring_file), str(ring_file), "train.steps=10"]) == 0
    assert capsys.readouterr().out == f"{ring_file} and {ring_file}: no differences\n"
    assert main(["diff", str(ring_file), str(other)]) == 1
    assert capsys.readouterr().out == (f"{ring_file} -> {other}: 2 difference(s)\n"
                                       "  objectives.gan.penalty_weight 0.1 -> 0.5\n"
                                       "  term gan.D_r1 weight 0.1 -> 0.5\n")
    bad = tmp_path / "bad.yaml"
    bad.write_text(ring_file.read_text().replace("fake: G(z)", "fake: Q(z)"))
    assert main(["diff", str(ring_file), str(bad)]) == 2
    assert capsys.readouterr().err.startswith(f"error: {bad}:")
