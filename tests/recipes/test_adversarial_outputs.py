"""A critic with several outputs (a trunk shared with an auxiliary head: AC-GAN, InfoGAN): recipes
name the output that holds the logits as `critic: D[0]`, the flow reads the other head."""
import re

import pytest
import torch

from composer import api
from composer.errors import SpecError
from composer.ops.flow import module_output
from composer.recipes.penalties import R1
from specs import small_dcgan


def two_headed(critic="D[0]", aux_classes=10):
    """small_dcgan with AC-GAN's class head on D's trunk, trained on the real digits' labels."""
    data = small_dcgan()
    data["modules"]["D"]["aux_classes"] = aux_classes
    data["flow"].update({"judged": "D(real)", "y_logits": "judged[1]"})
    data["objectives"]["gan"].update(critic=critic, penalty="r1", penalty_weight=1.0)
    data["objectives"]["cls"] = {"recipe": "cross_entropy", "logits": "y_logits", "labels": "real.y"}
    return data


@pytest.mark.parametrize("ref, parsed", [("D", ("D", None)), ("D[0]", ("D", 0)), ("critic_2[-1]", ("critic_2", -1))])
def test_module_references(ref, parsed):
    assert module_output(ref) == parsed


@pytest.mark.parametrize("ref", ["D[x]", "D[0][1]", "D(0)", "0D", ""])
def test_malformed_module_references_are_refused(ref):
    with pytest.raises(ValueError, match=rf"'{re.escape(ref)}' is not a module: expected a module name, or NAME\[i\] for output "
                                         "i of a module with several outputs"):
        module_output(ref)


def test_the_logits_output_feeds_the_game_and_the_head_trains_with_the_critic():
    plan = api.validate(api.from_dict(two_headed()))
    D, G = plan.phase("D"), plan.phase("G")
    assert "cls.loss" in D.terms and "cls.loss" not in G.terms       # real labels: only D's trunk and head move
    nodes = plan.graph.nodes
    assert (nodes["gan.fake_logits.out"].kind, nodes["gan.fake_logits.out"].target) == ("call", "D")
    assert nodes["gan.fake_logits"].kind == "fn" and nodes["gan.fake_logits"].inputs == ("gan.fake_logits.out",)
    assert repr(nodes["gan.r1"].op) == "r1[D[0]]"


def test_the_same_call_written_twice_is_computed_once():
    plan = api.validate(api.from_dict(two_headed()))
    nodes = plan.graph.nodes
    # the flow's `judged: D(real)` and the game's D(real) are one value; the flow's name is kept
    assert (nodes["gan.real_logits.out"].target, nodes["gan.real_logits.out"].inputs) == ("same", ("judged",))
    assert plan.forward_calls()["D"] == 3                   # D(real) (R1 shares it), D(fake) in D's phase; D(fake) in G's
    runner = api.runner(api.from_dict(two_headed()), cpu=True)
    runner.step()
    assert runner.forward_calls["D"] == 3                  # 4 if D(real) ran twice


def test_r1_differentiates_the_named_output():
    D = api.runner(api.from_dict(two_headed()), cpu=True).raw["D"]
    real = torch.randn(4, 1, 8, 8)
    ctx = type("Ctx", (), {"modules": {"D": D}, "grad_scale": 1.0})()
    x = real.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(D(x)[0].sum(), x)
    expected = 0.5 * grad.pow(2).flatten(1).sum(1)
    assert torch.allclose(R1(critic="D", output=0)(ctx, real), expected, atol=1e-6)


def test_a_critic_with_several_outputs_needs_one_named():
    with pytest.raises(SpecError, match=r"objectives.gan: .*the critic returned 2 outputs, not logits: name the "
                                        r"output that holds the logits, e.g. critic: D\[0\]") as err:
        api.validate(api.from_dict(two_headed(critic="D")))
    assert "holds 2 outputs" not in str(err.value)     # no hint to index the recipe's own tensor


def test_any_term_given_both_outputs_whole_is_told_to_name_one():
    data = two_headed()
    data["objectives"]["cls"]["logits"] = "judged"
    with pytest.raises(SpecError, match=r"objectives.cls: cross_entropy\(judged, real.y\) failed on inputs judged "
                                        r"\(\[8\], \[8, 10\]\).*; 'judged' holds 2 outputs, not one tensor: "
                                        r"name the one meant, judged\[0\] .. judged\[1\]"):
        api.validate(api.from_dict(data))


def test_an_output_of_a_one_output_module_is_refused():
    data = small_dcgan()
    data["objectives"]["gan"]["critic"] = "D[0]"
    with pytest.raises(SpecError, match=r"objectives.gan: .*\[0\] of one tensor of shape \[8\]: it has no axis to "
                                        r"index \(a module with several outputs returns a tuple"):
        api.validate(api.from_dict(data))


def test_unknown_critic_module_keeps_its_did_you_mean():
    with pytest.raises(SpecError, match=r"objectives.gan: unknown module 'E' \(expected one of: D, G\)"):
        api.validate(api.from_dict(two_headed(critic="E[0]")))


def test_feature_matching_reads_an_output_and_never_moves_the_critic():
    data = two_headed()
    data["objectives"]["fm"] = {"recipe": "feature_matching", "features": "D[1]", "real": "real", "fake": "fake"}
    plan = api.validate(api.from_dict(data))
    nodes = plan.graph.nodes
    assert nodes["fm.fake_features"].inputs == ("fm.fake_features.out",) and nodes["fm.G"].exclude == ("D",)
    assert "fm.G" in plan.phase("G").terms and "fm.G" not in plan.phase("D").terms
