"""Diffusion samplers side by side on the 25-mode grid of PacGAN/VEEGAN (std 0.05).

One trained denoiser (graphs/diffusion_2d.yaml), every sampler at several step counts, each
scored with the mixture protocol (2,500 samples; modes with a sample within 3 sigma, the share
of such high-quality samples, reverse KL of the mode histogram to uniform), the mode width over
the true sigma (mean over modes, and the worst) and the sliced Wasserstein distance to fresh
data in sigma units, averaged over seeds. The width column is the check on the high-quality
share: a sampler that shrinks every mode scores above the exact mixture's 98.9% there.

    python bench/samplers_2d.py                     # trains into runs/bench_diffusion_2d first
    python bench/samplers_2d.py RUN_DIR             # a run of graphs/diffusion_2d.yaml
    python bench/samplers_2d.py RUN_DIR --seeds 1 --out /tmp/table.md
    python bench/samplers_2d.py --smoke             # CI: 10 training steps, 2 and 4 sampling steps, a temp folder

Writes the Markdown table to bench/samplers_2d.md (or --out) and prints it.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import torch

from composer import api
from composer.api import open_run
from composer.data.mixtures import grid
from composer.run.evaluate import reference_table_of
from composer.run.generate import generate
from composer.metrics.mixture import PROTOCOL_SAMPLES, mixture
from composer.recipes.samplers import DEFAULT_SPACING

ROOT = Path(__file__).resolve().parents[1]
STEPS = {"euler_maruyama": (10, 20, 50, 100, 1000), "euler": (10, 20, 50, 100), "heun": (10, 20, 50, 100),
         "ddim": (10, 20, 50, 100), "dpmpp_2m": (10, 20, 50, 100)}
SPACING_STEPS = {"euler_maruyama": (20, 100, 1000), "euler": (10, 20, 50), "heun": (10, 20, 50),
                 "ddim": (10, 20, 50), "dpmpp_2m": (10, 20, 50)}
NFE = {"heun": lambda steps: 2 * steps}
FULL = {"steps": STEPS, "spacing_steps": SPACING_STEPS, "sde": 1000, "ode": (20, 100)}
"""The grid of cells: default spacings, every spacing, the SDE and ODE step counts of the summary."""
SMOKE = {"steps": {s: (2, 4) for s in STEPS}, "spacing_steps": {"heun": (2,)}, "sde": 4, "ode": (2, 4)}
SMOKE_TRAIN = ["train.steps=10", "train.batch=64", "train.log_every=5", "sample.steps=2"]


def trained_run(run_dir: str | None, threads: int, train=(), default: Path = ROOT / "runs" / "bench_diffusion_2d"):
    """The run to sample from: `run_dir`, or `default`, trained there first (with `train` overrides)."""
    if run_dir is None:
        run_dir = str(default)
        if not (Path(run_dir) / "weights.safetensors").exists():
            started = time.time()
            api.train(ROOT / "graphs" / "diffusion_2d.yaml", out=run_dir, overrides=[f"train.threads={threads}", *train],
                      quiet=bool(train))
            print(f"trained in {time.time() - started:.0f} s", flush=True)
    return open_run(run_dir, [f"train.threads={threads}"]), run_dir


def score(run, reference, sampler: str, steps: int, spacing: str, seeds: int) -> dict:
    """Mean metrics over `seeds` draws of PROTOCOL_SAMPLES samples, and the sampling time."""
    totals: dict[str, float] = {}
    started = time.time()
    for seed in range(seeds):
        x = generate(run, PROTOCOL_SAMPLES, sampler=sampler, steps=steps, spacing=spacing,
                     generator=torch.Generator().manual_seed(seed))
        for key, value in mixture(x, reference).items():
            totals[key] = totals.get(key, 0.0) + value / seeds
    return {**totals, "seconds": (time.time() - started) / seeds}


def row(sampler: str, steps: int, spacing: str, result: dict) -> str:
    nfe = NFE.get(sampler, lambda s: s)(steps)
    return (f"| {sampler} | {steps} | {spacing} | {nfe} | {result['modes']:.1f} | {result['hq_fraction']:.3f} "
            f"| {result['reverse_kl']:.4f} | {result['width_mean']:.3f} | {result['width_worst']:.3f} "
            f"| {result['sliced_wasserstein_sigma']:.2f} | {result['seconds']:.2f} |")


HEADER = ["| sampler | steps | spacing | NFE | modes (of 25) | hq_fraction | reverse_kl | width / σ "
          "| worst width / σ | sliced W₂ / σ | s / 2,500 |",
          "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|"]


def cells(grid: dict) -> list[tuple[str, int, str]]:
    """(sampler, steps, spacing) of both tables: default spacings, then every grid."""
    first = [(s, n, DEFAULT_SPACING[s]) for s, counts in grid["steps"].items() for n in counts]
    second = [(s, n, g) for s, counts in grid["spacing_steps"].items() for n in counts
              for g in ("uniform", "quadratic", "logsnr")]
    return first + second


def measure(run, seeds: int, grid: dict) -> dict:
    reference, results = reference_table_of(run), {}
    for cell in cells(grid):
        if cell not in results:
            results[cell] = score(run, reference, *cell, seeds)
            print(row(*cell, results[cell]), flush=True)
    return results


def tables(results: dict, grid: dict) -> list[str]:
    first = [row(s, n, DEFAULT_SPACING[s], results[s, n, DEFAULT_SPACING[s]])
             for s, counts in grid["steps"].items() for n in counts]
    second = [row(*cell, results[cell]) for cell in cells(grid)[len(first):]]
    return ["## Every sampler at its default spacing", "", *HEADER, *first, "",
            "## Time grids (uniform in t, in sqrt(t) = quadratic, in log-SNR)", "", *HEADER, *second]


def summary(results: dict, grid: dict) -> list[str]:
    """The issue's question: do the ODE samplers at 20 steps match Euler-Maruyama at 1,000?"""
    (low, high), sde_steps = grid["ode"], grid["sde"]
    sde = results["euler_maruyama", sde_steps, DEFAULT_SPACING["euler_maruyama"]]
    lines = ["## Summary", "",
             f"Euler-Maruyama, {sde_steps:,} steps: {sde['modes']:.1f} modes, hq {sde['hq_fraction']:.3f}, "
             f"reverse KL {sde['reverse_kl']:.4f}, width {sde['width_mean']:.3f} σ, sliced W₂ "
             f"{sde['sliced_wasserstein_sigma']:.2f} σ. ODE samplers at their default grid:", ""]
    for sampler in ("euler", "heun", "ddim", "dpmpp_2m"):
        few, many = (results[sampler, n, DEFAULT_SPACING[sampler]] for n in (low, high))
        gap = few["hq_fraction"] - sde["hq_fraction"]
        lines.append(f"- {sampler}: {low} steps {few['modes']:.1f} modes, hq {few['hq_fraction']:.3f} "
                     f"({gap:+.3f}), reverse KL {few['reverse_kl']:.4f}, width {few['width_mean']:.3f} σ, "
                     f"sliced W₂ {few['sliced_wasserstein_sigma']:.2f} σ; "
                     f"{high} steps hq {many['hq_fraction']:.3f}")
    return lines + ["", f"By {high} steps the ODE solvers have about converged: a gap left there belongs to the "
                        "probability-flow ODE, not to its discretisation (the SDE's noise corrects part of "
                        "the learned score's error; the ODE carries it to the end)."]


