"""Invariant 3: the compiled graphs/dcgan.yaml equals a hand-written pytorch/examples-style loop."""
import copy

import torch
import torch.nn.functional as F

from composer import api
from conftest import GRAPHS

STEPS = 5


def r1(D, real):
    """R1 = 1/2 ||grad_x D(x)||^2 on real data (Mescheder et al. 2018)."""
    x = real.detach().requires_grad_(True)
    (grad,) = torch.autograd.grad(D(x).sum(), x, create_graph=True)
    return 0.5 * grad.pow(2).flatten(1).sum(1).mean()


def hand_written_loop(G, D, batches, latents, lr=2e-4, betas=(0.0, 0.99), gamma=1.0):
    """pytorch/examples dcgan/main.py's loop, on logits, plus the graph's R1 penalty: D on real,
    fake = G(z) once, D on fake.detach(), R1 on real, step D; D on the same fake, step G."""
    opt_D = torch.optim.Adam(D.parameters(), lr=lr, betas=betas)
    opt_G = torch.optim.Adam(G.parameters(), lr=lr, betas=betas)
    calls = {"G": 0, "D": 0}
    count = lambda name: (lambda *_: calls.__setitem__(name, calls[name] + 1))  # noqa: E731
    G.register_forward_hook(count("G"))
    D.register_forward_hook(count("D"))
    for real, z in zip(batches, latents):
        opt_D.zero_grad()
        real_logits = D(real)
        fake = G(z)
        fake_logits = D(fake.detach())
        loss_D = F.softplus(-real_logits).mean() + F.softplus(fake_logits).mean() + gamma * r1(D, real)
        loss_D.backward()
        opt_D.step()
        opt_G.zero_grad()
        loss_G = F.softplus(-D(fake)).mean()
        loss_G.backward()
        opt_G.step()
    return calls


def test_compiled_dcgan_equals_hand_written_loop():
    runner = api.runner(GRAPHS / "dcgan.yaml", ["train.batch=8", "train.ema={}"], cpu=True)
    G = copy.deepcopy(runner.raw["G"])
    D = copy.deepcopy(runner.raw["D"])
    gen = torch.Generator().manual_seed(3)
    batches = [torch.rand(8, 1, 16, 16, generator=gen) * 2 - 1 for _ in range(STEPS)]
    latents = [torch.randn(8, 32, generator=gen) for _ in range(STEPS)]
    for real, z in zip(batches, latents):
        runner.step({"real": real, "z": z})
    calls = hand_written_loop(G, D, batches, latents)
    for name, hand in (("G", G), ("D", D)):
        compiled = runner.raw[name].state_dict()
        for key, value in hand.state_dict().items():
            assert torch.equal(compiled[key], value), f"{name}.{key} differs"
    assert runner.forward_calls == calls == {"G": STEPS, "D": 4 * STEPS}
    assert runner.plan.forward_calls() == {"G": 1, "D": 4}


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
