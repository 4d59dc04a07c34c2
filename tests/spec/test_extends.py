"""`extends:`: merge semantics (mappings merge, the rest replaces, `~delete` removes, `name` is not
inherited), paths relative to the file, errors located in the file that holds the mistake, cycles,
missing files; and `composer validate --print`, whose output parses back to the same Spec."""
import pytest
import yaml

from composer.tools import cli
from composer.api import from_dict, resolved
from composer.errors import SpecError
from composer.spec.schema import load
from composer.spec.dump import to_yaml

BASE = """\
name: base
inputs:
  real: {source: digits, size: 8}
  z: {noise: normal, shape: [16]}
modules:
  G:
    - {block: MLP, in_features: "${inputs.z.shape.0}", hidden: 32, depth: 1, out_features: 64}
    - {block: Reshape, shape: [1, 8, 8]}
  D: [{block: Flatten}, {block: MLP, in_features: 64, hidden: 32, depth: 1, out_features: 1}]
flow:
  fake: G(z)
objectives:
  gan: {recipe: adversarial, critic: D, real: real, fake: fake, penalty: r1, penalty_weight: 1.0}
optimizers:
  D: {params: [D], lr: 2.0e-4, betas: [0.5, 0.999]}
  G: {params: [G], lr: "${optimizers.D.lr}", betas: [0.5, 0.999]}
schedule:
  order: [D, G]
train:
  steps: 10
  batch: 16
  grad_clip: 1.0
  ema: {G: 0.999}
sample: {output: fake, n: 16}
"""


def write(folder, name: str, text: str):
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def by_name(entries):
    return {e.name: e for e in entries}


def test_mappings_merge_lists_and_scalars_replace_null_is_a_value(tmp_path):
    write(tmp_path, "base.yaml", BASE)
    spec = load(write(tmp_path, "wide.yaml", "extends: base.yaml\n"
                      "inputs: {z: {shape: [8]}}\n"                        # merges into z: noise stays
                      "optimizers: {D: {lr: 1.0e-3, betas: [0.0, 0.9]}}\n"  # the list replaces whole
                      "train: {steps: 20, grad_clip: null}\n"))            # null is a value, not a deletion
    inputs, optimizers = by_name(spec.inputs), by_name(spec.optimizers)
    assert (inputs["z"].kind, inputs["z"].args) == ("noise", {"shape": [8]})
    assert optimizers["D"].args["betas"] == [0.0, 0.9]
    assert optimizers["G"].lr == 1e-3                                      # the base's reference sees the child's value
    assert spec.modules[0].layers[0].args["in_features"] == 8
    assert (spec.train.steps, spec.train.batch, spec.train.grad_clip, spec.train.ema) == (20, 16, None, {"G": 0.999})


def test_delete_removes_a_key_and_name_is_not_inherited(tmp_path):
    write(tmp_path, "base.yaml", BASE)
    spec = load(write(tmp_path, "plain.yaml", "extends: base.yaml\n"
                      "objectives: {gan: {penalty: ~delete, penalty_weight: ~delete}}\n"
                      "train: {ema: ~delete}\n"))
    assert spec.objectives[0].args == {"critic": "D", "real": "real", "fake": "fake"}
    assert spec.train.ema == {}
    assert spec.name == "plain"                      # runs/plain, never the base's runs/base
    assert "extends" not in spec.data


def test_a_list_of_bases_applies_in_order_and_bases_may_extend(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)          # the project: ../parts is outside exp/, inside the working directory
    write(tmp_path, "base.yaml", BASE)
    write(tmp_path, "parts/long.yaml", "extends: ../base.yaml\ntrain: {steps: 500, batch: 32}\n")
    write(tmp_path, "parts/small.yaml", "train: {batch: 8}\nsample: {n: 4}\n")
    spec = load(write(tmp_path, "exp/run.yaml", "extends: [../parts/long.yaml, ../parts/small.yaml]\n"
                      "sample: {n: 9}\n"))
    assert (spec.train.steps, spec.train.batch, spec.sample.n) == (500, 8, 9)


def test_paths_are_relative_to_the_file_not_the_working_directory(tmp_path, monkeypatch):
    write(tmp_path, "graphs/base.yaml", BASE)
    child = write(tmp_path, "graphs/child.yaml", "extends: base.yaml\n")
    monkeypatch.chdir(tmp_path)
    assert load("graphs/child.yaml").train.steps == 10
    monkeypatch.chdir(child.parent.parent.parent)
    assert load(child).train.steps == 10


