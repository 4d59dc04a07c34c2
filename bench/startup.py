"""Start-up cost of `composer validate` and `composer plan` against `python -c "import torch"`,
measured side by side: the commands run interleaved, round after round, in fresh processes, and
the table reports medians and the median of the per-round differences (a shared machine's load
shifts both sides of a round alike).

    python bench/startup.py [--rounds 7] [--graph graphs/dcgan.yaml]
    python bench/startup.py --smoke       # CI: one round

Target (issue 8): validate within 0.5 s of import torch.
"""
from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def timed(command: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(command, cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--graph", default="graphs/dcgan.yaml")
    parser.add_argument("--smoke", action="store_true", help="one round (CI)")
    args = parser.parse_args(argv)
    if args.smoke:
        args.rounds = 1
    commands = {
        "import torch": [sys.executable, "-c", "import torch"],
        "composer validate": [sys.executable, "-m", "composer", "validate", args.graph],
        "composer plan": [sys.executable, "-m", "composer", "plan", args.graph],
    }
    times = {name: [] for name in commands}
    for _ in range(args.rounds):
        for name, command in commands.items():
            times[name].append(timed(command))
    base = times["import torch"]
    print(f"{args.rounds} interleaved rounds, {args.graph}\n")
    print("| command | median s | median (command - import torch) s | ratio |")
    print("|---|---|---|---|")
    for name, values in times.items():
        gap = statistics.median(v - b for v, b in zip(values, base))
        ratio = statistics.median(values) / statistics.median(base)
        print(f"| `{name}` | {statistics.median(values):.2f} | {gap:+.2f} | {ratio:.2f} |")


if __name__ == "__main__":
    main()
