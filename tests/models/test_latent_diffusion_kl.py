"""graphs/latent_diffusion_kl.yaml, latent diffusion's second stage: stage 1's AutoencoderKL,
exported by `composer export --module vae`, loads with `pretrained:` and stays frozen; a compiled
step equals a hand-written DSM step in its scaled latent space on the same diffusers model;
sampling decodes with `vae.decode_latents`; the file trains a few steps."""
import copy

import pytest
import torch

from composer import api
from composer.run.generate import generate
from conftest import GRAPHS

STAGE1 = GRAPHS / "autoencoder_kl.yaml"
STAGE2 = GRAPHS / "latent_diffusion_kl.yaml"
BATCH = 8
BETA_MIN, BETA_MAX = 0.1, 20.0
SCALE = 2.0   # a scaling_factor for the tests (the file's is measured on stage 1's run)


@torch.no_grad()
def latent_scale(vae, n: int = 2048, seed: int = 0) -> float:
    """1 / the standard deviation of posterior samples of the train digits: the `scaling_factor`
    that gives the diffusion unit-variance data (Rombach et al. 2022, Sec. 4.3.2 and G).
    `vae` is the adapter block (api.load_module(RUN, "vae"))."""
    from composer.data.digits import digits

    x = digits(size=16, split="train").x[:n]
    gen = torch.Generator().manual_seed(seed)
    mean, logvar = vae.encode(x)
    return float(1 / (mean + torch.exp(0.5 * logvar) * torch.randn(mean.shape, generator=gen)).std())


def test_latent_scale_gives_unit_variance(stage_overrides):
    runner = api.runner(STAGE2, stage_overrides["latent_diffusion_kl"], cpu=True)
    scale = latent_scale(runner.raw["vae"], seed=0)
    assert 0.95 < scale / latent_scale(runner.raw["vae"], seed=1) < 1.05   # other draws, the same factor


def test_plan_shows_the_autoencoder_frozen(stage_overrides):
    plan = api.plan(STAGE2, stage_overrides["latent_diffusion_kl"])
    assert [(p.name, p.trains, p.frozen) for p in plan.phases] == [("eps_net", ("eps_net",), ("vae",))]


def test_stage2_loads_stage1s_exported_vae_and_keeps_it_fixed(tmp_path):
    """The user path: train stage 1, export its vae, run stage 2 on the file."""
    run = tmp_path / "stage1"
    api.train(STAGE1, run, ["train.steps=1", "train.batch=8", "train.log_every=0", "train.sample_every=0",
                            "train.checkpoint_every=0", "sample.n=4", "eval.metrics={}"], quiet=True)
    file = tmp_path / "vae.safetensors"
    api.export(run, "safetensors", file, module="vae")
    trained = api.load_module(run, "vae").state_dict()
    runner = api.runner(STAGE2, [f"modules.vae.pretrained={file}", "train.batch=8"], cpu=True)
    vae = runner.raw["vae"]
    assert not vae.training and not any(p.requires_grad for p in vae.parameters())
    for key, value in vae.state_dict().items():
        assert torch.equal(value, trained[key]), f"vae.{key} not loaded"
    runner.step()
    runner.step()
    for key, value in vae.state_dict().items():
        assert torch.equal(value, trained[key]), f"vae.{key} moved"


def hand_written_dsm_step(vae, net, optimizer, x, t, eps, eps_gen, scale):
    """z = scale * (mean + exp(logvar / 2) e) from diffusers' posterior of the frozen AutoencoderKL;
    x_t = gamma_t z + sigma_t eps (VP-SDE); MSE(eps_theta(x_t, t), eps); grad clip 1; one Adam step."""
    with torch.no_grad():
        posterior = vae.encode(x).latent_dist
        z = (posterior.mean + torch.exp(0.5 * posterior.logvar) * torch.randn(posterior.mean.shape, generator=eps_gen)) * scale
    log_gamma = -0.5 * (BETA_MIN * t + 0.5 * (BETA_MAX - BETA_MIN) * t**2)
    gamma = log_gamma.exp()[:, None, None, None]
    sigma = torch.sqrt(-torch.expm1(2 * log_gamma))[:, None, None, None]
    loss = (net(gamma * z + sigma * eps, t) - eps).pow(2).flatten(1).mean(1).mean()
    optimizer.zero_grad()
    loss.backward()
    torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
    optimizer.step()
    return loss.item()


def test_compiled_step_equals_hand_written_step(stage_overrides):
    overrides = [*stage_overrides["latent_diffusion_kl"], f"modules.vae.scaling_factor={SCALE}",
                 f"train.batch={BATCH}", "train.ema={}", "optimizers.eps_net.lr_schedule=null"]
    runner = api.runner(STAGE2, overrides, cpu=True)
    vae = copy.deepcopy(runner.raw["vae"].model)
    assert type(vae).__name__ == "AutoencoderKL" and runner.raw["vae"].scaling_factor == SCALE
    net = copy.deepcopy(runner.raw["eps_net"])
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-3)
    eps_gen = torch.Generator()
    eps_gen.set_state(runner.generator.get_state())   # reparameterize draws from the run's generator
    gen = torch.Generator().manual_seed(5)
    for _ in range(2):
        x = torch.rand(BATCH, 1, 16, 16, generator=gen) * 2 - 1
        t = 1e-3 + (1 - 1e-3) * torch.rand(BATCH, generator=gen)
        eps = torch.randn(BATCH, 1, 8, 8, generator=gen)
        logs = runner.step({"x": x, "dsm.u": t, "dsm.t": t, "dsm.eps": eps})   # u fed too: nothing else drawn
        hand_loss = hand_written_dsm_step(vae, net, optimizer, x, t, eps, eps_gen, SCALE)
        assert logs["dsm.loss"] == hand_loss
    compiled = runner.raw["eps_net"].state_dict()
    for key, value in net.state_dict().items():
        assert torch.equal(compiled[key], value), f"eps_net.{key} differs"


def test_sampling_decodes_with_the_scaled_decoder(stage_overrides):
    runner = api.runner(STAGE2, [*stage_overrides["latent_diffusion_kl"], f"modules.vae.scaling_factor={SCALE}"],
                        cpu=True)
    vae = runner.raw["vae"]
    z = torch.randn(3, 1, 8, 8, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        assert torch.equal(vae.scale_latents(z), z * SCALE)
        assert torch.equal(vae.decode_latents(z * SCALE), vae.decode(z * SCALE / SCALE))
    samples = generate(runner, 3, steps=2)
    assert samples.shape == (3, 1, 16, 16) and torch.isfinite(samples).all()


def test_stage2_trains_a_few_steps(tmp_path, stage_overrides):
    overrides = ["train.steps=2", "train.batch=8", "train.log_every=1", "train.sample_every=0",
                 "train.checkpoint_every=0", "sample.n=4", "sample.steps=2", "eval.n=64",
                 *stage_overrides["latent_diffusion_kl"]]
    results = api.train(STAGE2, tmp_path, overrides, quiet=True)
    assert results["step"] == 2 and "digits.frechet_ratio" in results


def test_decode_names_a_module_or_one_of_its_flow_methods(stage_overrides):
    from composer.errors import ComposerError

    with pytest.raises(ComposerError, match=r"sample\.decode: unknown module 'vae\.decode_latent' "
                                            r"\(did you mean 'vae\.decode_latents'\?\)"):
        api.plan(STAGE2, [*stage_overrides["latent_diffusion_kl"], "sample.decode=vae.decode_latent"])