def test_overrides_apply_after_extends_and_before_references(tmp_path):
    write(tmp_path, "base.yaml", BASE)
    spec = load(write(tmp_path, "child.yaml", "extends: base.yaml\n"),
                ["optimizers.D.lr=5.0e-4", "inputs.z.shape=[4]", "train.ema=~delete"])
    assert by_name(spec.optimizers)["G"].lr == 5e-4
    assert spec.modules[0].layers[0].args["in_features"] == 4
    assert spec.train.ema == {}


def test_an_error_in_a_base_key_points_at_the_base_file(tmp_path):
    base = write(tmp_path, "base.yaml", BASE.replace("steps: 10", "steps: 0"))
    child = write(tmp_path, "child.yaml", "extends: base.yaml\noptimizers: {G: {lr: 1.0e-3}}\n")
    with pytest.raises(SpecError, match=rf"^{base}:20:3: train\.steps: expected a positive number of steps, got 0$"):
        load(child)


def test_an_error_in_the_extending_file_points_at_that_file(tmp_path):
    write(tmp_path, "base.yaml", BASE)
    child = write(tmp_path, "child.yaml", "extends: base.yaml\noptimizers:\n  G: {lr: -1}\n")
    with pytest.raises(SpecError, match=rf"^{child}:3:7: optimizers\.G\.lr: lr must be a positive finite number, "
                                        r"got -1$"):
        load(child)
    child.write_text("extends: base.yaml\ntrain:\n  sted: 3\n")
    with pytest.raises(SpecError, match=rf"^{child}:3:3: train\.sted: unknown key 'sted' \(did you mean 'seed'\?\)$"):
        load(child)


def test_a_bad_reference_in_a_base_points_at_the_base(tmp_path):
    base = write(tmp_path, "base.yaml", BASE.replace("${optimizers.D.lr}", "${optimizers.E.lr}"))
    with pytest.raises(SpecError, match=rf"^{base}:16:20: optimizers\.G\.lr: '\$\{{optimizers\.E\.lr\}}': "
                                        r"optimizers has no key 'E'"):
        load(write(tmp_path, "child.yaml", "extends: base.yaml\n"))


def test_a_cycle_is_an_error_at_the_extends_that_closes_it(tmp_path):
    write(tmp_path, "a.yaml", "extends: b.yaml\n")
    b = write(tmp_path, "b.yaml", "train: {steps: 3}\nextends: [a.yaml]\n")
    with pytest.raises(SpecError, match=rf"^{b}:2:11: extends: extends cycle: .*a\.yaml -> .*b\.yaml -> .*a\.yaml$"):
        load(tmp_path / "a.yaml")
    itself = write(tmp_path, "self.yaml", "extends: self.yaml\n")
    with pytest.raises(SpecError, match=rf"^{itself}:1:1: extends: extends cycle"):
        load(itself)


def test_a_missing_base_is_an_error_at_the_extends_line(tmp_path):
    child = write(tmp_path, "child.yaml", "# a variant\nextends: bse.yaml\n")
    with pytest.raises(SpecError, match=rf"^{child}:2:1: extends: no such file: {tmp_path}/bse\.yaml "
                                        r"\(extends paths are relative to the folder of child\.yaml\)$"):
        load(child)


@pytest.mark.parametrize("value, message", [
    ("/etc/base.yaml", r"'/etc/base\.yaml': write the path relative to this file's folder"),
    ("https://example.com/base.yaml", r"extends names a local file; URLs are never read"),
    ("[]", r"expected a file path or a list of file paths, got \[\]"),
    ("{a: 1}", r"expected a file path or a list of file paths, got \{'a': 1\}"),
])
def test_extends_takes_relative_local_paths_only(tmp_path, value, message):
    with pytest.raises(SpecError, match=message):
        load(write(tmp_path, "child.yaml", f"extends: {value}\n"))


