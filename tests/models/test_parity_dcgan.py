"""Invariant 3: the compiled graphs/dcgan.yaml equals a hand-written pytorch/examples-style loop."""
import copy

import torch
import torch.nn.functional as F

from composer import api
from conftest import GRAPHS

STEPS = 5


def r1(logits, x):
    """R1 = 1/2 ||grad_x D(x)||^2 on real data (Mescheder et al. 2018), from the logits D(x) of the
    loss term: `x` was given to D with its gradient enabled."""
    (grad,) = torch.autograd.grad(logits.sum(), x, create_graph=True)
    return 0.5 * grad.pow(2).flatten(1).sum(1).mean()


def hand_written_loop(G, D, batches, latents, lr=2e-4, betas=(0.0, 0.99), gamma=1.0, every=1):
    """pytorch/examples dcgan/main.py's loop, on logits, plus the graph's R1 penalty, written
    carefully: D once on real (its gradient enabled where R1 is due, every `every` steps, weight x
    every), fake = G(z) once, D on fake.detach(), step D; D on the same fake, step G."""
    opt_D = torch.optim.Adam(D.parameters(), lr=lr, betas=betas)
    opt_G = torch.optim.Adam(G.parameters(), lr=lr, betas=betas)
    calls = {"G": 0, "D": 0}
    count = lambda name: (lambda *_: calls.__setitem__(name, calls[name] + 1))  # noqa: E731
    G.register_forward_hook(count("G"))
    D.register_forward_hook(count("D"))
    for step, (real, z) in enumerate(zip(batches, latents)):
        penalised = step % every == 0
        opt_D.zero_grad()
        x = real.detach().requires_grad_(True) if penalised else real
        real_logits = D(x)
        fake = G(z)
        fake_logits = D(fake.detach())
        loss_D = F.softplus(-real_logits).mean() + F.softplus(fake_logits).mean()
        if penalised:
            loss_D = loss_D + gamma * every * r1(real_logits, x)
        loss_D.backward()
        opt_D.step()
        opt_G.zero_grad()
        loss_G = F.softplus(-D(fake)).mean()
        loss_G.backward()
        opt_G.step()
    return calls


def _assert_same_weights(runner, G, D):
    for name, hand in (("G", G), ("D", D)):
        compiled = runner.raw[name].state_dict()
        for key, value in hand.state_dict().items():
            assert torch.equal(compiled[key], value), f"{name}.{key} differs"


def _batches(steps=STEPS):
    gen = torch.Generator().manual_seed(3)
    batches = [torch.rand(8, 1, 16, 16, generator=gen) * 2 - 1 for _ in range(steps)]
    latents = [torch.randn(8, 32, generator=gen) for _ in range(steps)]
    return batches, latents


def test_compiled_dcgan_equals_hand_written_loop():
    runner = api.runner(GRAPHS / "dcgan.yaml", ["train.batch=8", "train.ema={}"], cpu=True)
    G = copy.deepcopy(runner.raw["G"])
    D = copy.deepcopy(runner.raw["D"])
    batches, latents = _batches()
    for real, z in zip(batches, latents):
        runner.step({"real": real, "z": z})
    calls = hand_written_loop(G, D, batches, latents)
    _assert_same_weights(runner, G, D)
    assert runner.forward_calls == calls == {"G": STEPS, "D": 3 * STEPS}
    assert runner.plan.forward_calls() == {"G": 1, "D": 3}


def test_lazy_r1_equals_the_careful_loop_on_steps_with_and_without_it():
    """R1 every 2 steps: D(real) is shared with R1 on even steps, a plain call on odd ones."""
    runner = api.runner(GRAPHS / "dcgan.yaml", ["train.batch=8", "train.ema={}",
                                                "objectives.gan.terms={D_r1: {every: 2}}"], cpu=True)
    G, D = copy.deepcopy(runner.raw["G"]), copy.deepcopy(runner.raw["D"])
    batches, latents = _batches()
    for real, z in zip(batches, latents):
        runner.step({"real": real, "z": z})
    calls = hand_written_loop(G, D, batches, latents, every=2)
    _assert_same_weights(runner, G, D)
    assert runner.forward_calls == calls == {"G": STEPS, "D": 3 * STEPS}
    with_r1, without = (runner.plan.evaluated(("D", "G"), step)[0] for step in (0, 1))
    assert [n.name for n in with_r1 if n.target == "requires_grad"] == ["gan.real_logits:grad:real"]
    assert not any(n.target == "requires_grad" for n in without) and "gan.r1" not in {n.name for n in without}


def test_a_batch_norm_critic_updates_its_statistics_once_per_call_of_the_careful_loop():
    runner = api.runner(GRAPHS / "dcgan.yaml", ["train.batch=8", "train.ema={}", "modules.D.norm=batch"], cpu=True)
    G, D = copy.deepcopy(runner.raw["G"]), copy.deepcopy(runner.raw["D"])
    batches, latents = _batches(1)
    runner.step({"real": batches[0], "z": latents[0]})
    hand_written_loop(G, D, batches, latents)
    stats = [k for k in D.state_dict() if k.endswith(("running_mean", "running_var", "num_batches_tracked"))]
    assert stats and int(D.state_dict()[stats[-1]]) == 3   # D(real), D(fake.detach()), D(fake)
    _assert_same_weights(runner, G, D)


def test_without_penalty_the_forward_work_is_pytorch_examples():
    """G once, D three times per step: D(real), D(fake.detach()), D(fake) for G's step."""
    plan = api.plan(GRAPHS / "dcgan.yaml", ["objectives.gan.penalty=null"])
    assert plan.forward_calls() == {"G": 1, "D": 3}


def test_parameters_actually_moved():
    runner = api.runner(GRAPHS / "dcgan.yaml", ["train.batch=8"], cpu=True)
    before = {k: v.clone() for k, v in runner.raw["G"].state_dict().items()}
    runner.step()
    after = runner.raw["G"].state_dict()
    assert any(not torch.equal(before[k], after[k]) for k in before)
