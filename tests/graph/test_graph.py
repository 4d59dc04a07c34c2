import pytest
import yaml

from composer.api import from_dict, runner
from composer.errors import SpecError
from composer.graph.build import build
from composer.spec.schema import load
from specs import small_dcgan


def build_yaml(tmp_path, data):
    path = tmp_path / "g.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return build(load(path))


def test_shapes_are_inferred_on_meta():
    graph = build(from_dict(small_dcgan()))
    assert graph.shapes["fake"] == (1, 8, 8)
    assert graph.shapes["gan.real_logits"] == ()
    assert graph.param_counts["G"] > 0


def test_unknown_block_did_you_mean(tmp_path):
    data = small_dcgan()
    data["modules"]["G"]["block"] = "DCGANGenerater"
    with pytest.raises(SpecError, match=r"g.yaml:\d+:\d+: modules.G.block: unknown block 'DCGANGenerater' "
                                        r"\(did you mean 'DCGANGenerator'\?\)"):
        build_yaml(tmp_path, data)


def test_bad_block_argument(tmp_path):
    data = small_dcgan()
    data["modules"]["D"]["widht"] = 8
    with pytest.raises(SpecError, match=r"modules.D.widht: block DCGANDiscriminator has no argument 'widht' "
                                        r"\(did you mean 'width'\?\)"):
        build_yaml(tmp_path, data)


def test_missing_block_argument():
    data = small_dcgan()
    del data["modules"]["D"]["channels"]
    with pytest.raises(SpecError, match="modules.D: block DCGANDiscriminator needs argument.s.: channels"):
        build(from_dict(data))


def test_cycle_is_printed(tmp_path):
    data = small_dcgan()
    data["modules"]["H"] = {"block": "Tanh"}
    data["flow"] = {"fake": "G(h)", "h": "H(fake)"}
    with pytest.raises(SpecError, match=r"the flow has a cycle: (fake -> h -> fake|h -> fake -> h)"):
        build_yaml(tmp_path, data)


def test_channel_mismatch_points_at_the_flow_line(tmp_path):
    data = small_dcgan()
    data["modules"]["D"]["channels"] = 3
    with pytest.raises(SpecError, match=r"g.yaml:\d+:\d+: objectives.gan: D\(real\) failed on inputs "
                                        r"real \[8, 1, 8, 8\]: .*expected input\[1, 1, 8, 8\] to have 3 channels, "
                                        r"but got 1 channels instead \(module D is defined at .*g.yaml:\d+:\d+\)"):
        build_yaml(tmp_path, data)


def test_dangling_reference():
    data = small_dcgan()
    data["flow"] = {"fake": "G(zz)"}
    with pytest.raises(SpecError, match=r"flow.fake: 'zz' is not an input, input field, flow tensor or objective output "
                                        r"\(did you mean 'z'\?\)"):
        build(from_dict(data))


def test_unknown_module_in_flow():
    data = small_dcgan()
    data["flow"] = {"fake": "Gen(z)"}
    with pytest.raises(SpecError, match=r"flow.fake: unknown module or op 'Gen' \(did you mean 'G'\?\)"):
        build(from_dict(data))


def test_every_parameter_needs_an_optimizer():
    data = small_dcgan()
    del data["optimizers"]["G"]
    data["schedule"] = {}
    with pytest.raises(SpecError, match=r"modules.G: module 'G' has [\d,]+ parameters but no optimizer updates it"):
        build(from_dict(data))


def test_module_in_two_optimizers():
    data = small_dcgan()
    data["optimizers"]["G"]["params"] = ["G", "D"]
    with pytest.raises(SpecError, match="optimizers.G.params: module 'D' is already updated by optimizer 'D'"):
        build(from_dict(data))


def test_generator_and_critic_in_one_optimizer_is_rejected():
    data = small_dcgan()
    data["optimizers"] = {"GD": {"params": ["G", "D"]}}
    data["schedule"] = {}
    with pytest.raises(SpecError, match="term 'gan.D_fake' moves .'D'. but also depends on 'G', which optimizer 'GD' updates too"):
        build(from_dict(data))


def test_unknown_recipe_and_source():
    data = small_dcgan()
    data["objectives"]["gan"]["recipe"] = "adversarail"
    with pytest.raises(SpecError, match=r"unknown recipe 'adversarail' \(did you mean 'adversarial'\?\)"):
        build(from_dict(data))
    data = small_dcgan()
    data["inputs"]["real"]["source"] = "digit"
    with pytest.raises(SpecError, match=r"inputs.real.source: unknown source 'digit' \(did you mean 'digits'\?\)"):
        build(from_dict(data))


def test_unknown_adversarial_loss():
    data = small_dcgan()
    data["objectives"]["gan"]["loss"] = "lsgna"
    with pytest.raises(SpecError, match=r"objectives.gan: unknown adversarial loss 'lsgna' \(did you mean 'lsgan'\?\)"):
        build(from_dict(data))


def test_name_defined_twice():
    data = small_dcgan()
    data["flow"]["real"] = "G(z)"
    with pytest.raises(SpecError, match="'real' is defined twice"):
        build(from_dict(data))


def test_a_call_written_twice_is_one_value_and_both_names_stay_usable():
    data = small_dcgan()
    data["flow"]["again"] = "G(z)"                       # the same module on the same tensors
    data["flow"]["judged"] = "D(fake)"                   # the adversarial recipe calls D(fake) too
    data["sample"]["output"] = "again"
    graph = build(from_dict(data))
    assert (graph.nodes["again"].kind, graph.nodes["again"].target, graph.nodes["again"].inputs) == \
        ("fn", "same", ("fake",))
    assert graph.nodes["judged"].kind == "call"           # the first written keeps the call
    assert graph.nodes["gan.fake_logits"].inputs == ("judged",)
    assert graph.shapes["again"] == graph.shapes["fake"]
    run = runner(from_dict(data), cpu=True)
    run.step()
    assert run.forward_calls["G"] == 1


def test_a_repeated_chain_of_calls_merges_whole():
    data = small_dcgan()
    plain = runner(from_dict(data), cpu=True)
    plain.step()
    data["flow"]["again"] = "G(z)"
    data["flow"]["judged"] = "D(again)"                  # D on a merged value: the recipe's D(fake)
    data["sample"]["output"] = "again"
    graph = build(from_dict(data))
    assert (graph.nodes["judged"].kind, graph.nodes["judged"].inputs) == ("call", ("again",))
    assert (graph.nodes["gan.fake_logits"].kind, graph.nodes["gan.fake_logits"].inputs) == ("fn", ("judged",))
    run = runner(from_dict(data), cpu=True)
    run.step()
    assert run.forward_calls == plain.forward_calls
