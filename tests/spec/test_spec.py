import pytest

from composer.errors import SpecError
from composer.spec.schema import load, parse
from composer.spec.yamlio import load_text


def write(tmp_path, text, name="g.yaml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_locations_are_kept_for_every_key(tmp_path):
    path = write(tmp_path, "name: t\ntrain:\n  steps: 5\n  batch: 4\n")
    spec = load(path)
    assert spec.train.steps == 5
    assert str(spec.loc("train", "batch")) == f"{path}:4:3"


def test_unknown_key_says_did_you_mean(tmp_path):
    path = write(tmp_path, "train:\n  stpes: 5\n")
    with pytest.raises(SpecError, match=r"g.yaml:2:3: train.stpes: unknown key 'stpes' \(did you mean 'steps'\?\)"):
        load(path)


def test_unknown_section(tmp_path):
    with pytest.raises(SpecError, match=r"unknown key 'modles' \(did you mean 'modules'\?\)"):
        load(write(tmp_path, "modles: {}\n"))


def test_malformed_yaml_names_file_and_line(tmp_path):
    with pytest.raises(SpecError, match=r"g.yaml:3:1: malformed YAML"):
        load(write(tmp_path, "a:\n  b: [1,\n"))


def test_missing_file():
    with pytest.raises(SpecError, match="no such graph file: nope.yaml"):
        load("nope.yaml")


def test_duplicate_key_is_an_error(tmp_path):
    with pytest.raises(SpecError, match=r"g.yaml:3:1: train: duplicate key 'train'"):
        load(write(tmp_path, "train: {}\nname: x\ntrain: {}\n"))


def test_yaml_cannot_construct_python_objects(tmp_path):
    with pytest.raises(SpecError, match=r"g.yaml:1:7: name: unsupported YAML tag 'tag:yaml.org,2002:python/object/apply:os.system'"):
        load(write(tmp_path, "name: !!python/object/apply:os.system ['echo hi']\n"))


def test_scientific_floats_parse_as_numbers():
    data, _ = load_text("a: 2e-4\nb: 1.0e-3\nc: 3\n", "x")
    assert data == {"a": 2e-4, "b": 1e-3, "c": 3}


def test_overrides_parse_values_as_yaml(tmp_path):
    path = write(tmp_path, "train:\n  steps: 5\n")
    spec = load(path, ["train.steps=7", "train.ema={G: 0.9}", "sample.objective=dsm", "sample.sampler=ddim"])
    assert spec.train.steps == 7 and spec.train.ema == {"G": 0.9} and spec.sample.options == {"sampler": "ddim"}


def test_override_type_is_checked(tmp_path):
    with pytest.raises(SpecError, match=r"<override>: train.steps: expected int, got 'many'"):
        load(write(tmp_path, "train: {}\n"), ["train.steps=many"])


def test_override_needs_equals():
    with pytest.raises(SpecError, match="is not of the form key.path=value"):
        parse({}, overrides=["train.steps"])


def test_flow_call_syntax_and_mapping_form():
    spec = parse({"flow": {"a": "G(z, c)", "b": {"module": "H", "inputs": ["a"]}}})
    assert spec.flow[0].target == "G" and spec.flow[0].inputs == ("z", "c")
    assert spec.flow[1].inputs == ("a",)


def test_bad_flow_expression():
    with pytest.raises(SpecError, match=r"flow.a: expected 'module\(input, ...\)', 'op\(input, ..., key=value\)' "
                                        r"or 'tensor\[i\]', got 'G z' \(invalid syntax at column 3\)"):
        parse({"flow": {"a": "G z"}})


def test_input_needs_source_or_noise():
    with pytest.raises(SpecError, match="inputs.x: an input needs exactly one of 'source'"):
        parse({"inputs": {"x": {"size": 3}}})


def test_inline_module_list():
    spec = parse({"modules": {"D": [{"block": "Linear", "in_features": 2, "out_features": 1}, "ReLU"]}})
    assert [layer.block for layer in spec.modules[0].layers] == ["Linear", "ReLU"]


def test_optimizer_lr_must_be_positive():
    with pytest.raises(SpecError, match="optimizers.G.lr: lr must be a positive finite number, got -1"):
        parse({"optimizers": {"G": {"params": ["G"], "lr": -1}}})
