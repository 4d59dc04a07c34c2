"""Seconds per step of one graph on this process, alone or as one rank of several (bench/scaling.py).

    python bench/rank_steps.py GRAPH.yaml --steps 20 [OVERRIDE ...]              # one process
    torchrun --nproc_per_node 2 bench/rank_steps.py GRAPH.yaml --steps 20 ...    # gloo, 2 ranks

Every rank writes OUT/rank_R.json (default: prints it): its rank, the world size, the median
seconds per step (blocks of 5 after 3 warm-up steps; with --smoke, of 1 after 1) and its samples/s
(its own batch / step time).
"""
from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch

from composer import api


def main(argv=None) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("graph")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--smoke", action="store_true", help="1 warm-up step, blocks of 1 (CI)")
    parser.add_argument("overrides", nargs="*")
    args = parser.parse_args(argv)
    warmup, size = (1, 1) if args.smoke else (3, 5)
    runner = api.runner(args.graph, ["train.ema={}", "train.threads=1", *args.overrides], cpu=True)
    for _ in range(warmup):
        runner.step()
    blocks = []
    for _ in range(max(1, args.steps // size)):
        start = time.perf_counter()
        for _ in range(size):
            runner.step()
        blocks.append((time.perf_counter() - start) / size)
    step_s = statistics.median(blocks)
    batch = runner.spec.train.batch
    rank = runner.accelerator.process_index
    line = json.dumps({"rank": rank, "world": runner.accelerator.num_processes, "step_s": step_s,
                       "samples_per_s": batch / step_s, "threads": torch.get_num_threads()})
    if args.out:
        (args.out / f"rank_{rank}.json").write_text(line)
    else:
        print(line)


if __name__ == "__main__":
    main()
