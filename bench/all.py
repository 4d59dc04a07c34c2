"""The whole performance bench in one go (4-5 minutes on the 2-core CPU machine with a warm
inductor cache, 222-264 s measured; cold, the first compiles add ~30 s for DCGAN and ~3 minutes
for the diffusion U-Net per layout):

    python bench/all.py

overhead.py (every recipe vs its hand-written loop, memory, data path, the interpreter's cost per
phase), fast_modes.py (modes vs the hand-written fp32 loop, DCGAN and diffusion), scaling.py
(batch, width, phases; 2 ranks), sampling.py (every sampler vs a plain loop and diffusers).
gpu.py (the reference-size graphs) is for a GPU machine: here only its --smoke runs.

    python bench/all.py --smoke

Every bench script's `--smoke` mode in turn, in this process: a few steps of one small graph
each, through the real code path (child processes, the compiled step beside the hand-written
loop, the printed table). memory.py and rank_steps.py run as the children of overhead.py and
scaling.py. tests/bench/test_bench_smoke.py runs this in CI, so a change that breaks a bench
script fails the suite.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import data_path  # noqa: E402
import fast_modes  # noqa: E402
import gpu  # noqa: E402
import mixture_npy  # noqa: E402
import overhead  # noqa: E402
import quality  # noqa: E402
import samplers_2d  # noqa: E402
import sampling  # noqa: E402
import scaling  # noqa: E402
import startup  # noqa: E402

FULL = (("overhead", overhead.main), ("fast modes", fast_modes.main), ("scaling", scaling.main),
        ("sampling", sampling.main))
SMOKE = (*FULL, ("data path", data_path.main), ("startup", startup.main), ("samplers 2d", samplers_2d.main),
         ("quality", quality.main), ("mixture npy", mixture_npy.main), ("gpu", gpu.main))
"""Section title (printed as `## TITLE`) -> the script's main; --smoke runs each with ["--smoke"]."""


def main(argv=None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    smoke = argv == ["--smoke"]
    if argv and not smoke:
        raise SystemExit("usage: python bench/all.py [--smoke]")
    start, times = time.perf_counter(), []
    for name, run in SMOKE if smoke else FULL:
        print(f"\n## {name}\n", flush=True)
        began = time.perf_counter()
        run(["--smoke"] if smoke else [])
        sys.stdout.flush()
        times.append(f"{name} {time.perf_counter() - began:.0f} s")
    print(f"\nwhole bench{' (smoke)' if smoke else ''}: {time.perf_counter() - start:.0f} s ({', '.join(times)})")


if __name__ == "__main__":
    main()
