"""graphs/aae.yaml (Makhzani et al. 2016): the plan is the paper's three-phase recipe, the
compiled step equals a hand-written three-phase step, and the graph file trains a few steps."""
import copy
import json

import torch
import torch.nn.functional as F

from composer import api
from composer.graph.view import format_table
from conftest import GRAPHS, modules_stepped
from specs import TINY_RUN

AAE = GRAPHS / "aae.yaml"
STEPS = 3
BATCH = 8
LATENT = 8
G_WEIGHT = 0.02      # graphs/aae.yaml: objectives.reg.generator_weight


def test_plan_is_the_three_phase_recipe():
    plan = api.plan(AAE)
    recon, D, G = plan.phases
    assert (recon.name, recon.optimizers, recon.terms) == ("recon", ("ae",), ("rec.loss",))
    assert (D.name, D.optimizers, D.terms) == ("D", ("D",), ("reg.D_real", "reg.D_fake"))
    assert (G.name, G.optimizers, G.terms) == ("G", ("ae",), ("reg.G",))
    # the regularisation phase reads E's codes detached; the generator phase freezes D
    assert ("z", "reg.fake_logits") in D.cuts and D.trains == ("D",) and D.frozen == ()
    assert G.frozen == ("D",) and "E" in G.trains
    # one optimizer per parameter: ae (E, dec) serves the reconstruction and generator phases
    assert plan.graph.owner == {"E": "ae", "dec": "ae", "D": "D"}
    assert plan.forward_calls() == {"E": 2, "dec": 1, "D": 3}
    table = format_table(plan)
    assert "3 phase(s) per step, in order recon -> D -> G" in table
    assert "detach z" in table and "D frozen" in table


def hand_written_loop(E, dec, D, batches, priors):
    """Makhzani et al.'s three phases per minibatch, as the usual PyTorch loops write them."""
    opt_ae = torch.optim.Adam([*E.parameters(), *dec.parameters()], lr=1e-3)
    opt_D = torch.optim.Adam(D.parameters(), lr=2e-4, betas=(0.5, 0.999))
    for x, z_prior in zip(batches, priors):
        # 1. reconstruction phase: E and dec
        opt_ae.zero_grad(set_to_none=True)
        (dec(E(x)) - x).pow(2).flatten(1).mean(1).mean().backward()
        opt_ae.step()
        # 2. regularisation phase: D on prior samples (real) vs codes of the updated E, detached
        opt_D.zero_grad(set_to_none=True)
        z = E(x)
        loss_D = F.softplus(-D(z_prior)).mean() + F.softplus(D(z.detach())).mean()
        loss_D.backward()
        opt_D.step()
        # 3. generator phase: E fools D (frozen), on the same codes, weighted
        opt_ae.zero_grad(set_to_none=True)
        D.requires_grad_(False)
        (G_WEIGHT * F.softplus(-D(z)).mean()).backward()
        D.requires_grad_(True)
        opt_ae.step()


def test_compiled_aae_step_equals_hand_written_three_phase_step():
    runner = api.runner(AAE, [f"train.batch={BATCH}"], cpu=True)
    E, dec, D = (copy.deepcopy(runner.raw[m]) for m in ("E", "dec", "D"))
    gen = torch.Generator().manual_seed(4)
    batches = [torch.rand(BATCH, 1, 16, 16, generator=gen) * 2 - 1 for _ in range(STEPS)]
    priors = [torch.randn(BATCH, LATENT, generator=gen) for _ in range(STEPS)]
    for x, z_prior in zip(batches, priors):
        runner.step({"x": x, "z_prior": z_prior})
    hand_written_loop(E, dec, D, batches, priors)
    for name, hand in (("E", E), ("dec", dec), ("D", D)):
        compiled = runner.raw[name].state_dict()
        for key, value in hand.state_dict().items():
            assert torch.equal(compiled[key], value), f"{name}.{key} differs"
    assert runner.forward_calls == {"E": 2 * STEPS, "dec": STEPS, "D": 3 * STEPS}


def test_every_phase_steps_the_gradients_it_should():
    """recon: E and dec; D: only D (codes detached); G: only E (D frozen, dec off the path)."""
    runner = api.runner(AAE, [f"train.batch={BATCH}"], cpu=True)
    assert modules_stepped(runner) == [("recon", {"E", "dec"}), ("D", {"D"}), ("G", {"E"})]


def test_aae_graph_trains_a_few_steps(tmp_path):
    results = api.train(AAE, tmp_path, TINY_RUN, quiet=True)
    assert results["step"] == 2 and results["digits.classes_total"] == 10
    assert json.loads((tmp_path / "eval.json").read_text()) == results
    assert (tmp_path / "samples" / "step_000001.png").exists()
    logs = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert all({"rec.loss", "reg.D_real", "reg.D_fake", "reg.G"} <= set(row) for row in logs)
