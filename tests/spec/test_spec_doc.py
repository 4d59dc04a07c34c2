"""docs/spec.md is generated from the spec dataclasses and composer/spec_doc.py's KEYS: every key a
graph file can write is documented, no documented key is stale, and the page is current
(regenerate with `python -m composer.spec.doc > docs/spec.md`)."""
import dataclasses
import re

from composer.spec import schema as spec
from composer.spec.schema import load
from composer.spec.doc import (COMPOSING, INTERNAL, KEYS, default_text, keys_of, markdown, section_class,
                               spec_classes, type_text)
from conftest import ROOT


def test_every_field_of_every_spec_dataclass_is_documented():
    missing = [f"{name}.{f.name}" for name, cls in spec_classes().items() for f in keys_of(cls)
               if f.name not in KEYS.get(name, {})]
    assert not missing, f"document these keys in composer/spec_doc.py KEYS: {missing}"


def test_no_documented_key_is_stale():
    classes = spec_classes()
    stale = [f"{name}.{key}" for name, keys in KEYS.items() for key in keys
             if name not in classes or key not in {f.name for f in keys_of(classes[name])}]
    assert not stale, stale
    assert all(meaning.strip() for keys in KEYS.values() for _, meaning in keys.values())


def test_every_section_of_a_graph_file_is_a_documented_field_of_spec():
    documented = {f.name for f in keys_of(spec.Spec)}
    assert documented == set(spec.SECTIONS)
    internal = {f.name for cls in spec_classes().values() for f in dataclasses.fields(cls) if f.name in INTERNAL}
    assert internal == INTERNAL                                    # no stale internal name either


def test_types_and_defaults_come_from_the_dataclasses():
    fields = {f.name: f for f in dataclasses.fields(spec.TrainSpec)}
    assert (type_text(fields["steps"]), default_text(fields["steps"])) == ("int", str(spec.TrainSpec().steps))
    assert default_text(fields["grad_clip"]) == "null"
    assert default_text(fields["precision"]) == "'no'"
    assert type_text({f.name: f for f in dataclasses.fields(spec.PhaseSpec)}["redraw"]) == "list[str]"
    assert section_class({f.name: f for f in dataclasses.fields(spec.Spec)}["inputs"]) is spec.InputSpec
    page = markdown()
    assert f"| `steps` | `int` | `{spec.TrainSpec().steps}` | {KEYS['TrainSpec']['steps'][1]} |" in page
    assert "| `grad_clip` | `float \\| None` | `null` |" in page


def test_the_page_is_current():
    page = (ROOT / "docs" / "spec.md").read_text()
    assert markdown() + "\n" == page, "docs/spec.md is stale: python -m composer.spec.doc > docs/spec.md"


def test_the_pages_extends_example_reads(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)          # exp/ reads ../graphs/: both inside the working directory
    example = re.search(r"```yaml\n(.*?)```", COMPOSING, re.S).group(1)
    (tmp_path / "graphs").mkdir()
    (tmp_path / "graphs" / "dcgan.yaml").write_text((ROOT / "graphs" / "dcgan.yaml").read_text())
    (tmp_path / "exp").mkdir()
    (tmp_path / "exp" / "wide.yaml").write_text(example)
    wide, base = load(tmp_path / "exp" / "wide.yaml"), load(ROOT / "graphs" / "dcgan.yaml")
    G = {m.name: m for m in wide.modules}["G"]
    assert G.args == {**{m.name: m for m in base.modules}["G"].args, "width": 64}
    assert {o.name: o for o in wide.optimizers}["D"].args["betas"] == [0.0, 0.99]
    assert (wide.train.ema, wide.train.steps, wide.name) == ({}, 2000, "wide")
