"""The mixture metric (PacGAN protocol) of 2D samples saved as .npy, e.g. by `composer sample`.

    composer sample RUN -n 2500 -o s.npy sample.sampler=heun sample.steps=20
    python bench/mixture_npy.py s.npy                 # against the 25-mode grid (std 0.05)
    python bench/mixture_npy.py s.npy --source ring   # or the 8-mode ring (std 0.01)
    python bench/mixture_npy.py s.npy --run RUN       # against the run's own data input
"""
from __future__ import annotations

import argparse
import json

import numpy as np
import torch

from composer.data import SOURCES
from composer.metrics.mixture import mixture


def reference(source: str, run: str | None):
    if run is None:
        return SOURCES[source]()
    from composer.api import open_run
    from composer.run.evaluate import reference_table_of

    return reference_table_of(open_run(run))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("samples", help="an .npy file of samples [N, 2]")
    parser.add_argument("--source", default="grid", choices=("grid", "ring"))
    parser.add_argument("--run", default=None, help="score against this run's data input instead")
    args = parser.parse_args(argv)
    samples = torch.from_numpy(np.load(args.samples, allow_pickle=False)).double()
    print(json.dumps(mixture(samples, reference(args.source, args.run)), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
