"""graphs/vae.yaml (Kingma & Welling 2014): the compiled step equals a hand-written VAE step,
the KL warm-up weight follows its schedule in the runner, generation decodes prior samples,
and the graph file trains a few steps."""
import copy
import json

import pytest
import torch

from composer import api
from composer.run.generate import generate
from conftest import GRAPHS
from specs import TINY_RUN

VAE = GRAPHS / "vae.yaml"
STEPS = 3
BATCH = 8
LATENT = 8
KL_END = 1.25e-3       # graphs/vae.yaml: 2 sigma^2 / D with sigma = 0.4, D = 256
WARMUP = 2000
# a warm-up short enough that the KL term counts in a 3-step parity run
FAST_WARMUP = ["objectives.kl.weight={type: linear, steps: 2, start: 0.25, end: 1.0}"]


def hand_written_step(enc, dec, opt, x, eps_gen, kl_weight):
    """One VAE step: h = enc(x); (mu, logvar) = chunk(h, 2); z = mu + exp(logvar / 2) * eps;
    loss = mean_pixels (dec(z) - x)^2 + kl_weight * KL(N(mu, exp(logvar)) || N(0, I))."""
    opt.zero_grad(set_to_none=True)
    mu, logvar = enc(x).chunk(2, dim=1)
    eps = torch.randn(mu.shape, generator=eps_gen)
    z = mu + torch.exp(0.5 * logvar) * eps
    rec = (dec(z) - x).pow(2).flatten(1).mean(1).mean()
    kl = (0.5 * (mu.pow(2) + logvar.exp() - 1 - logvar)).sum(1).mean()
    (rec + kl_weight * kl).backward()
    opt.step()


def test_compiled_vae_step_equals_hand_written_step():
    runner = api.runner(VAE, [f"train.batch={BATCH}", *FAST_WARMUP], cpu=True)
    enc, dec = copy.deepcopy(runner.raw["enc"]), copy.deepcopy(runner.raw["dec"])
    eps_gen = torch.Generator()
    eps_gen.set_state(runner.generator.get_state())   # reparameterize draws eps from runner.generator
    gen = torch.Generator().manual_seed(5)
    batches = [torch.rand(BATCH, 1, 16, 16, generator=gen) * 2 - 1 for _ in range(STEPS)]
    for x in batches:
        runner.step({"x": x})
    opt = torch.optim.Adam([*enc.parameters(), *dec.parameters()], lr=1e-3)
    for step, x in enumerate(batches):
        hand_written_step(enc, dec, opt, x, eps_gen, kl_weight=0.25 + 0.75 * min(1.0, step / 2))
    for name, hand in (("enc", enc), ("dec", dec)):
        compiled = runner.raw[name].state_dict()
        for key, value in hand.state_dict().items():
            assert torch.equal(compiled[key], value), f"{name}.{key} differs"
    assert runner.forward_calls == {"enc": STEPS, "dec": STEPS}   # x_gen is not computed in training


def test_kl_weight_schedule_values():
    kl = api.plan(VAE).graph.nodes["kl.loss"]
    assert kl.weight_at(0) == 0.0
    assert kl.weight_at(WARMUP // 2) == pytest.approx(KL_END / 2)
    assert kl.weight_at(WARMUP) == kl.weight_at(10 * WARMUP) == pytest.approx(KL_END)
    assert api.plan(VAE).graph.nodes["rec.loss"].weight_at(0) == 1.0


def _one_sgd_step(overrides, step_count, x):
    """Parameters of enc after one SGD step taken at `step_count` (SGD: the update is linear in
    the weighted gradient, so a different KL weight gives a different update)."""
    runner = api.runner(VAE, [f"train.batch={BATCH}", "optimizers.vae.type=sgd", *overrides], cpu=True)
    runner.step_count = step_count
    runner.step({"x": x})
    return [p.detach().clone() for p in runner.raw["enc"].parameters()]


@pytest.mark.parametrize("step_count", [0, 500, 5000])
def test_runner_weighs_kl_term_by_its_schedule_at_each_step(step_count):
    """The scheduled term at step k updates exactly like a constant weight w(k), and w changes."""
    x = torch.rand(BATCH, 1, 16, 16, generator=torch.Generator().manual_seed(1)) * 2 - 1
    schedule = "objectives.kl.weight={type: linear, steps: 1000, start: 0.0, end: 1.0}"
    constant = f"objectives.kl.weight={min(1.0, step_count / 1000)}"
    scheduled = _one_sgd_step([schedule], step_count, x)
    fixed = _one_sgd_step([constant], step_count, x)
    other = _one_sgd_step(["objectives.kl.weight=0.25"], step_count, x)
    assert all(torch.equal(a, b) for a, b in zip(scheduled, fixed))
    assert not all(torch.equal(a, b) for a, b in zip(scheduled, other))


def test_generation_decodes_prior_samples():
    plan = api.plan(VAE)
    phase, = plan.phases
    assert "x_gen" not in phase.needed and "z_prior" not in phase.needed
    runner = api.runner(plan, cpu=True)
    z = torch.randn(4, LATENT, generator=torch.Generator().manual_seed(2))
    samples = generate(runner, 4, inputs={"z_prior": z})
    assert samples.shape == (4, 1, 16, 16) and samples.abs().max() <= 1
    with torch.no_grad():
        assert torch.allclose(samples, runner.raw["dec"](z), atol=1e-6)


def test_vae_graph_trains_a_few_steps(tmp_path):
    results = api.train(VAE, tmp_path, TINY_RUN, quiet=True)
    assert results["step"] == 2 and results["digits.classes_total"] == 10
    assert json.loads((tmp_path / "eval.json").read_text()) == results
    assert (tmp_path / "samples" / "step_000001.png").exists()
    logs = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert all("rec.loss" in row and "kl.loss" in row for row in logs)
