"""graphs/bigan.yaml: BiGAN / ALI (Donahue et al. 2017; Dumoulin et al. 2017). The compiled step
equals a hand-written one (the critic on (x, E(x)) vs (G(z), z); G and E stepped together, E
wanting its pairs judged fake), and the graph trains and reports its metrics."""
import copy

import pytest
import torch
import torch.nn.functional as F

from composer import api
from conftest import GRAPHS

PATH = GRAPHS / "bigan.yaml"
STEPS = 2
BATCH = 4


def reference_step(G, E, D, opt_GE, opt_D, x, z, gamma=0.0):
    """D step on (x, E(x)) real and (G(z), z) fake, E(x) and G(z) detached, with R1 (weight gamma)
    on the real pairs from the same D call, both inputs' gradients enabled; then one step of G and
    E through the frozen D: -log D(G(z), z) - log(1 - D(x, E(x)))."""
    ex, gz = E(x), G(z)
    D.requires_grad_(True)
    opt_D.zero_grad()
    pair = [x.detach().requires_grad_(True), ex.detach().requires_grad_(True)] if gamma else [x, ex.detach()]
    real, fake = D(*pair), D(gz.detach(), z)
    loss = F.softplus(-real).mean() + F.softplus(fake).mean()
    if gamma:
        grads = torch.autograd.grad(real.sum(), pair, create_graph=True)
        loss = loss + gamma * (0.5 * sum(g.flatten(1).pow(2).sum(1) for g in grads)).mean()
    loss.backward()
    opt_D.step()
    D.requires_grad_(False)
    opt_GE.zero_grad()
    real, fake = D(x, ex), D(gz, z)
    (F.softplus(-fake).mean() + F.softplus(real).mean()).backward()
    opt_GE.step()


@pytest.mark.parametrize("penalty, calls", [("null", 4), ("r1", 4)])
def test_compiled_bigan_equals_a_hand_written_step(penalty, calls):
    """With R1 the critic's call on the real pairs (ex detached) serves R1 too, dropout mask
    included: D 4 times per step either way."""
    runner = api.runner(PATH, [f"train.batch={BATCH}", f"objectives.gan.penalty={penalty}"], cpu=True)
    G, E, D = (copy.deepcopy(runner.raw[name]) for name in ("G", "E", "D"))
    before = copy.deepcopy(E.state_dict())
    adam = dict(lr=2e-4, betas=(0.5, 0.999))
    opt_GE = torch.optim.Adam([*G.parameters(), *E.parameters()], **adam)
    opt_D = torch.optim.Adam(D.parameters(), **adam)
    gen = torch.Generator().manual_seed(11)
    for step in range(STEPS):
        x = torch.rand(BATCH, 1, 16, 16, generator=gen) * 2 - 1
        z = torch.randn(BATCH, 16, generator=gen)
        torch.manual_seed(200 + step)            # the critic's dropout masks: the same draws in both
        runner.step({"x": x, "x.y": torch.zeros(BATCH, dtype=torch.int64), "z": z})
        torch.manual_seed(200 + step)
        reference_step(G, E, D, opt_GE, opt_D, x, z, gamma=1.0 if penalty == "r1" else 0.0)
    for name, net in (("G", G), ("E", E), ("D", D)):
        compiled = runner.raw[name].state_dict()
        for key, value in net.state_dict().items():
            assert torch.equal(compiled[key], value), f"{name}.{key} differs"
    assert not torch.equal(before["0.weight"], E.state_dict()["0.weight"])   # E moved (term gan.E)
    assert runner.plan.forward_calls() == {"G": 1, "E": 1, "D": calls}


def test_bigan_plan_trains_g_and_e_in_one_phase_on_pairs():
    plan = api.plan(PATH)
    assert [(p.name, set(p.trains), p.frozen) for p in plan.phases] == [
        ("D", {"D"}, ()), ("GE", {"G", "E"}, ("D",))]
    assert plan.phase("GE").terms == ("gan.G", "gan.E")
    table = api.format_table(plan)
    assert "D(x, ex)" in table and "D(gz, z)" in table


def test_bigan_trains_a_few_steps(tmp_path):
    overrides = ["train.steps=2", "train.batch=8", "train.log_every=1", "train.sample_every=1",
                 "train.checkpoint_every=2", "sample.n=16", "eval.n=64", "eval.metrics.paired.n=32"]
    results = api.train(PATH, tmp_path, overrides, quiet=True)
    assert results["step"] == 2
    assert 0 <= results["paired.label_preservation"] <= 1
    assert results["paired.untranslated_label_preservation"] >= 0.9   # real test digits
    assert results["digits.classes_total"] == 10
