"""graphs/cgan.yaml: the compiled class-conditional DCGAN step equals a hand-written one (D then
G, the projection critic on (image, label) pairs, R1 on real pairs), and the file trains."""
import copy
import json

import torch
import torch.nn.functional as F

from composer import api
from conftest import GRAPHS

STEPS = 2
BATCH = 8
TINY = ["train.steps=2", "train.batch=4", "train.log_every=1", "train.sample_every=1",
        "train.checkpoint_every=1", "sample.n=10", "eval.n=20", "eval.metrics.class_agreement.n=20"]


def r1(logits, x):
    """R1 = 1/2 ||grad_x D(x, y)||^2 on real pairs, the label held fixed (Mescheder et al. 2018),
    from the loss term's logits D(x, y), `x` given to D with its gradient enabled."""
    (grad,) = torch.autograd.grad(logits.sum(), x, create_graph=True)
    return 0.5 * grad.pow(2).flatten(1).sum(1).mean()


def hand_written_step(G, D, opt_G, opt_D, real, labels, z, y_fake, gamma=1.0):
    """pytorch/examples' DCGAN step made conditional (Mirza & Osindero 2014): D judges real digits
    with their labels and fakes with the labels they were drawn for; R1 on the real pairs, from
    the same D(real, labels) call (its image input's gradient enabled)."""
    opt_D.zero_grad()
    x = real.detach().requires_grad_(True)
    real_logits = D(x, labels)
    fake = G(z, y_fake)
    fake_logits = D(fake.detach(), y_fake)
    loss_D = F.softplus(-real_logits).mean() + F.softplus(fake_logits).mean() + gamma * r1(real_logits, x)
    loss_D.backward()
    opt_D.step()
    opt_G.zero_grad()
    loss_G = F.softplus(-D(fake, y_fake)).mean()
    loss_G.backward()
    opt_G.step()
    return loss_D.item(), loss_G.item()


def test_compiled_cgan_step_equals_hand_written_step():
    runner = api.runner(GRAPHS / "cgan.yaml", [f"train.batch={BATCH}", "train.ema={}"], cpu=True)
    G, D = copy.deepcopy(runner.raw["G"]), copy.deepcopy(runner.raw["D"])
    opt_G = torch.optim.Adam(G.parameters(), lr=2e-4, betas=(0.5, 0.999))
    opt_D = torch.optim.Adam(D.parameters(), lr=2e-4, betas=(0.5, 0.999))
    gen = torch.Generator().manual_seed(7)
    for _ in range(STEPS):
        real = torch.rand(BATCH, 1, 16, 16, generator=gen) * 2 - 1
        labels = torch.randint(10, (BATCH,), generator=gen)
        z = torch.randn(BATCH, 32, generator=gen)
        y_fake = torch.randint(10, (BATCH,), generator=gen)
        logs = runner.step({"real": real, "real.y": labels, "z": z, "y_fake": y_fake})
        hand_D, hand_G = hand_written_step(G, D, opt_G, opt_D, real, labels, z, y_fake)
        assert abs(logs["gan.D_real"] + logs["gan.D_fake"] + logs["gan.D_r1"] - hand_D) <= 1e-6
        assert logs["gan.G"] == hand_G
    for name, hand in (("G", G), ("D", D)):
        compiled = runner.raw[name].state_dict()
        for key, value in hand.state_dict().items():
            assert torch.equal(compiled[key], value), f"{name}.{key} differs"
    assert runner.forward_calls == {"G": STEPS, "D": 3 * STEPS}
    assert runner.plan.forward_calls() == {"G": 1, "D": 3}


def test_the_labels_reach_both_networks():
    """Changing only the labels changes the fake and the critic's verdict on a fixed image."""
    runner = api.runner(GRAPHS / "cgan.yaml", cpu=True)
    G, D = runner.raw["G"].eval(), runner.raw["D"].eval()
    z = torch.randn(2, 32, generator=torch.Generator().manual_seed(0))
    zeros, ones = torch.zeros(2, dtype=torch.int64), torch.ones(2, dtype=torch.int64)
    with torch.no_grad():
        assert not torch.equal(G(z, zeros), G(z, ones))
        x = G(z, zeros)
        assert not torch.equal(D(x, zeros), D(x, ones))


def test_cgan_graph_trains_a_few_steps(tmp_path):
    results = api.train(GRAPHS / "cgan.yaml", tmp_path, TINY, quiet=True)
    assert results["step"] == 2
    assert (tmp_path / "samples" / "step_000001.png").exists()
    assert json.loads((tmp_path / "eval.json").read_text()) == results
    for key in ("class_agreement.agreement", "class_agreement.agreement_min_class", "digits.frechet_distance"):
        assert key in results
