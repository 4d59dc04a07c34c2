"""graphs/vaegan.yaml (Larsen et al. 2016): the plan is the paper's three updates, the compiled step
equals a hand-written loop of the paper's Algorithm 1 bit for bit on the CPU, and the file trains."""
import copy
import json

import torch
import torch.nn.functional as F

from composer import api
from composer.graph.view import format_table
from conftest import GRAPHS, modules_stepped
from specs import TINY_RUN

VAEGAN = GRAPHS / "vaegan.yaml"
STEPS = 3
BATCH = 8
LATENT = 8
KL_WEIGHT = 2.0e-3     # objectives.kl.weight
GAMMA = 1.0            # objectives.rec_dec.weight
LR, BETAS = 3.0e-4, (0.5, 0.999)


def test_plan_is_the_papers_three_updates():
    plan = api.plan(VAEGAN)
    enc, dec, D = plan.phases
    assert (enc.name, enc.terms, enc.trains) == ("enc", ("kl.loss", "rec_enc.loss"), ("enc",))
    assert (dec.name, dec.terms, dec.trains) == ("dec", ("rec_dec.loss", "gan_rec.G", "gan_p.G"), ("dec",))
    assert (D.name, D.trains) == ("D", ("D",))
    assert D.terms == ("gan_rec.D_real", "gan_rec.D_fake", "gan_p.D_real", "gan_p.D_fake")
    # the encoder is frozen out of the decoder's phase (z read as data), D out of both reconstructions
    assert ("z", "x_rec") in dec.cuts and enc.frozen == ("D", "dec") and dec.frozen == ("D",)
    assert ("x_rec", "judged_rec") in D.cuts and ("x_p", "gan_p.fake_logits.out") in D.cuts
    table = format_table(plan)
    assert "3 phase(s) per step, in order enc -> dec -> D" in table and "detach z" in table


def _nll_gan(logits, real: bool):
    return F.softplus(-logits if real else logits).mean()


def hand_written_loop(enc, dec, D, batches, priors, gen):
    """Algorithm 1 of Larsen et al.: one forward, then enc <- grad(L_prior + L_llike),
    dec <- grad(gamma L_llike - L_GAN), D <- grad(L_GAN), every gradient at the parameters the
    forward saw (each update after the first reads what it does not train detached, computed
    before the earlier updates stepped)."""
    opt_enc, opt_dec, opt_D = (torch.optim.Adam(m.parameters(), lr=LR, betas=BETAS) for m in (enc, dec, D))
    for x, z_p in zip(batches, priors):
        # 1. encoder: L_prior + L_llike (feature-wise, through D's trunk); dec and D frozen
        opt_enc.zero_grad(set_to_none=True)
        dec.requires_grad_(False), D.requires_grad_(False)
        mu, logvar = enc(x).chunk(2, dim=1)
        z = mu + torch.exp(0.5 * logvar) * torch.randn(mu.shape, generator=gen)
        feat_x = D(x)[1].detach()
        prior = 0.5 * (mu.pow(2) + logvar.exp() - 1 - logvar).sum(1)
        llike = (D(dec(z))[1] - feat_x).pow(2).mean(1)
        (KL_WEIGHT * prior.mean() + llike.mean()).backward()
        dec.requires_grad_(True)
        opt_enc.step()
        # 2. decoder: gamma L_llike - L_GAN (non-saturating) on x~ = dec(z) and x_p = dec(z_p); D frozen
        opt_dec.zero_grad(set_to_none=True)
        logits_rec, feat_rec = D(x_rec := dec(z.detach()))
        llike = (feat_rec - feat_x).pow(2).mean(1)
        x_p = dec(z_p)
        loss = GAMMA * llike.mean() if GAMMA != 1 else llike.mean()
        (loss + _nll_gan(logits_rec, True) + _nll_gan(D(x_p)[0], True)).backward()
        D.requires_grad_(True)
        opt_dec.step()
        # 3. critic: L_GAN, the real term once and each fake term at half weight
        opt_D.zero_grad(set_to_none=True)
        real, fake_rec, fake_p = D(x)[0], D(x_rec.detach())[0], D(x_p.detach())[0]
        loss = 0.5 * _nll_gan(real, True) + 0.5 * _nll_gan(fake_rec, False)
        (loss + 0.5 * _nll_gan(real, True) + 0.5 * _nll_gan(fake_p, False)).backward()
        opt_D.step()


def test_compiled_step_equals_the_hand_written_algorithm_bit_for_bit():
    runner = api.runner(VAEGAN, [f"train.batch={BATCH}"], cpu=True)
    enc, dec, D = (copy.deepcopy(runner.raw[m]) for m in ("enc", "dec", "D"))
    gen = torch.Generator()
    gen.set_state(runner.ctx.generator.get_state())      # the reparameterisation's draws
    data = torch.Generator().manual_seed(4)
    batches = [torch.rand(BATCH, 1, 16, 16, generator=data) * 2 - 1 for _ in range(STEPS)]
    priors = [torch.randn(BATCH, LATENT, generator=data) for _ in range(STEPS)]
    for x, z_p in zip(batches, priors):
        runner.step({"x": x, "z_prior": z_p})
    hand_written_loop(enc, dec, D, batches, priors, gen)
    for name, hand in (("enc", enc), ("dec", dec), ("D", D)):
        compiled = runner.raw[name].state_dict()
        for key, value in hand.state_dict().items():
            assert torch.equal(compiled[key], value), f"{name}.{key} differs"
    assert runner.forward_calls == {"enc": STEPS, "dec": 3 * STEPS, "D": 7 * STEPS}


def test_every_phase_steps_only_its_module():
    """enc never receives the GAN gradient, D neither reconstruction's."""
    runner = api.runner(VAEGAN, [f"train.batch={BATCH}"], cpu=True)
    assert modules_stepped(runner) == [("enc", {"enc"}), ("dec", {"dec"}), ("D", {"D"})]


def test_vaegan_graph_trains_a_few_steps(tmp_path):
    results = api.train(VAEGAN, tmp_path, TINY_RUN, quiet=True)
    assert results["step"] == 2 and results["digits.classes_total"] == 10
    assert json.loads((tmp_path / "eval.json").read_text()) == results
    assert (tmp_path / "samples" / "step_000001.png").exists()
    logs = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    terms = {"kl.loss", "rec_enc.loss", "rec_dec.loss", "gan_rec.G", "gan_p.G", "gan_rec.D_real", "gan_p.D_fake"}
    assert all(terms <= set(row) for row in logs)
