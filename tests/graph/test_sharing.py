"""Penalties share the critic's forward (composer/graph/sharing.py): R1 differentiates the loss
term's D(real) where its phase computes it, and only there."""
import copy

import pytest
import torch
import torch.nn.functional as F

from composer import api
from specs import small_2d_gan, small_dcgan


def _shared(plan, names=("D", "G"), step=0) -> dict:
    return {op.node: op.via for ops in plan.program(names, step) for op in ops if op.via}


def test_r1_differentiates_the_loss_terms_call_on_real():
    plan = api.validate(api.from_dict(small_2d_gan(penalty="r1")))
    assert _shared(plan) == {"gan.r1": "gan.real_logits"}
    assert plan.forward_calls() == {"G": 1, "D": 3}
    nodes = {n.name: n for n in plan.evaluated(("D", "G"))[0]}
    assert nodes["gan.real_logits"].inputs == ("gan.real_logits:grad:real",)
    assert nodes["gan.real_logits:grad:real"].inputs == ("real",)
    assert nodes["gan.r1"].inputs == ("gan.real_logits", "gan.real_logits:grad:real")
    assert nodes["gan.r1"].modules == ()       # no forward call of its own


def test_wgan_gp_interpolates_so_it_calls_the_critic_itself():
    plan = api.validate(api.from_dict(small_2d_gan(loss="wgan", penalty="wgan_gp")))
    assert _shared(plan) == {}
    assert plan.forward_calls() == {"G": 1, "D": 4}


def test_without_the_penalty_due_nothing_requires_grad():
    data = small_2d_gan(penalty="r1")
    data["objectives"]["gan"]["terms"] = {"D_r1": {"every": 4}}
    plan = api.validate(api.from_dict(data))
    assert _shared(plan, step=4) == {"gan.r1": "gan.real_logits"}
    assert _shared(plan, step=1) == {}
    assert all(n.target != "requires_grad" for n in plan.evaluated(("D", "G"), 1)[0])


def test_an_input_carrying_the_phases_gradient_is_not_shared():
    """A declared phase stepping the critic and the producer of `real` (a learnt map P of the data,
    which wants its outputs judged fake: train_real): enabling the input's gradient would detach
    it from P, so there R1 calls the critic itself."""
    data = small_2d_gan(penalty="r1", train_real=True)
    data["modules"]["P"] = {"block": "MLP", "in_features": 2, "hidden": 8, "depth": 1, "out_features": 2}
    data["flow"]["seen"] = "P(real)"
    data["objectives"]["gan"]["real"] = "seen"
    data["optimizers"]["P"] = {"params": ["P"], "lr": 1e-3}
    data["phases"] = {"DP": {"optimizers": ["D", "P"]}}
    plan = api.validate(api.from_dict(data))
    assert set(plan.phase("DP").trains) == {"D", "P"}
    assert _shared(plan, ("DP", "G")) == {}
    assert plan.forward_calls()["D"] == 4


@pytest.mark.slow
def test_diffaugment_r1_and_the_loss_term_see_the_same_augmented_real():
    data = small_dcgan()
    data["flow"].update({"real_seen": "diffaugment(real)", "fake_seen": "diffaugment(fake)"})
    data["objectives"]["gan"].update(real="real_seen", fake="fake_seen", penalty="r1", penalty_weight=1.0)
    runner = api.runner(api.from_dict(data, ["train.batch=4"]), cpu=True)
    assert _shared(runner.plan) == {"gan.r1": "gan.real_logits"}
    before = copy.deepcopy(runner.raw["D"])
    seen = []
    runner.raw["D"].register_forward_pre_hook(lambda _, inputs: seen.append(inputs[0].detach().clone()))
    logs = runner.step()
    assert len(seen) == 3                       # D(real_seen) shared with R1, D(fake_seen) twice
    x = seen[0].requires_grad_(True)           # the one augmented real the critic saw in phase D
    (grad,) = torch.autograd.grad(before(x).sum(), x)
    torch.testing.assert_close(logs["gan.D_r1"], 0.5 * grad.pow(2).flatten(1).sum(1).mean(), rtol=1e-6, atol=0)


def test_r2_shares_the_critics_call_on_the_detached_fakes_and_equals_the_careful_loop():
    """R2 on fakes: D(fake.detach()) is computed with the fakes' gradient enabled and serves
    both D_fake and R2; the careful loop written that way ends bitwise equal."""
    runner = api.runner(api.from_dict(small_2d_gan(penalty="r2", penalty_weight=2.0)), cpu=True)
    assert _shared(runner.plan) == {"gan.r2": "gan.fake_logits"}
    assert runner.plan.forward_calls() == {"G": 1, "D": 3}
    G, D = copy.deepcopy(runner.raw["G"]), copy.deepcopy(runner.raw["D"])
    opt_D, opt_G = (torch.optim.Adam(m.parameters(), lr=1e-3) for m in (D, G))
    gen = torch.Generator().manual_seed(1)
    for _ in range(3):
        real, z = torch.randn(16, 2, generator=gen), torch.randn(16, 4, generator=gen)
        runner.step({"real": real, "z": z})
        fake = G(z)
        x = fake.detach().requires_grad_(True)
        real_logits, fake_logits = D(real), D(x)
        (grad,) = torch.autograd.grad(fake_logits.sum(), x, create_graph=True)
        loss_D = F.softplus(-real_logits).mean() + F.softplus(fake_logits).mean() \
            + 2.0 * (0.5 * grad.pow(2).sum(1)).mean()
        opt_D.zero_grad()
        loss_D.backward()
        opt_D.step()
        D.requires_grad_(False)
        opt_G.zero_grad()
        F.softplus(-D(fake)).mean().backward()
        D.requires_grad_(True)
        opt_G.step()
    for name, hand in (("G", G), ("D", D)):
        for key, value in hand.state_dict().items():
            assert torch.equal(runner.raw[name].state_dict()[key], value), f"{name}.{key} differs"
