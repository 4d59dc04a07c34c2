"""Interpreter overhead: compiled graphs/dcgan.yaml steps vs the hand-written loop, side by side.

    python bench/overhead.py [--steps 200] [--batch 64] [--threads 1]

Both run the same recipe (R1 included) on the same batches, interleaved in blocks so machine
load affects both alike; prints seconds per step and the ratio compiled / hand-written.
"""
from __future__ import annotations

import argparse
import copy
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "tests"), str(ROOT / "tests" / "composer")]

from test_parity_dcgan import hand_written_loop  # noqa: E402  (the parity test's reference loop)

from composer import api  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    runner = api.runner(ROOT / "graphs" / "dcgan.yaml", [f"train.batch={args.batch}", "train.ema={}"], cpu=True)
    G, D = copy.deepcopy(runner.raw["G"]), copy.deepcopy(runner.raw["D"])
    gen = torch.Generator().manual_seed(0)
    block = 20
    compiled = hand = 0.0
    for _ in range(args.steps // block):
        batches = [torch.rand(args.batch, 1, 16, 16, generator=gen) * 2 - 1 for _ in range(block)]
        latents = [torch.randn(args.batch, 32, generator=gen) for _ in range(block)]
        start = time.perf_counter()
        for real, z in zip(batches, latents):
            runner.step({"real": real, "z": z})
        compiled += time.perf_counter() - start
        start = time.perf_counter()
        hand_written_loop(G, D, batches, latents)
        hand += time.perf_counter() - start
    steps = block * (args.steps // block)
    print(f"| steps | compiled s/step | hand-written s/step | ratio |\n|---|---|---|---|\n"
          f"| {steps} | {compiled / steps:.4f} | {hand / steps:.4f} | {compiled / hand:.3f} |")


if __name__ == "__main__":
    main()