def header(run, run_dir: str, args) -> list[str]:
    evaluation = Path(run_dir) / "eval.json"
    trained = json.loads(evaluation.read_text()) if evaluation.exists() else {}
    exact = mixture(grid(n=PROTOCOL_SAMPLES, seed=1).x, reference_table_of(run))
    return [
        "# Samplers on the 25-mode grid (graphs/diffusion_2d.yaml)", "",
        f"Model: run `{Path(run_dir).name}`, step {run.step_count}, EMA weights, trained in "
        f"{trained.get('seconds', '?')} s. Each cell: mean over {args.seeds} seed(s) of "
        f"{PROTOCOL_SAMPLES:,} samples; "
        "hq = within 3 sigma of a mode (PacGAN protocol); NFE = network evaluations per sample; "
        f"times on {args.threads} thread(s), {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}.",
        f"Reference: {PROTOCOL_SAMPLES:,} exact samples of the mixture give {exact['modes']} modes, "
        f"hq {exact['hq_fraction']:.3f}, reverse KL {exact['reverse_kl']:.4f}, width {exact['width_mean']:.3f} σ "
        f"(worst {exact['width_worst']:.3f}), sliced W₂ {exact['sliced_wasserstein_sigma']:.2f} σ.",
    ]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("run_dir", nargs="?", help="a trained run of graphs/diffusion_2d.yaml")
    parser.add_argument("--seeds", type=int, default=3, help="sampling seeds averaged per cell")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", default=None, help="default: bench/samplers_2d.md (--smoke: a temporary folder)")
    parser.add_argument("--smoke", action="store_true", help="a 10-step run in a temporary folder, 2-4 steps (CI)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    if not args.smoke:
        return write(args, FULL, args.out or str(ROOT / "bench" / "samplers_2d.md"))
    args.seeds = 1
    with tempfile.TemporaryDirectory() as tmp:
        return write(args, SMOKE, args.out or str(Path(tmp) / "samplers_2d.md"), SMOKE_TRAIN, Path(tmp) / "run")


def write(args, grid: dict, out: str, train=(), default: Path = ROOT / "runs" / "bench_diffusion_2d") -> int:
    run, run_dir = trained_run(args.run_dir, args.threads, train, default)
    started = time.time()
    results = measure(run, args.seeds, grid)
    text = "\n".join([*header(run, run_dir, args), "", *summary(results, grid), "", *tables(results, grid), "",
                      f"Bench time {time.time() - started:.0f} s. "
                      f"Command: `python bench/samplers_2d.py {' '.join(sys.argv[1:])}`"])
    Path(out).write_text(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
