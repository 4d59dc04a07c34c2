"""Sampling speed: composer's samplers (recipes/samplers.py) against a plain loop and diffusers.

    python bench/sampling.py [--steps 20 50] [--n 64] [--rounds 5] [--threads 1]
    python bench/sampling.py --smoke      # CI: a tiny U-Net, 4 samples, 2 and 3 steps, seconds

The network is graphs/diffusion.yaml's U-Net (`eps_net`, its seeded initial weights: speed does
not depend on training), in eval mode under torch.no_grad. For each sampler and step count, three
contenders draw `n` samples from the same network, interleaved in an order that rotates each
round (bench/timing.py's rule), timed in this thread's CPU time:

- composer: `samplers.sample(name, ...)` on the objective's eps model and the sampler's default
  time grid (what `composer sample` runs);
- plain: the same update written by hand as a user would, its coefficients (gamma, sigma, beta,
  lambda at the grid points) precomputed as Python floats, the network called on a prebuilt
  time tensor per step; the same grid, noise and arithmetic order, so its samples agree with
  composer's to float32 round-off (the `max |diff|` column);
- diffusers: the scheduler loop of the matching diffusers scheduler (DDIM, DDPM, Euler, Heun,
  DPM-Solver++ 2M; none for Euler-Maruyama) on the same network, with the VP-SDE's betas
  (linear 1e-4 -> 0.02 over 1,000 steps, the course's DDPM discretisation) and timestep i read
  as t = (i + 1) / 1000 (/work/shared/NOTES.md "samplers vs diffusers"). Its grid is diffusers'
  own (`timestep_spacing="trailing"`), so it is a speed comparison, not a numerical one.

Prints samples/s of each and the ratio composer / plain time (median, min-max over rounds).
"""
from __future__ import annotations

import argparse
import inspect
import os
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from composer import api  # noqa: E402
from composer.recipes import samplers  # noqa: E402
from composer.recipes.dsm import as_eps_model  # noqa: E402
from composer.recipes.schedules import VPSDE  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
GRAPH = ROOT / "graphs" / "diffusion.yaml"
T_MIN = 1e-3
SMOKE = {"steps": [2, 3], "n": 4, "rounds": 1, "samplers": ["ddim", "heun"],
         "overrides": ["modules.eps_net.width=8", "modules.eps_net.groups=4"]}
DIFFUSERS = {"ddim": "DDIMScheduler", "ddpm": "DDPMScheduler", "euler": "EulerDiscreteScheduler",
             "heun": "HeunDiscreteScheduler", "dpmpp_2m": "DPMSolverMultistepScheduler"}


def plain_loop(name: str, net, x, ts, schedule, generator, n: int):
    """A hand-written sampler `name` over grid `ts`: float coefficients, one network call per NFE."""
    g, s, b, lam = ([float(f(ts[i])) for i in range(len(ts))]
                    for f in (schedule.gamma, schedule.sigma, schedule.beta, schedule.lam))
    times = [torch.full((n,), float(t), dtype=x.dtype) for t in ts]
    steps = len(ts) - 1
    x0_prev, h_prev = None, None
    for i in range(steps):
        eps = net(x, times[i])
        dt = float(ts[i + 1] - ts[i])
        if name == "euler_maruyama":
            x = x + (0.5 * b[i] * x - b[i] * eps / s[i]) * -dt
            x = x + (b[i] * -dt) ** 0.5 * torch.randn(x.shape, generator=generator)
        elif name == "euler":
            x = x + dt * (-0.5 * b[i] * (x - eps / s[i]))
        elif name == "heun":
            d = -0.5 * b[i] * (x - eps / s[i])
            x_euler = x + dt * d
            d_next = -0.5 * b[i + 1] * (x_euler - net(x_euler, times[i + 1]) / s[i + 1])
            x = x + dt * 0.5 * (d + d_next)
        elif name in ("ddim", "ddpm"):
            x0 = (x - s[i] * eps) / g[i]
            c = s[i + 1] / s[i] * (1 - (g[i] / g[i + 1]) ** 2) ** 0.5 if name == "ddpm" else 0.0
            x = g[i + 1] * x0 + (s[i + 1] ** 2 - c**2) ** 0.5 * eps
            if c:
                x = x + c * torch.randn(x.shape, generator=generator)
        else:   # dpmpp_2m
            x0 = (x - s[i] * eps) / g[i]
            h = lam[i + 1] - lam[i]
            d = x0 if x0_prev is None else (1 + h / (2 * h_prev)) * x0 - h / (2 * h_prev) * x0_prev
            x = s[i + 1] / s[i] * x - g[i + 1] * torch.expm1(torch.tensor(-h)).item() * d
            x0_prev, h_prev = x0, h
    return x


