"""`composer export RUN --format diffusers -o DIR`: a diffusers `DDPMPipeline` folder (save_pretrained)
that `DDPMPipeline.from_pretrained(DIR)` loads and samples without composer.

What it takes: a run whose `sample.objective` is a `denoising` objective on a VP schedule (vp,
ddpm_linear, cosine), unconditional, whose denoiser is a `diffusers.UNet2DModel` block
(composer/blocks/bridges/diffusers_models.py) with `timestep_shift: -1`. What it writes: the U-Net
(its own config, EMA weights where kept), a scheduler, and `composer.json` (the run, the mapping, the
equivalent `composer sample` options and the check made after writing).

The time mapping. Composer's denoiser sees t in [0, 1]; the bridge gives the U-Net
timestep = t * T + shift, with T = `timestep_scale` (1000). With shift = -1 the U-Net's integer
timestep i is composer's time t_i = (i + 1) / T, so diffusers' steps i = 0 .. T-1 are the times
1/T .. 1 (t = 1, pure noise, is i = T-1), as composer's samplers start at t = 1. The scheduler
gets `trained_betas` beta_i = 1 - abar_i / abar_{i-1} (abar_{-1} = 1) with
abar_i = gamma(t_i)^2 of the run's schedule, so its alphas_cumprod[i] is the run's signal
variance at t_i (up to diffusers' float32 cumprod), whatever the schedule; `time: logsnr` only
changes which t are drawn in training, the U-Net still sees t, so it exports too. Any other shift
puts the integer steps between composer's times and is refused.

The grids. diffusers' `timestep_spacing="trailing"` with K steps takes i = T - 1, T - 1 - T/K, ...,
T/K - 1 and ends at alpha_cumprod = 1 (DDIM's `set_alpha_to_one`, DDPM's `one`): the times
1, 1 - 1/K, ..., 1/K, 0, which is composer's `time_grid(K, spacing="uniform", t_min=0)` when K
divides T. So `DDPMPipeline(num_inference_steps=K)` equals `composer sample RUN sampler=ddim|ddpm
steps=K spacing=uniform t_min=0` (the same initial noise from the same torch.Generator, and for
ddpm the same per-step noise: both draw one N(0, I) per step in order). The scheduler is a
DDPMScheduler (variance "fixed_small" = DDIM with eta = 1) when the run samples with `ddpm`,
otherwise a DDIMScheduler (eta = 0), both with `clip_sample=False` and `prediction_type` from the
recipe's target (eps -> epsilon, v -> v_prediction, x0 -> sample).
"""
from __future__ import annotations

import copy
import json
from pathlib import Path

import torch

from composer.errors import ComposerError

PREDICTION_TYPES = {"eps": "epsilon", "v": "v_prediction", "x0": "sample"}
CHECK_N, CHECK_SEED = 4, 0
TOLERANCE = 1e-4     # largest difference from composer's sampler, relative to max(1, max |x|) (an untrained
                     # U-Net's samples reach |x| ~ 500: x0_hat divides by gamma(1) = 0.0066)
INFO = "composer.json"


def to_pipeline(runner, out: Path, *, ema: bool = True) -> list[Path]:
    """Write `runner`'s denoiser and schedule as a DDPMPipeline folder `out`; returns the files written."""
    diffusers = _library()
    denoiser = _denoiser(runner)
    adapter = _adapter(runner, denoiser.model, ema)
    steps_total = _steps_total(adapter)
    unet = copy.deepcopy(adapter.model).cpu().eval()
    sampler = runner.spec.sample.options.get("sampler", "heun")
    scheduler = make_scheduler(diffusers, denoiser.schedule, steps_total, denoiser.target, stochastic=sampler == "ddpm")
    out = Path(out)
    diffusers.DDPMPipeline(unet=unet, scheduler=scheduler).save_pretrained(str(out))
    steps = _check_steps(runner.spec.sample.options.get("steps", 20), steps_total)
    composer_sampler = "ddpm" if sampler == "ddpm" else "ddim"
    same = ema or denoiser.model not in runner.ema       # composer samples the weights written
    if not same:
        check = {"checked": False, "why": "--no-ema: composer samples the EMA weights"}
    elif runner.device.type != "cpu":
        check = {"checked": False, "why": f"the run is on {runner.device.type}, the pipeline on the CPU"}
    else:
        check = _check(runner, out, composer_sampler, steps)
    info = _info(runner, denoiser, ema, scheduler, composer_sampler, steps, check)
    (out / INFO).write_text(json.dumps(info, indent=2) + "\n")
    return sorted(p for p in out.rglob("*") if p.is_file())


