"""The lazy image-folder data path beside the training step: is the step ever data-bound?

    python bench/data_path.py [--images 2000] [--batch 64] [--steps 4] [--threads 1]
    python bench/data_path.py --smoke     # CI: 32 images, batch 8, 1 round, 1 step

Writes `--images` random 64x64 RGB PNGs to a temporary folder, then measures samples/s of
- the data path alone: a `BatchStream` over the folder read lazily (`stream: true`) with 0 and 2
  DataLoader workers (decode, crop, resize, normalise, collate), and over the same folder held in
  memory (`stream: false`: a gather);
- the training step of `graphs/dcgan_64.yaml` (G 3.6 M, D 2.8 M parameters, 64x64x3) and of the
  digits DCGAN (`graphs/dcgan.yaml`, 16x16x1), each on in-memory batches;
- the `dcgan_64` step on the lazy folder with 2 workers (data + step), which equals the
  in-memory step rate when the step is not data-bound.
Wall-clock medians after a warm-up batch or step (worker start-up excluded), contenders in turn.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from composer import api  # noqa: E402
from composer.data.folders import image_folder  # noqa: E402
from composer.run.feeds import PREFETCH, BatchStream  # noqa: E402


def write_folder(folder: Path, n: int, side: int = 64) -> Path:
    """`n` PNGs of smooth random colour fields plus noise (compress like photos, not like noise)."""
    rng = np.random.default_rng(0)
    ramp = np.linspace(0, 1, side)[None, :, None]
    for i in range(n):
        base = rng.uniform(0, 255, (1, 1, 3)) * ramp + rng.normal(0, 20, (side, side, 3))
        Image.fromarray(base.clip(0, 255).astype(np.uint8)).save(folder / f"{i:05d}.png")
    return folder


def data_rates(folder: Path, batch: int, configs: dict, batches: int, rounds: int) -> dict:
    """Samples/s of a `BatchStream` over `folder` per config name -> (stream, workers): the median
    over `rounds` of `batches` whole batches, the configs in turn. Each round first takes the
    batches the workers decoded ahead while the other configs ran (untimed), so that the timed
    batches are decoded while they are waited for: the sustained rate, not the prefetch."""
    feeds = {}
    for name, (stream, workers) in configs.items():
        feeds[name] = BatchStream(image_folder(path=folder, size=64, channels=3, stream=stream, workers=workers),
                                  batch, seed=0)
        feeds[name].next()                   # warm-up: workers start
    rates = {name: [] for name in configs}
    for _ in range(rounds):
        for name, feed in feeds.items():
            for _ in range(feed.table.workers * PREFETCH if feed.lazy else 0):
                feed.next()
            start = time.perf_counter()
            for _ in range(batches):
                feed.next()
            rates[name].append(batches * batch / (time.perf_counter() - start))
    for feed in feeds.values():
        feed.close()
    return {name: statistics.median(r) for name, r in rates.items()}


def step_rates(graphs: dict, steps: int) -> dict:
    """Samples/s of the training step (D and G phases) per name -> (graph, overrides): the median
    step time after one warm-up step, the runners stepping in turn."""
    runners = {name: api.runner(api.load(ROOT / "graphs" / graph, overrides), cpu=True)
               for name, (graph, overrides) in graphs.items()}
    times = {name: [] for name in runners}
    for _ in range(steps + 1):
        for name, runner in runners.items():
            start = time.perf_counter()
            runner.step()
            times[name].append(time.perf_counter() - start)
    for runner in runners.values():
        for stream in runner.streams.values():
            stream.close()
    return {name: runners[name].spec.train.batch / statistics.median(t[1:]) for name, t in times.items()}


SMOKE = {"images": 32, "batch": 8, "steps": 1, "rounds": 1}
"""--smoke: every contender (lazy with 0 and 2 workers, in memory, the three steps) in seconds."""


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=2000)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--rounds", type=int, default=3, help="rounds of the data path alone")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--smoke", action="store_true", help="a few images and steps (CI)")
    args = parser.parse_args(argv)
    if args.smoke:
        vars(args).update(SMOKE)
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        folder = write_folder(Path(tmp), args.images)
        batches = args.images // args.batch
        rows = data_rates(folder, args.batch, {"lazy folder, 0 workers": (True, 0),
                                               "lazy folder, 2 workers": (True, 2),
                                               "in-memory folder (gather)": (False, 0)},
                          max(1, args.images // args.batch), rounds=args.rounds)
        common = [f"train.batch={args.batch}", f"train.threads={args.threads}", "train.sample_every=0"]
        real = f"inputs.real={{source: image_folder, path: '{folder}', size: 64, channels: 3"
        rows.update(step_rates({
            "dcgan_64 step, in-memory folder": ("dcgan_64.yaml", [*common, real + ", stream: false}"]),
            "dcgan_64 step, lazy folder, 2 workers": ("dcgan_64.yaml", [*common, real + ", stream: true, workers: 2}"]),
        }, args.steps))
        rows.update(step_rates({"digits DCGAN step (dcgan.yaml)": ("dcgan.yaml", common)}, 10 * args.steps))
    print(f"{args.images} PNGs 64x64x3, batch {args.batch}, {args.threads} step thread(s)\n")
    print("| path | samples/s |\n|---|---|")
    for name, rate in rows.items():
        print(f"| {name} | {rate:,.0f} |")


if __name__ == "__main__":
    main()