def diffusers_loop(name: str, net, x, steps: int, generator, n: int):
    """The scheduler loop of diffusers' pipelines on the same network (t = (i + 1) / 1000)."""
    import diffusers

    options = {"clip_sample": False} if name in ("ddim", "ddpm") else {}
    scheduler = getattr(diffusers, DIFFUSERS[name])(num_train_timesteps=1000, beta_start=1e-4, beta_end=0.02,
                                                    timestep_spacing="trailing", **options)
    scheduler.set_timesteps(steps)
    noise = {"generator": generator} if "generator" in inspect.signature(scheduler.step).parameters else {}
    x = x * scheduler.init_noise_sigma
    for t in scheduler.timesteps:
        eps = net(scheduler.scale_model_input(x, t), ((t.float() + 1) / 1000).expand(n))
        x = scheduler.step(eps, t, x, **noise).prev_sample
    return x


def contenders(name: str, net, eps_model, schedule, steps: int, n: int, shape: tuple) -> dict:
    """name -> a function of a seed drawing n samples."""
    spacing = samplers.DEFAULT_SPACING[name]
    ts = samplers.time_grid(steps, t_min=T_MIN, spacing=spacing, schedule=schedule)

    def composer(seed):
        return samplers.sample(name, eps_model, (n, *shape), schedule, steps, generator=torch.Generator().manual_seed(seed),
                               t_min=T_MIN, spacing=spacing, dtype=torch.float32)

    def plain(seed):
        gen = torch.Generator().manual_seed(seed)
        return plain_loop(name, net, torch.randn((n, *shape), generator=gen), ts, schedule, gen, n)

    out = {"composer": composer, "plain": plain}
    if name in DIFFUSERS:
        def with_diffusers(seed):
            gen = torch.Generator().manual_seed(seed)
            return diffusers_loop(name, net, torch.randn((n, *shape), generator=gen), steps, gen, n)
        out["diffusers"] = with_diffusers
    return out


def measure(runs: dict, rounds: int) -> dict:
    """name -> per-round CPU seconds of one draw, every contender on the same seed each round."""
    names, times = list(runs), {name: [] for name in runs}
    for name in names:           # warm-up
        runs[name](0)
    for r in range(rounds):
        for name in names[r % len(names):] + names[:r % len(names)]:
            start = time.thread_time()
            runs[name](r + 1)
            times[name].append(time.thread_time() - start)
    return times


def row(name: str, steps: int, n: int, runs: dict, times: dict) -> str:
    rate = {k: n / statistics.median(v) for k, v in times.items()}
    per_round = [c / p for c, p in zip(times["composer"], times["plain"])]
    gap = float((runs["composer"](0) - runs["plain"](0)).abs().max())
    diffusers = f"{rate['diffusers']:,.0f}" if "diffusers" in rate else "—"
    return (f"| {name} | {steps} | {rate['composer']:,.0f} | {rate['plain']:,.0f} | {diffusers} | "
            f"**{statistics.median(per_round):.3f}** ({min(per_round):.2f}-{max(per_round):.2f}) | {gap:.1e} |")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, nargs="*", default=[20, 50])
    parser.add_argument("--samplers", nargs="*", default=list(samplers.SAMPLERS), choices=list(samplers.SAMPLERS))
    parser.add_argument("--n", type=int, default=64, help="samples per draw (the batch of each NFE)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--smoke", action="store_true", help="a tiny U-Net, 4 samples, 2 and 3 steps (CI)")
    parser.add_argument("overrides", nargs="*", help="k=v overrides of graphs/diffusion.yaml")
    args = parser.parse_args(argv)
    if args.smoke:
        vars(args).update(SMOKE)
    start = time.perf_counter()
    torch.set_num_threads(args.threads)
    runner = api.runner(GRAPH, ["train.ema={}", f"train.threads={args.threads}", *args.overrides], cpu=True)
    torch.set_num_threads(args.threads)
    net = runner.raw["eps_net"].eval()
    schedule = VPSDE()
    eps_model = as_eps_model(lambda x, t: net(x, t.to(x.dtype)), schedule, "eps")   # as recipes/denoising.py
    shape = tuple(runner.graph.shapes["x0"])
    lines = ["| sampler | steps | composer samples/s | plain loop samples/s | diffusers samples/s | "
             "composer / plain time (min-max) | max abs diff composer vs plain |", "|---|---|---|---|---|---|---|"]
    with torch.no_grad():
        for name in args.samplers:
            for steps in args.steps:
                runs = contenders(name, net, eps_model, schedule, steps, args.n, shape)
                lines.append(row(name, steps, args.n, runs, measure(runs, args.rounds)))
    print(f"sampling: graphs/diffusion.yaml's U-Net (initial weights), {args.n} samples of {list(shape)} per draw, "
          f"{args.rounds} rounds, {args.threads} thread(s), CPU time, torch {torch.__version__}, "
          f"load average {os.getloadavg()[0]:.1f}, {time.perf_counter() - start:.0f} s")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
