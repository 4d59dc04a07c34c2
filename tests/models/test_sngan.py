"""graphs/sngan.yaml (Miyato et al. 2018): the compiled graph equals a hand-written loop of hinge
loss, a spectrally normalised critic and Adam, bitwise on the CPU."""
import copy

import torch
import torch.nn.functional as F

from composer import api
from composer.blocks import BLOCKS
from composer.graph.spectral import spectral_layers
from conftest import GRAPHS

STEPS = 4


def hand_written_loop(G, D, batches, latents, lr=2e-4, betas=(0.0, 0.99)):
    """Miyato et al.'s Algorithm 1 with n_dis = 1: hinge loss for D on D(real) and D(G(z).detach()),
    step D; -D(G(z)) for G, step G. Each call of D in training mode runs one power iteration."""
    opt_D = torch.optim.Adam(D.parameters(), lr=lr, betas=betas)
    opt_G = torch.optim.Adam(G.parameters(), lr=lr, betas=betas)
    for real, z in zip(batches, latents):
        opt_D.zero_grad()
        real_logits = D(real)
        fake = G(z)
        fake_logits = D(fake.detach())
        loss_D = F.relu(1 - real_logits).mean() + F.relu(1 + fake_logits).mean()
        loss_D.backward()
        opt_D.step()
        opt_G.zero_grad()
        loss_G = -D(fake).mean()
        loss_G.backward()
        opt_G.step()


def test_compiled_sngan_equals_hand_written_loop():
    runner = api.runner(GRAPHS / "sngan.yaml", ["train.batch=8", "train.ema={}"], cpu=True)
    G = copy.deepcopy(runner.raw["G"])
    torch.manual_seed(0)   # the hand-written critic: the same block, its own init, normalised by torch
    D = BLOCKS["DCGANDiscriminator"](image_size=16, channels=1, width=32, norm="none")
    for layer in spectral_layers(D):
        torch.nn.utils.parametrizations.spectral_norm(layer)
    D.load_state_dict(runner.raw["D"].state_dict())   # same raw weights and power-iteration state
    gen = torch.Generator().manual_seed(3)
    batches = [torch.rand(8, 1, 16, 16, generator=gen) * 2 - 1 for _ in range(STEPS)]
    latents = [torch.randn(8, 32, generator=gen) for _ in range(STEPS)]
    for real, z in zip(batches, latents):
        runner.step({"real": real, "z": z})
    hand_written_loop(G, D, batches, latents)
    for name, hand in (("G", G), ("D", D)):
        compiled = runner.raw[name].state_dict()
        for key, value in hand.state_dict().items():
            assert torch.equal(compiled[key], value), f"{name}.{key} differs"
    assert "net.0.parametrizations.weight.0._u" in D.state_dict()
    assert runner.plan.forward_calls() == {"G": 1, "D": 3}


def test_the_critic_has_no_penalty_and_hinge_terms():
    plan = api.plan(GRAPHS / "sngan.yaml")
    terms = [t for phase in plan.phases for t in phase.terms]
    assert terms == ["gan.D_real", "gan.D_fake", "gan.G"]
    assert all(plan.graph.nodes[t].target.startswith("hinge.") for t in terms)
    assert [m.name for m in plan.spec.modules if m.spectral_norm] == ["D"]
