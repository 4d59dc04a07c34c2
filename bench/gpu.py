"""The reference-size graphs on a GPU: fast modes against the hand-written fp32 loop.

    python bench/gpu.py [--graphs dcgan_64 cyclegan_256 diffusion_32] [--rounds 5] [--block 10]
    python bench/gpu.py --smoke     # CI, on the CPU: tiny sizes and batches, 1 round of 1 step, seconds

graphs/dcgan_64.yaml, cyclegan_256.yaml and diffusion_32.yaml read image folders that are not in
the repository: the script writes synthetic ones (smooth random colour fields, bench/data_path.py)
in a temporary directory and points the graphs at them. For each graph, the modes eager fp32,
bf16 autocast, torch.compile and channels-last step on the same batches as the hand-written fp32
loop (bench/handwritten.py, handwritten_2d.py; same initial weights), interleaved in rounds after
warm-up (bench/timing.py; wall time with a device synchronisation on a GPU). Prints per graph and
mode: images/s, the ratio of its step time to the hand-written loop's (median, min-max over
rounds), the step's own peak of torch.cuda.max_memory_allocated (above what was allocated before
it; "not measured" on the CPU) and, for compile, the first steps' compile time.

Budget: under 8 minutes on one GPU with the defaults (the compiles dominate: about a minute each
for the ResNet generators and the 35M-parameter U-Net).
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

import handwritten as hw  # noqa: E402
import handwritten_2d as hw2  # noqa: E402
from data_path import write_folder  # noqa: E402
from timing import CLOCK, interleave, median, ratios  # noqa: E402
from workloads import (Workload, _adam, _copies, _cyclegan_hand, _cyclegan_feed, _draw, _gan_feed,  # noqa: E402
                       _noise, _schedule, batches)

MODES = {"eager fp32": [], "bf16 autocast": ["train.precision=bf16"], "compile": ["train.compile=true"],
         "channels-last": ["train.channels_last=true"]}
SMOKE = {"rounds": 1, "block": 1, "warmup": 1, "images": 4, "modes": ["eager fp32", "bf16 autocast", "channels-last"]}
"""--smoke: no compile (tests/run/test_fast.py compiles), and the sizes of SMALL."""
SMALL = {   # --smoke: the same graphs at CPU-test sizes
    "dcgan_64": ["train.batch=2", "modules.G.width=8", "modules.D.width=8"],
    "cyclegan_256": ["modules.G_AB.width=4", "modules.G_BA.width=4", "modules.G_AB.n_blocks=1",
                     "modules.G_BA.n_blocks=1", "modules.D_A.width=4", "modules.D_B.width=4"],
    "diffusion_32": ["train.batch=2", "modules.eps_net.width=8", "modules.eps_net.groups=4",
                     "modules.eps_net.channel_mults=[1,2]", "modules.eps_net.num_res_blocks=1"],
}


class UniformTimeDiffusionLoop(hw.DiffusionLoop):
    """DiffusionLoop with t fed as drawn, uniform in [t_eps, 1] (diffusion_32.yaml has no `time: logsnr`)."""

    def step(self, batch):
        self.vp.t_of_u = lambda t: t        # the fed `dsm.u` is already the time
        super().step({**batch, "dsm.u": batch["dsm.t"]})


def _dcgan_64_hand(runner):
    return hw2.SharedR1GANLoop(*_copies(runner, "G", "D"), adam_D=_adam(runner, "D"), adam_G=_adam(runner, "G"),
                               gamma=0.0, total=None)


def _diffusion_32_hand(runner):
    schedule = _schedule(runner, "eps_net")
    return UniformTimeDiffusionLoop(*_copies(runner, "eps_net"), adam=_adam(runner, "eps_net"), total=schedule["total"],
                                    warmup=schedule["warmup"], clip=runner.spec.train.grad_clip)


def _diffusion_32_feed(runner, gen):
    batch = _draw(runner, "x0")
    n = batch["x0"].shape[0]
    batch["dsm.t"] = 1e-3 + (1 - 1e-3) * torch.rand(n, generator=gen)
    batch["dsm.eps"] = _noise(runner, "dsm.eps", n, gen)
    return batch


def workloads(folder: Path, images: int) -> dict:
    """The three graphs on synthetic folders of `images` images each, written under `folder`."""
    for sub, side in (("faces", 64), ("cifar", 32), ("h2z/trainA", 256), ("h2z/trainB", 256)):
        (folder / sub).mkdir(parents=True, exist_ok=True)
        write_folder(folder / sub, images, side)
    h2z = [f"inputs.real_{d}.root={folder / 'h2z'}" for d in "AB"]
    return {
        "dcgan_64": Workload("dcgan_64", "dcgan_64.yaml", _dcgan_64_hand, _gan_feed,
                             (f"inputs.real.path={folder / 'faces'}",)),
        "cyclegan_256": Workload("cyclegan_256", "cyclegan_256.yaml", _cyclegan_hand, _cyclegan_feed, tuple(h2z)),
        "diffusion_32": Workload("diffusion_32", "diffusion_32.yaml", _diffusion_32_hand, _diffusion_32_feed,
                                 (f"inputs.x0.path={folder / 'cifar'}",)),
    }


def measure(workload, modes: list[str], rounds: int, block: int, warmup: int, common=()) -> list[dict]:
    cuda = torch.cuda.is_available()
    base = workload.runner(*common)
    steppers, first, memory = {"hand-written fp32": workload.hand(base).step}, {}, {}
    for mode in modes:
        runner = workload.runner(*common, *MODES[mode])
        start = time.perf_counter()
        for batch in batches(workload, base, warmup, seed=0):
            runner.step(batch)
        first[mode], steppers[mode] = time.perf_counter() - start, runner.step
    torch.set_num_threads(1 if not cuda else torch.get_num_threads())
    for name, step in steppers.items():   # each alone: the step's own peak above what is held
        if cuda:
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            before = torch.cuda.memory_allocated()
        for batch in batches(workload, base, 2, seed=1):
            step(batch)
        memory[name] = (torch.cuda.max_memory_allocated() - before) / 2**20 if cuda else None
    times = interleave(steppers, lambda: batches(workload, base, block, seed=2), rounds, warmup=0)
    ratio, n = ratios(times, "hand-written fp32"), base.spec.train.batch
    return [{"graph": workload.name, "mode": name, "rate": n / median(times[name][CLOCK]), "ratio": ratio[name],
             "mib": memory[name], "compile_s": first[name] - warmup * median(times[name]["wall"])
             if name == "compile" else None} for name in steppers]


def table(rows) -> str:
    lines = [f"| graph | mode | images/s ({CLOCK}) | step time / hand-written fp32 (min-max) | "
             "step peak MiB (max_memory_allocated) | compile s |", "|---|---|---|---|---|---|"]
    for row in rows:
        r, lo, hi = row["ratio"]
        mib = f"{row['mib']:,.0f}" if row["mib"] is not None else "not measured (no GPU)"
        compiled = f"{row['compile_s']:.0f}" if row["compile_s"] is not None else ""
        lines.append(f"| {row['graph']} | {row['mode']} | {row['rate']:,.1f} | **{r:.2f}** ({lo:.2f}-{hi:.2f}) | "
                     f"{mib} | {compiled} |")
    return "\n".join(lines)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--graphs", nargs="*", default=list(SMALL), choices=list(SMALL))
    parser.add_argument("--modes", nargs="*", default=list(MODES), choices=list(MODES))
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--block", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=3, help="steps before timing (the compile happens here)")
    parser.add_argument("--images", type=int, default=256, help="images per synthetic folder")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes on the CPU (CI)")
    parser.add_argument("overrides", nargs="*", help="k=v overrides for every graph and mode")
    args = parser.parse_args(argv)
    if args.smoke:
        vars(args).update(SMOKE)
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="composer-gpu-bench-") as tmp:
        graphs = workloads(Path(tmp), args.images)
        rows = [row for name in args.graphs
                for row in measure(graphs[name], args.modes, args.rounds, args.block, args.warmup,
                                   [*(SMALL[name] if args.smoke else []), "train.log_every=0", *args.overrides])]
    device = torch.cuda.get_device_name() if torch.cuda.is_available() else "CPU (no GPU: not a GPU measurement)"
    print(f"gpu: {device}, {args.rounds} rounds x {args.block} steps after {args.warmup} warm-up steps, torch "
          f"{torch.__version__}, load average {os.getloadavg()[0]:.1f}, {time.perf_counter() - start:.0f} s")
    print(table(rows))


if __name__ == "__main__":
    main()
