"""Peak memory of one contender's training steps, alone in this process (bench/timing.py runs it).

    python bench/memory.py WORKLOAD compiled|hand [--steps 6] [--threads 1] [--smoke] [OVERRIDE ...]

Prints one JSON line: the resident set before the first step (the Runner, the hand-written copy
and the batches all built), the peak resident set (VmHWM) after the steps, and their
difference, the step's own peak (activations, gradients, optimizer moments). On a GPU it reports
torch.cuda.max_memory_allocated instead.
"""
from __future__ import annotations

import argparse
import json
import resource
import sys
from pathlib import Path

import psutil
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from workloads import WORKLOADS, batches  # noqa: E402


def peak_rss() -> int:
    """Bytes: VmHWM of this process's memory map. Not ru_maxrss, which Linux carries over execve
    from the forked parent (a big parent would set every child's peak)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def main(argv=None) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("workload", choices=sorted(WORKLOADS))
    parser.add_argument("who", choices=("compiled", "hand"))
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--smoke", action="store_true", help="2 steps (CI)")
    parser.add_argument("overrides", nargs="*")
    args = parser.parse_args(argv)
    if args.smoke:
        args.steps = 2
    workload = WORKLOADS[args.workload]
    runner = workload.runner(*args.overrides, threads=args.threads)
    torch.set_num_threads(args.threads)
    loop = workload.hand(runner)
    step = runner.step if args.who == "compiled" else loop.step
    batch_list = batches(workload, runner, args.steps, seed=1)
    cuda = runner.device.type == "cuda"
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    before = torch.cuda.memory_allocated() if cuda else psutil.Process().memory_info().rss
    for batch in batch_list:
        step(batch)
    peak = torch.cuda.max_memory_allocated() if cuda else peak_rss()
    print(json.dumps({"workload": args.workload, "who": args.who, "kind": "cuda_allocated" if cuda else "rss",
                      "before_mib": before / 2**20, "peak_mib": peak / 2**20, "step_mib": (peak - before) / 2**20}))


if __name__ == "__main__":
    main()
