"""graphs/pix2pix.yaml: the compiled step equals a hand-written step written like the reference's
`Pix2PixModel.optimize_parameters` (junyanz/pytorch-CycleGAN-and-pix2pix), and the plan has the
paper's recipe (a conditional critic on concat(input, output), G once per step)."""
import copy

import torch
import torch.nn.functional as F

from composer import api
from conftest import GRAPHS

STEPS = 2
BATCH = 4
LAMBDA_L1 = 100.0


def bce(logits, real: bool):
    """The reference's GANLoss('vanilla'), BCE with logits against 1 (real) or 0 (fake), as
    softplus(-l) or softplus(l) (the same function), averaged per image then over the batch."""
    return F.softplus(-logits if real else logits).flatten(1).mean(1).mean()


def reference_step(G, D, opt_G, opt_D, real_A, real_B):
    """forward; D step on (real_A, real_B) vs (real_A, fake_B) detached, (real + fake) x 0.5;
    G step through the frozen, just-updated D: GAN + L1 x 100. (The reference calls D on the fake
    pair first; the order changes only batch norm's running statistics, so D on the real pair
    comes first here, as in the compiled plan.)"""
    fake_B = G(real_A)
    D.requires_grad_(True)
    opt_D.zero_grad()
    pred_real = D(torch.cat((real_A, real_B), 1))
    pred_fake = D(torch.cat((real_A, fake_B), 1).detach())
    loss_D = 0.5 * bce(pred_real, True) + 0.5 * bce(pred_fake, False)
    loss_D.backward()
    opt_D.step()
    D.requires_grad_(False)
    opt_G.zero_grad()
    pred_fake = D(torch.cat((real_A, fake_B), 1))
    loss_G = bce(pred_fake, True) + LAMBDA_L1 * (fake_B - real_B).abs().flatten(1).mean(1).mean()
    loss_G.backward()
    opt_G.step()


def test_compiled_pix2pix_equals_the_reference_step():
    runner = api.runner(GRAPHS / "pix2pix.yaml", [f"train.batch={BATCH}"], cpu=True)
    nets = {name: copy.deepcopy(runner.raw[name]) for name in ("G", "D")}
    before = copy.deepcopy(nets["G"].state_dict())
    calls = {name: 0 for name in nets}
    for name, net in nets.items():
        net.register_forward_hook(lambda *_, name=name: calls.__setitem__(name, calls[name] + 1))
    adam = dict(lr=2e-4, betas=(0.5, 0.999))
    opt_G = torch.optim.Adam(nets["G"].parameters(), **adam)
    opt_D = torch.optim.Adam(nets["D"].parameters(), **adam)
    gen = torch.Generator().manual_seed(5)
    for step in range(STEPS):
        x = torch.rand(BATCH, 1, 16, 16, generator=gen) * 2 - 1
        target = torch.rand(BATCH, 1, 16, 16, generator=gen) * 2 - 1
        torch.manual_seed(100 + step)            # the U-Net's dropout masks: the same draws in both
        runner.step({"pair": x, "pair.target": target})
        torch.manual_seed(100 + step)
        reference_step(nets["G"], nets["D"], opt_G, opt_D, x, target)
    for name, net in nets.items():
        compiled = runner.raw[name].state_dict()
        for key, value in net.state_dict().items():
            assert torch.equal(compiled[key], value), f"{name}.{key} differs"   # bitwise, buffers too
    assert not torch.equal(before["down.0.0.weight"], nets["G"].state_dict()["down.0.0.weight"])
    assert runner.forward_calls == calls == {"G": STEPS, "D": 3 * STEPS}


def test_pix2pix_plan_is_the_papers_recipe():
    plan = api.plan(GRAPHS / "pix2pix.yaml")
    assert [p.name for p in plan.phases] == ["D", "G"]
    assert plan.forward_calls() == {"G": 1, "D": 3}
    table = api.format_table(plan)
    assert "cat[dim=1](pair, pair.target)" in table and "cat[dim=1](pair, fake)" in table
    assert "0.5 * non_saturating.D_real" in table and "100 * l1(fake, pair.target)" in table


def test_pix2pix_trains_a_few_steps(tmp_path):
    overrides = ["train.steps=2", "train.batch=4", "train.log_every=1", "train.sample_every=1",
                 "train.checkpoint_every=2", "eval.metrics.paired.n=32"]
    results = api.train(GRAPHS / "pix2pix.yaml", tmp_path, overrides, quiet=True)
    assert results["step"] == 2
    assert (tmp_path / "samples" / "step_000001.png").exists()
    assert 0 <= results["paired.l1"] <= 2
    assert 0 <= results["paired.label_preservation"] <= 1
    assert 0 <= results["paired.untranslated_label_preservation"] <= 1
