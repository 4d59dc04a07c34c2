"""graphs/wgan_gp.yaml: Gulrajani et al. 2017, Alg. 1: five critic rounds per step, each on fresh
data and noise, then a generator step on noise drawn afresh (`phases: {G: {redraw: [z]}}`)."""
import copy

import torch

from composer import api
from composer.graph.plan import Op
from conftest import GRAPHS

PATH = GRAPHS / "wgan_gp.yaml"


def test_plan_repeats_the_critic_and_redraws_z_for_the_generator():
    plan = api.plan(PATH)
    rounds = plan.rounds(plan.active(0))
    assert rounds == (("D",),) * 4 + (("D", "G"),)
    assert plan.phase("G").redraw == ("z",)
    _, g_ops = plan.program(rounds[-1])
    assert Op("z", "compute") in g_ops and Op("fake", "compute") in g_ops
    assert plan.forward_calls() == {"G": 6, "D": 16}


def test_without_redraw_the_generator_step_would_reuse_the_critics_z():
    plan = api.plan(PATH, ["phases={}"])
    _, g_ops = plan.program(plan.rounds(plan.active(0))[-1])
    assert Op("z", "reuse") in g_ops and Op("fake", "reuse") in g_ops


def test_generator_step_runs_on_noise_no_critic_round_saw():
    runner = api.runner(PATH, ["train.batch=16"], cpu=True)
    before = runner.raw["G"].net[0].weight.detach().clone()
    seen = []
    runner.raw["G"].register_forward_pre_hook(lambda _, args: seen.append(args[0].detach().clone()))
    runner.step()
    assert len(seen) == 6                       # 5 critic rounds + the generator phase
    critic_z, generator_z = seen[:5], seen[5]
    assert all(not torch.equal(generator_z, z) for z in critic_z)
    assert len({tuple(z.flatten().tolist()) for z in seen}) == 6
    assert not torch.equal(runner.raw["G"].net[0].weight, before)   # and G stepped on it


def reference_step(G, D, opt_G, opt_D, reals, gen, batch, lam=0.1, n_critic=5):
    """Gulrajani et al. 2017, Alg. 1 (lambda 0.1 as the graph file: the authors' toy setting),
    drawing z and alpha from `gen` in the order the runner draws them."""
    for real in reals[:n_critic]:
        z = torch.randn(batch, 2, generator=gen)
        fake = G(z)
        opt_D.zero_grad()
        loss = (-D(real)).flatten(1).mean(1).mean() + D(fake.detach()).flatten(1).mean(1).mean()
        alpha = torch.rand(batch, generator=gen).reshape(-1, 1)
        x_hat = (alpha * real + (1 - alpha) * fake.detach()).requires_grad_(True)
        (grad,) = torch.autograd.grad(D(x_hat).sum(), x_hat, create_graph=True)
        loss = loss + lam * ((grad.pow(2).sum(1).sqrt() - 1) ** 2).mean()
        loss.backward()
        opt_D.step()
    D.requires_grad_(False)
    opt_G.zero_grad()
    (-D(G(torch.randn(batch, 2, generator=gen)))).flatten(1).mean(1).mean().backward()   # fresh z
    opt_G.step()
    D.requires_grad_(True)


def test_compiled_wgan_gp_equals_algorithm_1():
    batch = 8
    runner = api.runner(PATH, [f"train.batch={batch}", "modules.G.hidden=32", "modules.D.hidden=32"], cpu=True)
    G, D = copy.deepcopy(runner.raw["G"]), copy.deepcopy(runner.raw["D"])
    adam = dict(lr=1e-4, betas=(0.5, 0.9))
    opt_G, opt_D = torch.optim.Adam(G.parameters(), **adam), torch.optim.Adam(D.parameters(), **adam)
    gen = torch.Generator()
    gen.set_state(runner.generator.get_state())
    reals, stream = [], runner.streams["real"]
    draw = stream.next
    stream.next = lambda: reals.append(draw()) or reals[-1]
    for _ in range(2):
        reals.clear()
        runner.step()
        assert len(reals) == 5                  # each critic round on a fresh batch of data
        reference_step(G, D, opt_G, opt_D, [r["x"] for r in reals], gen, batch)
    for name, net in (("G", G), ("D", D)):
        compiled = runner.raw[name].state_dict()
        for key, value in net.state_dict().items():
            assert torch.equal(compiled[key], value), f"{name}.{key} differs"


def test_wgan_gp_trains_a_few_steps(tmp_path):
    overrides = ["train.steps=2", "train.batch=16", "train.log_every=1", "train.sample_every=1",
                 "train.checkpoint_every=2", "sample.n=64", "eval.n=64"]
    results = api.train(PATH, tmp_path, overrides, quiet=True)
    assert results["step"] == 2
    assert results["mixture.modes_total"] == 8
    assert 0 <= results["mixture.modes"] <= 8
