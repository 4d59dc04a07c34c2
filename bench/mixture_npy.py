"""The mixture metric (PacGAN protocol) of 2D samples saved as .npy, e.g. by `composer sample`.

    composer sample RUN -n 2500 -o s.npy sample.sampler=heun sample.steps=20
    python bench/mixture_npy.py s.npy                 # against the 25-mode grid (std 0.05)
    python bench/mixture_npy.py s.npy --source ring   # or the 8-mode ring (std 0.01)
    python bench/mixture_npy.py s.npy --run RUN       # against the run's own data input
    python bench/mixture_npy.py --smoke               # CI: exact grid samples, saved and scored
"""
from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

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
    parser.add_argument("samples", nargs="?", help="an .npy file of samples [N, 2]")
    parser.add_argument("--source", default="grid", choices=("grid", "ring"))
    parser.add_argument("--run", default=None, help="score against this run's data input instead")
    parser.add_argument("--smoke", action="store_true", help="score 2,500 exact samples of --source saved as .npy (CI)")
    args = parser.parse_args(argv)
    if args.smoke:
        with tempfile.TemporaryDirectory() as tmp:
            args.samples = str(Path(tmp) / "exact.npy")
            np.save(args.samples, SOURCES[args.source](n=2500, seed=1).x.numpy())
            return score(args)
    if args.samples is None:
        parser.error("the samples file is required (or --smoke)")
    return score(args)


def score(args) -> int:
    samples = torch.from_numpy(np.load(args.samples, allow_pickle=False)).double()
    print(json.dumps(mixture(samples, reference(args.source, args.run)), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