def test_delete_needs_a_key_that_a_base_sets(tmp_path):
    write(tmp_path, "base.yaml", BASE)
    child = write(tmp_path, "child.yaml", "extends: base.yaml\ntrain:\n  emaa: ~delete\n")
    with pytest.raises(SpecError, match=rf"^{child}:3:3: train\.emaa: '~delete' but no base file sets this key "
                                        r"\(did you mean 'ema'\?\)$"):
        load(child)
    child.write_text("extends: base.yaml\neval: {n: ~delete}\n")
    with pytest.raises(SpecError, match=r"eval\.n: '~delete' has nothing to delete: no base file sets this key"):
        load(child)
    child.write_text("extends: base.yaml\nschedule: {order: [D, ~delete]}\n")
    with pytest.raises(SpecError, match=r"schedule\.order\.1: '~delete' has nothing to delete: it is inside a value "
                                        r"that replaces the base's value whole"):
        load(child)
    with pytest.raises(SpecError, match=r"train\.ema: '~delete' has nothing to delete: the file extends nothing"):
        load(write(tmp_path, "plain.yaml", BASE.replace("ema: {G: 0.999}", "ema: ~delete")))
    with pytest.raises(SpecError, match=r"<override>: train\.emaa: '~delete': there is no such key to delete "
                                        r"\(did you mean 'ema'\?\)"):
        load(tmp_path / "base.yaml", ["train.emaa=~delete"])


def test_every_file_goes_through_the_safe_loader(tmp_path):
    base = write(tmp_path, "base.yaml", "train: !!python/object:os.system {}\n")
    with pytest.raises(SpecError, match=rf"^{base}:1:8: train: unsupported YAML tag"):
        load(write(tmp_path, "child.yaml", "extends: base.yaml\n"))


def test_validate_print_parses_back_to_the_same_spec(tmp_path, capsys):
    write(tmp_path, "base.yaml", BASE)
    child = write(tmp_path, "child.yaml", "extends: base.yaml\ntrain: {ema: ~delete}\nsample: {nrow: 4}\n")
    assert cli.main(["validate", str(child), "--print", "optimizers.D.lr=1.0e-3"]) == 0
    text = capsys.readouterr().out
    data = yaml.safe_load(text)
    spec = load(child, ["optimizers.D.lr=1.0e-3"])
    assert from_dict(data) == spec
    assert data == resolved(spec)
    assert data["name"] == "child" and "extends" not in data
    assert data["optimizers"]["G"] == {"params": ["G"], "type": "adam", "lr": 1e-3, "betas": [0.5, 0.999],
                                       "lr_schedule": {}}
    assert data["train"]["keep_checkpoints"] == 2 and data["train"]["ema"] == {}      # defaults filled in
    assert data["flow"] == {"fake": "G(z)"}


def test_print_escapes_a_literal_reference_so_it_reads_back(tmp_path):
    spec = load(write(tmp_path, "g.yaml", BASE.replace("gan: {recipe", "gan: {note: 'costs $${x}', recipe")))
    assert spec.objectives[0].args["note"] == "costs ${x}"
    data = resolved(spec)
    assert data["objectives"]["gan"]["note"] == "costs $${x}"
    assert from_dict(data) == spec


def test_a_bases_weights_files_stay_relative_to_the_base(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write(tmp_path, "graphs/base.yaml", BASE.replace("D: [{block: Flatten}", "D: [{block: Flatten, weights: w/f.st}")
          .replace("  G:\n", "  E: {block: Flatten, weights: e.st}\n  G:\n"))
    spec = load(write(tmp_path, "exp/child.yaml", "extends: ../graphs/base.yaml\n"))
    modules = by_name(spec.modules)
    assert modules["E"].weights == "../graphs/e.st"
    assert modules["D"].layers[0].weights == "../graphs/w/f.st"


def test_a_diamond_is_not_a_cycle_but_the_files_read_are_bounded(tmp_path):
    write(tmp_path, "base.yaml", BASE)
    write(tmp_path, "b.yaml", "extends: base.yaml\ntrain: {steps: 7}\n")
    write(tmp_path, "c.yaml", "extends: base.yaml\ntrain: {batch: 8}\n")
    spec = load(write(tmp_path, "d.yaml", "extends: [b.yaml, c.yaml]\n"))
    assert (spec.train.steps, spec.train.batch) == (10, 8)        # c re-reads base: its steps win over b's
    for i in range(40):
        write(tmp_path, f"chain{i}.yaml", f"extends: chain{i + 1}.yaml\n" if i < 39 else BASE)
    with pytest.raises(SpecError, match=r"extends: more than 32 files read through 'extends'"):
        load(tmp_path / "chain0.yaml")


def test_every_shipped_graph_prints_back_to_itself(graphs_dir):
    for path in sorted(graphs_dir.glob("*.yaml")):
        spec = load(path)
        assert from_dict(yaml.safe_load(to_yaml(spec)), name=str(path)) == spec, path.name