def _library():
    try:
        import diffusers
    except ImportError as err:
        raise ComposerError(f"--format diffusers needs the diffusers package: pip install diffusers ({err})") from None
    return diffusers


def _denoiser(runner):
    from composer.recipes.denoising import Denoiser
    from composer.recipes.schedules import Schedule

    objective = runner.spec.sample.objective
    made = runner.graph.generators.get(objective) if objective else None
    if not isinstance(made, Denoiser):
        raise ComposerError(f"--format diffusers exports a denoising objective (sample.objective); this run's "
                            f"is {objective!r}{'' if made is None else ' (' + type(made).__name__ + ')'}")
    if not isinstance(made.schedule, Schedule):
        raise ComposerError(f"--format diffusers: schedule {type(made.schedule).__name__} is not a VP schedule "
                            "(vp, ddpm_linear, cosine): diffusers' DDPM/DDIM schedulers need alphas_cumprod")
    if made.conds:
        raise ComposerError(f"--format diffusers: objective '{objective}' is conditional (cond: "
                            f"{', '.join(made.conds)}); DDPMPipeline samples unconditional models only")
    if runner.spec.sample.options.get("decode"):
        raise ComposerError("--format diffusers: sample.decode (latent diffusion) has no place in a DDPMPipeline")
    return made


def _adapter(runner, name: str, ema: bool):
    from composer.blocks.bridges.diffusers_models import DiffusersDenoiser

    adapter = runner.unwrapped(name, ema=ema)
    blocks = sorted({m.block or "a list of blocks" for m in runner.spec.modules})
    if not isinstance(adapter, DiffusersDenoiser):
        raise ComposerError(
            f"--format diffusers needs a run whose denoiser is a diffusers.* block; this run's denoiser "
            f"'{name}' is not (blocks: {', '.join(blocks)}). Export it with --format onnx|torchscript|safetensors "
            f"--module {name} instead, or train with {{block: diffusers.UNet2DModel, ...}}")
    kind = type(adapter.model).__name__
    if kind != "UNet2DModel":
        raise ComposerError(f"--format diffusers writes a DDPMPipeline, whose unet is a UNet2DModel; "
                            f"'{name}' is a diffusers.{kind}")
    return adapter


def _steps_total(adapter) -> int:
    scale, shift = adapter.timestep_scale, adapter.timestep_shift
    if scale != round(scale) or scale < 2 or shift != -1:
        raise ComposerError(
            f"--format diffusers needs the denoiser's timesteps on diffusers' integer steps: timestep_shift: -1 "
            f"and an integer timestep_scale (timestep = t * scale - 1, step i at t = (i + 1) / scale); this "
            f"denoiser has timestep_scale: {scale:g}, timestep_shift: {shift:g}")
    return int(scale)


def discrete_betas(schedule, steps_total: int) -> torch.Tensor:
    """beta_i = 1 - abar_i / abar_{i-1}, abar_i = gamma(t_i)^2 at t_i = (i + 1) / T (float64, [T])."""
    t = torch.arange(1, steps_total + 1, dtype=torch.float64) / steps_total
    log_abar = 2 * schedule.log_gamma(t)
    previous = torch.cat([log_abar.new_zeros(1), log_abar[:-1]])
    return -torch.expm1(log_abar - previous)


def make_scheduler(diffusers, schedule, steps_total: int, target: str, *, stochastic: bool):
    """DDPMScheduler (stochastic) or DDIMScheduler whose alphas_cumprod[i] = gamma((i + 1) / T)^2."""
    common = {"num_train_timesteps": steps_total, "trained_betas": discrete_betas(schedule, steps_total).tolist(),
              "prediction_type": PREDICTION_TYPES[target], "clip_sample": False, "timestep_spacing": "trailing",
              "steps_offset": 0}
    if stochastic:
        return diffusers.DDPMScheduler(variance_type="fixed_small", **common)
    return diffusers.DDIMScheduler(set_alpha_to_one=True, **common)


