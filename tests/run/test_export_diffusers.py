"""composer export --format diffusers: the DDPMPipeline folder loads and samples in a Python that never
imports composer, and its samples equal composer's ddim / ddpm sampler on the uniform grid ending at
t = 0 from the same torch.Generator (the same initial noise; for ddpm the same per-step noise); its
scheduler's alphas_cumprod[i] is the run's gamma((i + 1) / T)^2 and its trailing timesteps are
composer's grid; what cannot be exported is refused with a message."""
import json
import subprocess
import sys

import pytest
import torch

from composer import api
from composer.errors import ComposerError
from composer.recipes.denoising import make_schedule
from composer.recipes.samplers import time_grid
from composer.run.export_diffusers import discrete_betas, make_scheduler
from conftest import GRAPHS

diffusers = pytest.importorskip("diffusers")

GRAPH = GRAPHS / "diffusion_diffusers.yaml"
TINY = ["modules.eps_net.block_out_channels=[8,16]", "modules.eps_net.norm_num_groups=4",
        "modules.eps_net.attention_head_dim=8", "sample.steps=10"]
N, STEPS, SEED = 4, 10, 3
RELATIVE = 1e-5   # |diffusers - composer| <= RELATIVE * max(1, max |x|): an untrained U-Net's samples reach ~500

OUTSIDE = """
import sys, torch
from diffusers import DDPMPipeline
folder, out, n, steps, seed = sys.argv[1], sys.argv[2], *map(int, sys.argv[3:])
pipe = DDPMPipeline.from_pretrained(folder)
pipe.set_progress_bar_config(disable=True)
images = pipe(batch_size=n, generator=torch.Generator().manual_seed(seed), num_inference_steps=steps,
              output_type="pt").images
generator = torch.Generator().manual_seed(seed)            # the pipeline's loop without its final clamp
x = torch.randn(n, 1, 8, 8, generator=generator)
pipe.scheduler.set_timesteps(steps)
with torch.no_grad():
    for t in pipe.scheduler.timesteps:
        x = pipe.scheduler.step(pipe.unet(x, t).sample, t, x, generator=generator).prev_sample
assert not any(m == "composer" or m.startswith("composer.") for m in sys.modules), "composer was imported"
torch.save({"images": images, "x": x, "scheduler": type(pipe.scheduler).__name__}, out)
"""


def outside_composer(folder, tmp_path) -> dict:
    """Load and sample the pipeline in a fresh Python that imports only diffusers and torch."""
    out = tmp_path / "outside.pt"
    subprocess.run([sys.executable, "-c", OUTSIDE, str(folder), str(out), str(N), str(STEPS), str(SEED)],
                   check=True, cwd=tmp_path, capture_output=True, text=True)
    return torch.load(out)


@pytest.mark.slow
@pytest.mark.parametrize("sampler, scheduler", [("ddim", "DDIMScheduler"), ("ddpm", "DDPMScheduler")])
def test_pipeline_samples_without_composer_equal_composer_sampler(tmp_path, sampler, scheduler):
    run = api.runner(GRAPH, TINY + [f"sample.sampler={sampler}"], cpu=True)
    files = api.export(run, "diffusers", tmp_path / "pipe")
    assert {f.relative_to(tmp_path / "pipe").as_posix() for f in files} == {
        "composer.json", "model_index.json", "scheduler/scheduler_config.json", "unet/config.json",
        "unet/diffusion_pytorch_model.safetensors"}
    got = outside_composer(tmp_path / "pipe", tmp_path)
    want = api.sample(run, N, seed=SEED, sampler=sampler, steps=STEPS, spacing="uniform", t_min=0.0)
    scale = max(1.0, float(want.abs().max()))
    diff = float((got["x"] - want).abs().max())
    pixels = float((got["images"] - (want / 2 + 0.5).clamp(0, 1)).abs().max())
    print(f"{sampler}: max |diffusers - composer| {diff:.3g} on samples up to {scale:.3g}; pixels {pixels:.3g}")
    assert got["scheduler"] == scheduler
    assert diff <= RELATIVE * scale and pixels <= 1e-4
    check = json.loads((tmp_path / "pipe" / "composer.json").read_text())["check"]
    assert check["checked"] and check["composer_sampler"] == sampler and check["steps"] == STEPS


