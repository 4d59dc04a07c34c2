"""Fast modes (composer/fast.py) against the hand-written fp32 eager loop, side by side.

    python bench/fast_modes.py [--graphs dcgan diffusion] [--rounds 6] [--block 4] [--cold]
    python bench/fast_modes.py --graphs gan_ring diffusion_2d   # the 2-D MLP graphs
    python bench/fast_modes.py --smoke    # CI: dcgan at batch 8, three eager modes, seconds

Each mode is the same graph with `train.*` / optimizer overrides, stepping on the same batches
as the hand-written loop (bench/handwritten.py), interleaved in rounds after warm-up
(bench/timing.py). The compile time of a compiled mode is the wall time of its first 3 steps
minus 3 steady steps, reported apart; `--cold` points inductor at an empty cache first (else
a warm cache from an earlier run makes it seconds). `compile phase` is `train.compile: phase`
(each phase's forward and loss as one region, composer/run/phase_compile.py).
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

MODES = {   # label -> overrides; "{opt}" expands to every optimizer of the graph
    "eager fp32": [],
    "bf16 autocast": ["train.precision=bf16"],
    "channels-last": ["train.channels_last=true"],
    "foreach Adam": ["optimizers.{opt}.foreach=true"],
    "fused Adam": ["optimizers.{opt}.fused=true"],
    "compile": ["train.compile=true"],
    "compile phase": ["train.compile=phase"],
    "compile phase + fused": ["train.compile=phase", "optimizers.{opt}.fused=true"],
    "channels-last + fused": ["train.channels_last=true", "optimizers.{opt}.fused=true"],
    "channels-last + fused + compile": ["train.channels_last=true", "optimizers.{opt}.fused=true",
                                        "train.compile=true"],
}
SMOKE = {"graphs": ["dcgan"], "modes": ["eager fp32", "bf16 autocast", "fused Adam"], "rounds": 1, "block": 1,
         "overrides": ["train.batch=8"]}
"""--smoke: no compiled mode (a cold inductor compile alone takes ~20 s; tests/run/test_fast.py
compiles a tiny MLP)."""


def expand(overrides, optimizers) -> list[str]:
    return [o.format(opt=name) for o in overrides for name in (optimizers if "{opt}" in o else [None])]


def measure(workload, rounds: int, block: int, modes: dict, common=()) -> list[tuple]:
    import torch

    from timing import CLOCK, interleave, median, ratios
    from workloads import batches

    base = workload.runner(*common)
    optimizers = [o.name for o in base.spec.optimizers]
    hand = workload.hand(base)
    runners, first = {}, {}
    for label, overrides in modes.items():
        runner = workload.runner(*common, *expand(overrides, optimizers))
        torch.set_num_threads(1)
        start = time.perf_counter()
        for batch in batches(workload, base, 3, seed=0):
            runner.step(batch)
        first[label], runners[label] = time.perf_counter() - start, runner
    steppers = {"hand-written fp32": hand.step, **{label: r.step for label, r in runners.items()}}
    times = interleave(steppers, lambda: batches(workload, base, block, seed=1), rounds, warmup=1)
    cpu, wall = ratios(times, "hand-written fp32"), ratios(times, "hand-written fp32", "wall")
    rows = []
    for label in steppers:
        step = median(times[label][CLOCK])
        compile_s = first[label] - 3 * median(times[label]["wall"]) if "compile" in label else None
        rows.append((workload.name, label, step, cpu[label], wall[label], compile_s))
    return rows


def table(rows) -> str:
    from timing import CLOCK

    lines = [f"| graph | mode | s/step ({CLOCK}) | ratio to hand fp32, {CLOCK} time (min-max) | wall ratio (min-max) | "
             "compile s |", "|---|---|---|---|---|---|"]
    for graph, label, step, (r, lo, hi), (w, wlo, whi), compile_s in rows:
        compiled = f"{compile_s:.1f}" if compile_s is not None else ""
        lines.append(f"| {graph} | {label} | {step:.4f} | **{r:.2f}** ({lo:.2f}-{hi:.2f}) | "
                     f"{w:.2f} ({wlo:.2f}-{whi:.2f}) | "
                     f"{compiled} |")
    return "\n".join(lines)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--graphs", nargs="*", default=["dcgan", "diffusion"])
    parser.add_argument("--modes", nargs="*", default=list(MODES), choices=list(MODES))
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--block", type=int, default=4)
    parser.add_argument("--cold", action="store_true", help="compile with an empty inductor cache")
    parser.add_argument("--smoke", action="store_true", help="a few steps of one small graph (CI)")
    parser.add_argument("overrides", nargs="*", help="k=v overrides for every graph and mode")
    args = parser.parse_args(argv)
    if args.smoke:
        vars(args).update(SMOKE)
    if args.cold:   # read when inductor is first imported, i.e. at the first compile
        os.environ["TORCHINDUCTOR_CACHE_DIR"] = tempfile.mkdtemp(prefix="inductor-cold-")
    from workloads import WORKLOADS

    start = time.perf_counter()
    rows = [row for name in args.graphs
            for row in measure(WORKLOADS[name], args.rounds, args.block, {m: MODES[m] for m in args.modes},
                               args.overrides)]
    print(f"fast modes: seeds 0 (warm-up) and 1, {args.rounds} rounds x {args.block} steps, 1 thread, "
          f"inductor cache {'cold' if args.cold else 'as found'}, load average {os.getloadavg()[0]:.1f}, "
          f"{time.perf_counter() - start:.0f} s")
    print(table(rows))


if __name__ == "__main__":
    main()