def _check_steps(steps: int, steps_total: int) -> int:
    """The run's sampler steps if they divide T (the grids coincide), else the nearest divisor below."""
    return max(k for k in range(1, min(steps, steps_total) + 1) if steps_total % k == 0)


def _check(runner, out: Path, sampler: str, steps: int) -> dict:
    """The written folder, loaded by diffusers, against composer's sampler from the same generator: the
    pipeline's own loop (its initial noise, `set_timesteps`, unet, `scheduler.step`) before its final
    clamp to [0, 1], and the pipeline's call itself."""
    from composer.run.generate import generate

    diffusers = _library()
    pipe = load_quietly(diffusers, out)
    want = generate(runner, CHECK_N, generator=torch.Generator().manual_seed(CHECK_SEED), sampler=sampler,
                    steps=steps, spacing="uniform", t_min=0.0).cpu()
    loop = pipeline_loop(pipe, CHECK_N, steps, torch.Generator().manual_seed(CHECK_SEED))
    called = pipe(batch_size=CHECK_N, generator=torch.Generator().manual_seed(CHECK_SEED),
                  num_inference_steps=steps, output_type="pt").images
    scale = max(1.0, float(want.abs().max()))
    diff = float((loop - want).abs().max())
    diff_called = float((called - (want / 2 + 0.5).clamp(0, 1)).abs().max())
    if diff > TOLERANCE * scale or diff_called > TOLERANCE:
        raise ComposerError(f"the exported pipeline differs from composer's {sampler} sampler by {diff:.3g} "
                            f"(samples up to {scale:.3g}; {diff_called:.3g} on the pipeline's [0, 1] images; "
                            f"{CHECK_N} samples, {steps} steps)")
    return {"checked": True, "by": f"diffusers {diffusers.__version__} DDPMPipeline.from_pretrained",
            "samples": CHECK_N, "steps": steps, "composer_sampler": sampler, "max_abs_diff": diff,
            "max_abs_sample": scale, "max_abs_diff_pipeline_images": diff_called}


def load_quietly(diffusers, folder: Path):
    """DDPMPipeline.from_pretrained(folder) without progress bars."""
    diffusers.utils.logging.disable_progress_bar()
    try:
        pipe = diffusers.DDPMPipeline.from_pretrained(str(folder))
    finally:
        diffusers.utils.logging.enable_progress_bar()
    pipe.set_progress_bar_config(disable=True)
    return pipe


@torch.no_grad()
def pipeline_loop(pipe, n: int, steps: int, generator: torch.Generator) -> torch.Tensor:
    """DDPMPipeline.__call__'s sampling loop (diffusers 0.42) without its final (x / 2 + 0.5).clamp(0, 1)."""
    size = pipe.unet.config.sample_size
    shape = (n, pipe.unet.config.in_channels, *((size, size) if isinstance(size, int) else size))
    x = torch.randn(shape, generator=generator, dtype=pipe.unet.dtype)
    pipe.scheduler.set_timesteps(steps)
    for t in pipe.scheduler.timesteps:
        x = pipe.scheduler.step(pipe.unet(x, t).sample, t, x, generator=generator).prev_sample
    return x


def _info(runner, denoiser, ema: bool, scheduler, sampler: str, steps: int, check: dict) -> dict:
    from composer.run.module_file import header

    return {**header(runner, "diffusers"), "module": denoiser.model,
            "weights": "ema" if ema and denoiser.model in runner.ema else "trained",
            "schedule": type(denoiser.schedule).__name__, "target": denoiser.target,
            "scheduler": type(scheduler).__name__,
            "time": "unet timestep i = composer t * T - 1, t_i = (i + 1) / T; "
                    "alphas_cumprod[i] = gamma(t_i)^2",
            "equivalent": f"num_inference_steps=K (K dividing {scheduler.config.num_train_timesteps}) equals "
                          f"composer sample sampler={sampler} steps=K spacing=uniform t_min=0 on the same generator",
            "check": check}
