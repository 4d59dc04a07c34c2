import pytest
import torch

from composer import api
from composer.errors import SpecError
from specs import small_2d_gan, small_dcgan


def plan_of(data, *overrides):
    return api.plan(api.from_dict(data, list(overrides)))


def test_dcgan_phases_trains_frozen_cuts():
    plan = plan_of(small_dcgan())
    D, G = plan.phases
    assert (D.name, D.trains, D.frozen, D.cuts) == ("D", ("D",), (), (("fake", "gan.fake_logits"),))
    assert (G.name, G.trains, G.frozen, G.cuts) == ("G", ("G",), ("D",), ())
    assert set(D.terms) == {"gan.D_real", "gan.D_fake"} and G.terms == ("gan.G",)


def test_generator_first_order():
    plan = plan_of(small_dcgan(), "schedule.order=[G, D]")
    assert [p.name for p in plan.phases] == ["G", "D"]
    g_ops, d_ops = plan.program(("G", "D"))
    # G stepped, so D's read of `fake` through the cut reuses the pre-step fake (as reference loops do)
    assert [o.action for o in d_ops if o.node == "fake"] == ["reuse"]
    assert plan.forward_calls() == {"G": 1, "D": 3}


def test_refresh_detached_recomputes_stale_reads():
    plan = plan_of(small_dcgan(), "schedule.order=[G, D]", "schedule.refresh_detached=true")
    _, d_ops = plan.program(("G", "D"))
    assert [o.action for o in d_ops if o.node == "fake"] == ["compute"]
    assert plan.forward_calls() == {"G": 2, "D": 3}


def test_n_critic_rounds_draw_fresh_inputs():
    plan = plan_of(small_2d_gan(loss="wgan", penalty="wgan_gp"), "schedule.repeat={D: 5}")
    assert plan.rounds(("D", "G")) == (("D",),) * 4 + (("D", "G"),)
    # per critic round: G once (fakes), D on real, fake and the interpolates; then G's step through D
    assert plan.forward_calls() == {"G": 5, "D": 5 * 3 + 1}


def test_a_module_no_optimizer_owns_is_frozen_where_the_phase_uses_it(tmp_path):
    from safetensors.torch import save_file

    save_file({"weight": torch.eye(2), "bias": torch.zeros(2)}, tmp_path / "P.safetensors")
    data = small_2d_gan()
    data["modules"]["P"] = {"block": "Linear", "in_features": 2, "out_features": 2,   # fixed: no optimizer
                            "weights": str(tmp_path / "P.safetensors")}
    data["modules"]["S"] = {"block": "Tanh"}                                           # no parameters
    data["flow"].update({"real_p": "P(real)", "fake_p": "P(fake)", "fake_s": "S(fake_p)"})
    data["objectives"]["gan"].update({"real": "real_p", "fake": "fake_s"})
    D, G = plan_of(data).phases
    assert (D.trains, D.frozen) == (("D",), ("P",))          # P(real) feeds D's loss; P(fake) is cut
    assert (G.trains, G.frozen) == (("G",), ("D", "P"))      # G's gradient passes through P and D
    table = api.format_table(plan_of(data))
    assert "trains: D   frozen: P" in table and "trains: G   frozen: D, P" in table


def test_every_skips_a_phase_on_other_steps():
    plan = plan_of(small_dcgan(), "schedule.every={G: 2}")
    assert plan.active(0) == ("D", "G") and plan.active(1) == ("D",)


def test_unknown_phase_in_order():
    with pytest.raises(SpecError, match=r"schedule.order.0: unknown phase 'd' \(did you mean 'D'\?\) \(phases: D, G\)"):
        plan_of(small_dcgan(), "schedule.order=[d, G]")


def test_optimizer_without_terms():
    data = small_dcgan()
    data["modules"]["H"] = {"block": "Linear", "in_features": 2, "out_features": 2}
    data["optimizers"]["H"] = {"params": ["H"]}
    with pytest.raises(SpecError, match=r"optimizers.H: optimizer\(s\) H update \['H'\] but no loss term depends on them"):
        plan_of(data)
    data["objectives"]["h"] = {"recipe": "reconstruction", "prediction": "h", "target": "z"}
    data["flow"]["h"] = "H(z)"
    data["modules"]["H"]["in_features"] = data["modules"]["H"]["out_features"] = 8
    with pytest.raises(SpecError, match=r"schedule.order: phase\(s\) H missing from the order: every phase runs"):
        plan_of(data)


def test_discriminator_step_never_moves_the_generator():
    runner = api.runner(api.from_dict(small_dcgan(), ["schedule.every={G: 1000}"]), cpu=True)
    runner.step_count = 1                     # G is inactive on this step: only phase D runs
    before = {k: v.clone() for k, v in runner.raw["G"].named_parameters()}
    runner.step()
    assert all(torch.equal(before[k], v) for k, v in runner.raw["G"].named_parameters())
    assert all(p.grad is None for p in runner.raw["G"].parameters())


def test_generator_step_leaves_the_critic_untouched():
    runner = api.runner(api.from_dict(small_dcgan(), ["schedule.order=[G, D]", "schedule.every={D: 1000}"]),
                        cpu=True)
    runner.step_count = 1
    before = {k: v.clone() for k, v in runner.raw["D"].named_parameters()}
    runner.step()
    assert all(torch.equal(before[k], v) for k, v in runner.raw["D"].named_parameters())
    assert all(p.grad is None for p in runner.raw["D"].parameters())


@pytest.mark.parametrize("loss", ["non_saturating", "minimax", "lsgan", "hinge", "wgan"])
@pytest.mark.parametrize("penalty", [None, "r1", "wgan_gp"])
def test_every_adversarial_loss_and_penalty_trains(loss, penalty):
    runner = api.runner(api.from_dict(small_2d_gan(loss=loss, penalty=penalty)), cpu=True)
    logs = runner.step()
    assert all(torch.isfinite(torch.tensor(v)) for v in logs.values())
    assert ("gan.D_" + penalty in logs) if penalty else len(logs) == 3