@pytest.mark.parametrize("name", ["vp", "ddpm_linear", "cosine"])
def test_scheduler_alphas_cumprod_are_the_schedule_at_i_plus_one_over_T(name):
    schedule = make_schedule(name, None)
    scheduler = make_scheduler(diffusers, schedule, 1000, "eps", stochastic=False)
    t = torch.arange(1, 1001, dtype=torch.float64) / 1000
    want = schedule.gamma(t) ** 2
    assert float(((scheduler.alphas_cumprod.double() - want) / want).abs().max()) < 1e-5   # float32 cumprod
    if name == "ddpm_linear":   # its knots are diffusers' own linear betas
        assert torch.allclose(discrete_betas(schedule, 1000), schedule.betas, rtol=1e-9, atol=0)


@pytest.mark.parametrize("steps", [1, 10, 50, 1000])
def test_trailing_timesteps_are_composer_uniform_grid_to_zero(steps):
    scheduler = make_scheduler(diffusers, make_schedule("vp", None), 1000, "eps", stochastic=False)
    scheduler.set_timesteps(steps)
    grid = time_grid(steps, t_min=0.0, spacing="uniform")
    assert torch.allclose((scheduler.timesteps.double() + 1) / 1000, grid[:-1], atol=1e-12)


@pytest.mark.parametrize("target, prediction_type", [("v", "v_prediction"), ("x0", "sample")])
def test_targets_map_to_prediction_types_and_the_check_passes(tmp_path, target, prediction_type):
    run = api.runner(GRAPH, TINY + [f"objectives.dsm.target={target}", "sample.sampler=ddim"], cpu=True)
    api.export(run, "diffusers", tmp_path / "pipe")
    config = json.loads((tmp_path / "pipe" / "scheduler" / "scheduler_config.json").read_text())
    assert config["prediction_type"] == prediction_type and config["clip_sample"] is False
    assert config["timestep_spacing"] == "trailing" and config["set_alpha_to_one"] is True
    check = json.loads((tmp_path / "pipe" / "composer.json").read_text())["check"]
    assert check["max_abs_diff"] <= 1e-4 * check["max_abs_sample"]


@pytest.mark.parametrize("source, overrides, message", [
    (GRAPH, ["modules.eps_net.timestep_shift=0"],
     r"timestep_shift: -1 and an integer timestep_scale .* this denoiser has timestep_scale: 1000, timestep_shift: 0"),
    (GRAPHS / "diffusion.yaml", ["modules.eps_net.width=8", "modules.eps_net.groups=4"],
     r"needs a run whose denoiser is a diffusers.\* block; this run's denoiser 'eps_net' is not \(blocks: UNet\)"),
    (GRAPHS / "dcgan.yaml", ["modules.G.width=8", "modules.D.width=8"],
     r"exports a denoising objective \(sample.objective\); this run's is None"),
])
def test_refusals(tmp_path, source, overrides, message):
    run = api.runner(source, TINY[:3] + overrides if source == GRAPH else overrides, cpu=True)
    with pytest.raises(ComposerError, match=message):
        api.export(run, "diffusers", tmp_path / "pipe")


def test_a_file_is_not_a_pipeline_folder_and_node_module_do_not_apply(tmp_path):
    run = api.runner(GRAPH, TINY, cpu=True)
    (tmp_path / "x.bin").write_text("")
    with pytest.raises(ComposerError, match=r"x.bin is a file: --format diffusers writes a pipeline folder"):
        api.export(run, "diffusers", tmp_path / "x.bin")
    with pytest.raises(ComposerError, match=r"--format diffusers writes the whole pipeline .* drop --node/--module"):
        api.export(run, "diffusers", tmp_path / "pipe", module="eps_net")


def test_no_ema_writes_the_trained_weights_and_says_the_check_was_not_made(tmp_path):
    run = api.runner(GRAPH, TINY, cpu=True)
    api.export(run, "diffusers", tmp_path / "pipe", ema=False)
    record = json.loads((tmp_path / "pipe" / "composer.json").read_text())
    assert record["weights"] == "trained" and record["module"] == "eps_net" and record["schedule"] == "VPSDE"
    assert record["check"] == {"checked": False, "why": "--no-ema: composer samples the EMA weights"}
    unet = diffusers.UNet2DModel.from_pretrained(tmp_path / "pipe" / "unet")
    trained = run.unwrapped("eps_net", ema=False).model.state_dict()
    assert all(torch.equal(trained[k], v) for k, v in unet.state_dict().items())
