"""graphs/infogan.yaml: the compiled InfoGAN step equals a hand-written one (Q is a second head on
D's trunk; the code's cross-entropy is minimised by D in D's phase and by G in G's), and the file
trains."""
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
    """R1 from the loss term's logits D(x)[0], `x` given to D with its gradient enabled."""
    (grad,) = torch.autograd.grad(logits.sum(), x, create_graph=True)
    return 0.5 * grad.pow(2).flatten(1).sum(1).mean()


def hand_written_step(G, D, opt_G, opt_D, real, z, c, gamma=1.0):
    """Chen et al. 2016 on the DCGAN step, D returning (logits, Q's code logits): D on real (its
    gradient enabled for R1, from the same call) and detached fakes, plus lambda L_I = CE(Q(fake), c);
    then G through the frozen D plus L_I. D runs 3 times: its batch-norm statistics move 3 times."""
    opt_D.zero_grad()
    fake = G(z, c)
    fake_logits, code_logits = D(fake.detach())          # the compiled phase calls D on fake first
    x = real.detach().requires_grad_(True)
    real_logits = D(x)[0]
    loss_D = F.softplus(-real_logits).mean() + F.softplus(fake_logits).mean() + gamma * r1(real_logits, x)
    info_D = F.cross_entropy(code_logits, c)
    (loss_D + info_D).backward()
    opt_D.step()
    opt_G.zero_grad()
    D.requires_grad_(False)
    fake_logits, code_logits = D(fake)
    loss_G, info_G = F.softplus(-fake_logits).mean(), F.cross_entropy(code_logits, c)
    (loss_G + info_G).backward()
    D.requires_grad_(True)
    opt_G.step()
    return loss_D.item(), loss_G.item(), info_G.item()


def test_compiled_infogan_step_equals_hand_written_step():
    runner = api.runner(GRAPHS / "infogan.yaml", [f"train.batch={BATCH}", "train.ema={}"], cpu=True)
    G, D = (copy.deepcopy(runner.raw[m]) for m in ("G", "D"))
    opt_G = torch.optim.Adam(G.parameters(), lr=2e-4, betas=(0.0, 0.99))
    opt_D = torch.optim.Adam(D.parameters(), lr=2e-4, betas=(0.0, 0.99))
    gen = torch.Generator().manual_seed(7)
    for _ in range(STEPS):
        real = torch.rand(BATCH, 1, 16, 16, generator=gen) * 2 - 1
        z = torch.randn(BATCH, 32, generator=gen)
        c = torch.randint(10, (BATCH,), generator=gen)
        logs = runner.step({"real": real, "z": z, "c": c})
        hand_D, hand_G, hand_info = hand_written_step(G, D, opt_G, opt_D, real, z, c)
        assert abs(logs["gan.D_real"] + logs["gan.D_fake"] + logs["gan.D_r1"] - hand_D) <= 1e-6
        assert abs(logs["gan.G"] - hand_G) <= 1e-6 and abs(logs["info.loss"] - hand_info) <= 1e-6
    for name, hand in (("G", G), ("D", D)):
        compiled = runner.raw[name].state_dict()
        for key, value in hand.state_dict().items():
            assert torch.allclose(compiled[key], value, atol=1e-7), f"{name}.{key} differs"
    assert runner.forward_calls == {"G": STEPS, "D": 3 * STEPS}   # D(fake) once per phase for both heads


def test_the_code_head_trains_in_both_phases():
    plan = api.validate(GRAPHS / "infogan.yaml")
    assert "info.loss" in plan.phase("D").terms and "info.loss" in plan.phase("G").terms


def test_the_code_reaches_the_generator():
    runner = api.runner(GRAPHS / "infogan.yaml", cpu=True)
    G = runner.raw["G"].eval()
    z = torch.randn(2, 32, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert not torch.equal(G(z, torch.zeros(2, dtype=torch.int64)), G(z, torch.ones(2, dtype=torch.int64)))


def test_infogan_graph_trains_a_few_steps(tmp_path):
    results = api.train(GRAPHS / "infogan.yaml", tmp_path, TINY, quiet=True)
    assert results["step"] == 2
    assert (tmp_path / "samples" / "step_000001.png").exists()
    assert json.loads((tmp_path / "eval.json").read_text()) == results
    codes = sorted(results[f"class_agreement.code_{k}"] for k in range(10))
    assert codes == list(range(10))                  # the matching is one-to-one
    assert 0.0 <= results["class_agreement.agreement"] <= 1.0 and "digits.frechet_ratio" in results
