"""What a step costs as the graph grows: graphs/diffusion.yaml against batch size, U-Net width and
phases per step, and per-rank throughput with 2 CPU processes (gloo) against 1.

    python bench/scaling.py [--rounds 5] [--block 3] [--no-ranks]
    python bench/scaling.py --smoke       # CI: base and 2 phases, 1 round x 1 step, 2 ranks x 2 steps

The configurations step side by side (bench/timing.py: interleaved rounds after warm-up, each
drawing its own data); memory is each configuration's peak step memory in its own child
process (bench/memory.py). Phases per step are the one phase repeated (`schedule.repeat`), each
repetition a full forward, backward and Adam step on a fresh batch. The 2-process run is
`torchrun --nproc_per_node 2` with one thread per rank (tests/distributed/test_distributed.py
launches the same way), against the same script in one process.
"""
from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from timing import CLOCK, interleave, median, peak_memory  # noqa: E402
from workloads import WORKLOADS  # noqa: E402

WORKLOAD = WORKLOADS["diffusion"]
WORKLOAD_GRAPH = HERE.parent / "graphs" / WORKLOAD.graph
CONFIGS = {   # label -> overrides of graphs/diffusion.yaml (batch 64, width 32, 1 phase)
    "batch 16": ["train.batch=16"],
    "batch 64 (base)": [],
    "batch 256": ["train.batch=256"],
    "width 16": ["modules.eps_net.width=16"],
    "width 64": ["modules.eps_net.width=64"],
    "2 phases": ["schedule={repeat: {eps_net: 2}}"],
    "4 phases": ["schedule={repeat: {eps_net: 4}}"],
}
SMOKE = {"configs": ["batch 64 (base)"], "rounds": 1, "block": 1, "warmup": 1, "rank_steps": 2}
"""--smoke: every part (stepping, a memory child, torchrun ranks) in seconds; the one-process
row of the ranks table runs bench/rank_steps.py in this process (a process start saved)."""


def steps_table(rounds: int, block: int, labels=tuple(CONFIGS), warmup: int = 2, smoke: bool = False) -> list[str]:
    configs = {label: CONFIGS[label] for label in labels}
    runners = {label: WORKLOAD.runner(*overrides) for label, overrides in configs.items()}
    torch.set_num_threads(1)
    steppers = {label: (lambda _batch, r=r: r.step()) for label, r in runners.items()}
    times = interleave(steppers, lambda: [None] * block, rounds, warmup=warmup)
    jobs = [["diffusion", "compiled", *overrides, *(["--smoke"] if smoke else [])] for overrides in configs.values()]
    memory = peak_memory(jobs)
    base = median(times["batch 64 (base)"][CLOCK])
    lines = [f"| diffusion.yaml | params | s/step ({CLOCK}) | vs base | samples/s | peak step MiB |",
             "|---|---|---|---|---|---|"]
    for (label, runner), mem in zip(runners.items(), memory):
        step = median(times[label][CLOCK])
        params = sum(p.numel() for p in runner.raw["eps_net"].parameters())
        rate = runner.spec.train.batch * runner.spec.schedule.repeat.get("eps_net", 1) / step
        lines.append(f"| {label} | {params:,} | {step:.4f} | {step / base:.2f} | {rate:,.0f} | {mem['step_mib']:.0f} |")
    return lines


def _port() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return str(s.getsockname()[1])


def rank_rates(processes: int, steps: int, smoke: bool = False) -> list[dict]:
    with tempfile.TemporaryDirectory() as out:
        script = [str(HERE / "rank_steps.py"), str(WORKLOAD_GRAPH), "--steps", str(steps), "--out", out,
                  *(["--smoke"] if smoke else [])]
        launch = ([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(processes),
                   "--master_port", _port(), *script] if processes > 1 else [sys.executable, *script])
        if smoke and processes == 1:
            import rank_steps

            rank_steps.main(script[1:])
        else:
            env = {**os.environ, "OMP_NUM_THREADS": "1"}
            proc = subprocess.run(launch, env=env, capture_output=True, text=True, timeout=600)
            if proc.returncode:
                raise RuntimeError(f"{' '.join(launch)} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
        return [json.loads(path.read_text()) for path in sorted(Path(out).glob("rank_*.json"))]


def ranks_table(steps: int, smoke: bool = False) -> list[str]:
    one, two = rank_rates(1, steps, smoke), rank_rates(2, steps, smoke)
    lines = ["| processes (gloo, 1 thread each) | s/step per rank (wall) | samples/s per rank | samples/s in all |",
             "|---|---|---|---|"]
    for runs in (one, two):
        per_rank = median([r["samples_per_s"] for r in runs])
        lines.append(f"| {len(runs)} | {median([r['step_s'] for r in runs]):.4f} | {per_rank:,.0f} | "
                     f"{sum(r['samples_per_s'] for r in runs):,.0f} |")
    return lines


def main(argv=None) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--block", type=int, default=3)
    parser.add_argument("--rank-steps", type=int, default=20)
    parser.add_argument("--no-ranks", action="store_true")
    parser.add_argument("--configs", nargs="*", default=list(CONFIGS), choices=list(CONFIGS))
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--smoke", action="store_true", help="every part, a few steps each (CI)")
    args = parser.parse_args(argv)
    if args.smoke:
        vars(args).update(SMOKE)
    start = time.perf_counter()
    lines = steps_table(args.rounds, args.block, args.configs, args.warmup, args.smoke)
    if not args.no_ranks:
        lines += [""] + ranks_table(args.rank_steps, args.smoke)
    print(f"scaling: graphs/diffusion.yaml, {args.rounds} rounds x {args.block} steps after {args.warmup} warm-up steps, "
          f"1 thread, load average {os.getloadavg()[0]:.1f}, {time.perf_counter() - start:.0f} s")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
