"""`${section.key}` references: typed values, text interpolation, escapes, list indices, chains,
overrides flowing through, and located errors (unknown keys, cycles, malformed references)."""
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from composer.errors import Loc, SpecError
from composer.spec.references import resolve
from composer.spec.schema import load, parse
from composer.spec.yamlio import load_text

GRAPH = """\
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
  gan: {recipe: adversarial, critic: D, real: real, fake: fake}
optimizers:
  D: {params: [D], lr: 2.0e-4, betas: [0.5, 0.999]}
  G: {params: [G], lr: "${optimizers.D.lr}", betas: "${optimizers.D.betas}"}
train: {steps: 10, batch: 16}
"""


def resolved(text: str) -> dict:
    data, locs = load_text(text, "g.yaml")
    return resolve(data, locs)


def write(tmp_path, text: str, name: str = "g.yaml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_a_whole_reference_keeps_the_type_of_the_value():
    data = resolved("a: {n: 3, lr: 1.0e-3, flag: true, xs: [1, 2], m: {k: v}, none: null}\n"
                    "b: {n: '${a.n}', lr: '${a.lr}', flag: '${a.flag}', xs: '${a.xs}', m: '${a.m}',\n"
                    "    none: '${a.none}'}\n")
    assert data["b"] == {"n": 3, "lr": 1e-3, "flag": True, "xs": [1, 2], "m": {"k": "v"}, "none": None}
    assert data["b"]["xs"] is not data["a"]["xs"]          # copies: no shared parts


def test_inside_a_longer_string_a_reference_is_text_and_double_dollar_escapes():
    data = resolved("a: {n: 3, flag: false, lr: 2.0e-4}\n"
                    "b: 'G${a.n}-${a.flag}-lr${a.lr}'\nc: 'cost $${a.n} and $5'\n")
    assert data["b"] == "G3-false-lr0.0002"
    assert data["c"] == "cost ${a.n} and $5"


def test_a_number_indexes_a_list_and_references_chain():
    data = resolved("a: {shape: [16, 8]}\nb: '${a.shape.1}'\nc: '${b}'\nd: {e: '${a}'}\nf: '${d.e.shape.0}'\n")
    assert (data["b"], data["c"], data["f"]) == (8, 8, 16)


def test_references_resolve_in_a_spec_and_overrides_flow_through(tmp_path):
    path = write(tmp_path, GRAPH)
    spec = load(path)
    G = {o.name: o for o in spec.optimizers}["G"]
    assert (G.lr, G.args["betas"]) == (2e-4, [0.5, 0.999])
    assert spec.modules[0].layers[0].args["in_features"] == 16
    spec = load(path, ["inputs.z.shape=[8]", "optimizers.D.lr=1.0e-3"])
    G = {o.name: o for o in spec.optimizers}["G"]
    assert (G.lr, spec.modules[0].layers[0].args["in_features"]) == (1e-3, 8)
    assert spec.data["optimizers"]["G"]["lr"] == 1e-3          # the spec's data holds the resolved values


def test_an_override_may_itself_be_a_reference(tmp_path):
    spec = load(write(tmp_path, GRAPH), ["train.batch=${train.steps}"])
    assert spec.train.batch == 10


def test_a_python_dict_resolves_too():
    spec = parse(yaml.safe_load(GRAPH), None, "<python>")
    assert {o.name: o.lr for o in spec.optimizers}["G"] == 2e-4


def test_an_unknown_key_names_the_nearest_and_points_at_the_reference(tmp_path):
    path = write(tmp_path, GRAPH.replace("${optimizers.D.lr}", "${optimizers.D.lrr}"))
    with pytest.raises(SpecError, match=r"g\.yaml:15:20: optimizers\.G\.lr: '\$\{optimizers\.D\.lrr\}': "
                                        r"optimizers\.D has no key 'lrr' \(did you mean 'lr'\?\)"):
        load(path)


def test_an_unknown_section_and_a_key_into_a_scalar_are_errors():
    with pytest.raises(SpecError, match=r"'\$\{trian\.steps\}': the spec has no key 'trian' "
                                        r"\(did you mean 'train'\?\)"):
        resolved("train: {steps: 3}\nb: '${trian.steps}'\n")
    with pytest.raises(SpecError, match=r"'\$\{train\.steps\.x\}': train\.steps is a number \(3\), it has no key 'x'"):
        resolved("train: {steps: 3}\nb: '${train.steps.x}'\n")


def test_a_list_index_out_of_range_is_an_error():
    with pytest.raises(SpecError, match=r"g\.yaml:2:1: b: '\$\{a\.2\}': a is a list of 2 item\(s\); '2' is not an "
                                        r"index 0\.\.1"):
        resolved("a: [1, 2]\nb: '${a.2}'\n")


def test_a_cycle_is_named_and_located():
    with pytest.raises(SpecError, match=r"g\.yaml:1:1: a: reference cycle: a -> b -> c -> a"):
        resolved("a: '${b}'\nb: '${c}'\nc: '${a}'\n")
    with pytest.raises(SpecError, match=r"g\.yaml:1:5: a\.x: '\$\{a\}' refers to a value that contains this reference"):
        resolved("a: {x: '${a}'}\n")


def test_a_mapping_cannot_be_interpolated_into_text():
    with pytest.raises(SpecError, match=r"b: '\$\{a\}' is a mapping: only a value that is exactly '\$\{a\}' can take"):
        resolved("a: {k: 1}\nb: 'x${a}'\n")


def test_malformed_references_are_errors():
    with pytest.raises(SpecError, match=r"b: 'x\$\{a': '\$\{' without its closing '\}'"):
        resolved("a: 1\nb: 'x${a'\n")
    with pytest.raises(SpecError, match=r"b: '\$\{a b\}' is not a reference: expected '\$\{section\.key\}'"):
        resolved("a: 1\nb: '${a b}'\n")


def test_an_unquoted_reference_in_a_flow_mapping_gets_a_hint():
    with pytest.raises(SpecError, match=r'g\.yaml:2:\d+: malformed YAML: .*quote a reference: "\$\{a\.b\}"'):
        load_text("a: {b: 1}\nc: {d: ${a.b}}\n", "g.yaml")


def test_references_cannot_blow_up():
    text = "a: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]\n" + "".join(
        f"{chr(98 + i)}: ['${{{chr(97 + i)}}}', '${{{chr(97 + i)}}}', '${{{chr(97 + i)}}}', '${{{chr(97 + i)}}}']\n"
        for i in range(12))
    with pytest.raises(SpecError, match="more than 20,000 values after resolving references"):
        resolved(text)
    text = "a: 'xxxxxxxxxxxxxxxx'\n" + "".join(
        f"{chr(98 + i)}: '" + f"${{{chr(97 + i)}}}" * 4 + "'\n" for i in range(12))
    with pytest.raises(SpecError, match="grows past 1,048,576 characters"):
        resolved(text)


def test_extends_in_a_python_dict_is_refused():
    with pytest.raises(SpecError, match=r"extends: 'extends' is applied when a graph file is read"):
        parse({"extends": "base.yaml"}, None, "<python>")


def test_a_specs_data_resolves_to_itself(tmp_path):
    spec = load(write(tmp_path, GRAPH.replace("gan: {recipe", "gan: {note: 'a $${b}', recipe")))
    assert spec.objectives[0].args["note"] == "a ${b}"
    assert spec.data["objectives"]["gan"]["note"] == "a $${b}"      # saved as the run folder's spec.yaml
    assert spec.data["optimizers"]["G"]["lr"] == 2e-4
    again = parse(yaml.safe_load(yaml.safe_dump(spec.data, sort_keys=False)), None, str(tmp_path / "g.yaml"))
    assert again == spec and again.objectives[0].args["note"] == "a ${b}"


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="${}.ab01 ", max_size=24))
def test_any_string_resolves_or_fails_at_its_line(text):
    data = {"a": {"b": 1, "0": [2]}, "s": text}
    try:
        value = resolve(data, {("s",): Loc("g.yaml", 2, 1)})["s"]
    except SpecError as err:
        assert (str(err.loc), err.key) == ("g.yaml:2:1", "s")
        return
    if "${" not in text.replace("$${", ""):             # no reference: only the escapes change
        assert value == text.replace("$${", "${")
