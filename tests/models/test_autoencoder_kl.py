"""graphs/autoencoder_kl.yaml, latent diffusion's first stage with a diffusers AutoencoderKL: the
compiled steps equal (bitwise, one CPU thread) a hand-written loop on the same diffusers model (L1 + KL + hinge patch GAN),
and the file trains a few steps and scores its reconstructions on held-out digits."""
import copy

import torch
import torch.nn.functional as F

from composer import api
from conftest import GRAPHS

AE = GRAPHS / "autoencoder_kl.yaml"
STEPS = 2
BATCH = 8
KL_WEIGHT, GAN_WEIGHT = 1.0e-4, 0.1      # the file's objectives


def per_sample(x):
    return x.flatten(1).mean(1)


def hand_written_loop(vae, D, batches, eps_gen, lr=5e-4, betas=(0.5, 0.9)):
    """The autoencoder step, then the critic's on the same (detached) reconstructions:
    z = mean + exp(logvar / 2) eps from diffusers' posterior; loss = L1 + 1e-4 KL (summed over the
    latent) + 0.1 hinge G loss through D; then D on x and rec.detach() with the hinge loss."""
    opt_vae = torch.optim.Adam(vae.parameters(), lr=lr, betas=betas)
    opt_D = torch.optim.Adam(D.parameters(), lr=lr, betas=betas)
    for x in batches:
        opt_vae.zero_grad()
        posterior = vae.encode(x).latent_dist
        mean, logvar = posterior.mean, posterior.logvar
        z = mean + torch.exp(0.5 * logvar) * torch.randn(mean.shape, generator=eps_gen)
        rec = vae.decode(z).sample
        kl = (0.5 * (mean.pow(2) + logvar.exp() - 1 - logvar)).flatten(1).sum(1)
        loss = per_sample((rec - x).abs()).mean() + KL_WEIGHT * kl.mean() + GAN_WEIGHT * per_sample(-D(rec)).mean()
        loss.backward()
        opt_vae.step()
        opt_D.zero_grad()
        loss_D = per_sample(F.relu(1 - D(x))).mean() + per_sample(F.relu(1 + D(rec.detach()))).mean()
        loss_D.backward()
        opt_D.step()


def test_compiled_autoencoder_kl_equals_hand_written_loop():
    runner = api.runner(AE, [f"train.batch={BATCH}"], cpu=True)
    vae, D = copy.deepcopy(runner.raw["vae"].model), copy.deepcopy(runner.raw["D"])
    assert type(vae).__name__ == "AutoencoderKL"
    eps_gen = torch.Generator()
    eps_gen.set_state(runner.generator.get_state())   # reparameterize draws from the run's generator
    gen = torch.Generator().manual_seed(7)
    batches = [torch.rand(BATCH, 1, 16, 16, generator=gen) * 2 - 1 for _ in range(STEPS)]
    for x in batches:
        runner.step({"x": x})
    hand_written_loop(vae, D, batches, eps_gen)
    for name, hand in (("vae", vae), ("D", D)):
        compiled = runner.raw[name].state_dict()
        prefix = "model." if name == "vae" else ""
        for key, value in hand.state_dict().items():
            assert torch.equal(compiled[prefix + key], value), f"{name}.{key} differs"
    assert runner.forward_calls == {"vae": 2 * STEPS, "D": 3 * STEPS}   # encode + decode; D(rec) x2, D(x)


def test_autoencoder_kl_trains_and_scores_reconstructions(tmp_path):
    overrides = ["train.steps=2", "train.batch=8", "train.log_every=1", "train.sample_every=0",
                 "train.checkpoint_every=0", "sample.n=4", "eval.n=64", "eval.metrics.paired.n=64"]
    results = api.train(AE, tmp_path, overrides, quiet=True)
    assert results["step"] == 2
    assert 0 < results["paired.l1"] < 2 and 0 <= results["paired.label_preservation"] <= 1
    assert "digits.frechet_ratio" in results
