"""The whole performance bench in one go (4-5 minutes on the 2-core CPU machine with a warm
inductor cache, 222-264 s measured; cold, the first compiles add ~30 s for DCGAN and ~3 minutes
for the diffusion U-Net per layout):

    python bench/all.py

overhead.py (every recipe vs its hand-written loop, memory, data path), fast_modes.py (modes vs
the hand-written fp32 loop, DCGAN and diffusion), scaling.py (batch, width, phases; 2 ranks).
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import fast_modes  # noqa: E402
import overhead  # noqa: E402
import scaling  # noqa: E402


def main() -> None:
    start = time.perf_counter()
    for name, run in (("overhead", overhead.main), ("fast modes", fast_modes.main), ("scaling", scaling.main)):
        print(f"\n## {name}\n", flush=True)
        run([])
        sys.stdout.flush()
    print(f"\nwhole bench: {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
