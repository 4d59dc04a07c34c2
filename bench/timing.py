"""Side-by-side timing on a shared, noisy machine, and peak memory in a child process.

`interleave` runs every contender on the same block of batches, one block after another, in an
order that rotates each round, so that load from other processes hits all of them alike; each
round gives one ratio per contender to the reference, and the table reports the median ratio
with its min-max over rounds (medians of per-round ratios are robust to a round that a neighbour's
burst slowed).
"""
from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
CLOCK = "wall" if torch.cuda.is_available() else "cpu"   # a GPU's work is not this thread's CPU time


def interleave(steppers: dict, make_block, rounds: int, warmup: int = 0) -> dict:
    """{name: {"wall": [...], "cpu": [...]}}, seconds per step of each round; `steppers` name ->
    step(batch); `make_block()` -> a list of batches (every contender steps on the same ones).
    "cpu" is this thread's CPU time (time.thread_time): with one intra-op thread the whole step
    runs on it, so it counts the step's own work and not the time other processes held the core."""
    names = list(steppers)
    for batch in make_block()[:warmup]:
        for name in names:
            steppers[name](batch)
    times = {name: {"wall": [], "cpu": []} for name in names}
    for r in range(rounds):
        block = make_block()
        order = names[r % len(names):] + names[:r % len(names)]
        for name in order:
            step = steppers[name]
            wall, cpu = time.perf_counter(), time.thread_time()
            for batch in block:
                step(batch)
            if torch.cuda.is_available():
                torch.cuda.synchronize()
            times[name]["cpu"].append((time.thread_time() - cpu) / len(block))
            times[name]["wall"].append((time.perf_counter() - wall) / len(block))
    return times


def ratios(times: dict, reference: str, clock: str = CLOCK) -> dict:
    """name -> (median, min, max) over rounds of its per-round time / the reference's."""
    out = {}
    for name, values in times.items():
        per_round = [v / ref for v, ref in zip(values[clock], times[reference][clock])]
        out[name] = (statistics.median(per_round), min(per_round), max(per_round))
    return out


def median(values) -> float:
    return statistics.median(values)


def peak_memory(jobs: list[list[str]], parallel: int = 2) -> list[dict]:
    """Run `bench/memory.py ARGS` for each job (in `parallel` child processes at a time) and
    return their JSON results: memory is measured without timing, so two at once is harmless."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]),
           # glibc: every block >= 4 KiB its own mapping, returned on free, so the resident set
           # follows the live tensors (without, freed blocks stay resident and runs differ by MiBs)
           "MALLOC_MMAP_THRESHOLD_": "4096", "MALLOC_TRIM_THRESHOLD_": "0"}
    results, running = [None] * len(jobs), []
    for index, args in enumerate(jobs):
        running.append((index, subprocess.Popen([sys.executable, str(HERE / "memory.py"), *args],
                                                stdout=subprocess.PIPE, text=True, env=env)))
        while len(running) >= parallel or (index == len(jobs) - 1 and running):
            i, proc = running.pop(0)
            out, _ = proc.communicate()
            if proc.returncode:
                raise RuntimeError(f"bench/memory.py {' '.join(jobs[i])} failed ({proc.returncode})")
            results[i] = json.loads(out.strip().splitlines()[-1])
    return results
