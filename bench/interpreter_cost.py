"""What the interpreter itself costs per phase, in microseconds.

Method (a differential profile): the compiled step and its hand-written twin do the same tensor
work (same ops on the same numbers: bench/overhead.py checks the parameters agree), so what the
compiled step spends beyond the hand-written one is the Runner's own Python: walking the plan,
the per-node dispatch, cut detaches, forward counting, term reduction and logging, freezing,
the finite-loss check, the LR schedulers. To see that difference above the noise of the network
work, both run at batch `BATCH` (the network work shrinks to little more than the dispatch of each
torch op, which both sides pay alike) for `rounds` interleaved blocks of `block` steps, timed in
this thread's CPU time (bench/timing.py); the cost per phase is the median over rounds of
(compiled - hand) per step divided by the phases run per step, with its min-max over rounds.
A negative figure means the difference is within the noise.
"""
from __future__ import annotations

import statistics

import torch

from timing import interleave
from workloads import batches

BATCH = 2
SEED = 7


def phases_per_step(runner) -> int:
    """Phase runs in one step (wgan_gp: D x5, G = 6)."""
    plan = runner.plan
    return sum(len(names) for names in plan.rounds(plan.active(runner.step_count)))


def phase_cost(workload, rounds: int, block: int, threads: int, warmup: int = 3, overrides=()) -> dict:
    """{"us": (median, min, max) microseconds per phase over rounds, "phases": per step,
    "compiled_us", "hand_us": median step CPU time at batch BATCH}."""
    runner = workload.runner(*overrides, f"train.batch={BATCH}", threads=threads)
    torch.set_num_threads(threads)
    loop = workload.hand(runner)
    if getattr(loop, "shared", False) and runner.plan.forward_calls()["D"] > 3:
        loop.shared = False   # the same work as the plan: R1 on its own pass of D (issue 26, item 1)
    phases = phases_per_step(runner)
    make_block = lambda: batches(workload, runner, block, seed=SEED + runner.step_count)  # noqa: E731
    times = interleave({"compiled": runner.step, "hand": loop.step}, make_block, rounds, warmup=warmup)
    per_round = [(c - h) * 1e6 / phases for c, h in zip(times["compiled"]["cpu"], times["hand"]["cpu"])]
    return {"name": workload.name, "phases": phases,
            "us": (statistics.median(per_round), min(per_round), max(per_round)),
            "compiled_us": statistics.median(times["compiled"]["cpu"]) * 1e6,
            "hand_us": statistics.median(times["hand"]["cpu"]) * 1e6}


def cost_table(rows) -> str:
    lines = [f"| graph (batch {BATCH}) | phases/step | compiled µs/step | hand µs/step | "
             "interpreter µs/phase (min-max) |", "|---|---|---|---|---|"]
    for row in rows:
        us, lo, hi = row["us"]
        lines.append(f"| {row['name']} | {row['phases']} | {row['compiled_us']:,.0f} | {row['hand_us']:,.0f} | "
                     f"**{us:.0f}** ({lo:.0f} to {hi:.0f}) |")
    return "\n".join(lines)
