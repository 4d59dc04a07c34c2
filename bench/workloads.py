"""The benchmarked graphs: how to build the compiled Runner, its hand-written twin (bench/
handwritten.py, same initial weights) and the batches both are fed.

Batches hold everything random that a step consumes (data drawn from the Runner's own streams,
latents, diffusion times and noise, dropped labels), drawn once beforehand from seeded
generators, so both loops do the same arithmetic on the same numbers.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch

from composer import api

import handwritten as hw

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Workload:
    name: str
    graph: str
    hand: Callable          # runner -> hand-written loop on copies of its initial weights
    feed: Callable          # (runner, generator) -> one batch dict
    overrides: tuple = ()
    data: tuple = field(default=())   # data inputs, for the data path's samples/s

    def runner(self, *extra, threads: int = 1):
        overrides = ["train.ema={}", f"train.threads={threads}", *self.overrides, *extra]
        return api.runner(ROOT / "graphs" / self.graph, overrides)   # a GPU when there is one


def _copies(runner, *names):
    return [copy.deepcopy(runner.raw[n]) for n in names]


def _draw(runner, name) -> dict:
    """One batch of a data input, its fields named as the graph feeds them (NAME, NAME.y)."""
    record = runner.streams[name].next()
    return {name if key == "x" else f"{name}.{key}": value for key, value in record.items()}


def _gan_feed(runner, gen, conditional=False):
    batch = _draw(runner, "real")
    n = batch["real"].shape[0]
    batch["z"] = torch.randn(n, 32, generator=gen)
    if conditional:
        batch["y_fake"] = torch.randint(10, (n,), generator=gen)
    return batch


def _dsm_feed(runner, gen, data="x0", cond_drop=0.0):
    record = _draw(runner, data)
    x0 = record[data]
    batch = {data: x0, "dsm.u": torch.rand(x0.shape[0], generator=gen)}
    if cond_drop:
        y = record[f"{data}.y"]
        batch[f"{data}.y"] = y
        batch["dsm.cond"] = torch.where(torch.rand(y.shape, generator=gen) < cond_drop, torch.full_like(y, -1), y)
    return batch


def _dsm_eps(shape, gen):
    return torch.randn(shape, generator=gen)


def _diffusion_feed(runner, gen, cond_drop=0.0):
    batch = _dsm_feed(runner, gen, "x0", cond_drop)
    batch["dsm.eps"] = _dsm_eps(batch["x0"].shape, gen)
    return batch


def _latent_feed(runner, gen):
    batch = _dsm_feed(runner, gen, "x")
    batch["dsm.eps"] = _dsm_eps((batch["x"].shape[0], 4, 4, 4), gen)   # like z: [4, 4, 4] latents
    return batch


def _cyclegan_feed(runner, gen):
    return {**_draw(runner, "real_A"), **_draw(runner, "real_B")}


def _cyclegan_hand(runner):
    pool_rng = torch.Generator()
    pool_rng.set_state(runner.generator.get_state())   # the Runner's pools draw from its generator
    return hw.CycleGANLoop(*_copies(runner, "G_AB", "G_BA", "D_A", "D_B"), pool_rng)


WORKLOADS = {
    "dcgan": Workload("dcgan", "dcgan.yaml", lambda r: hw.GANLoop(*_copies(r, "G", "D")), _gan_feed,
                      data=("real",)),
    "cyclegan": Workload("cyclegan", "cyclegan.yaml", _cyclegan_hand, _cyclegan_feed, data=("real_A", "real_B")),
    "diffusion": Workload("diffusion", "diffusion.yaml", lambda r: hw.DiffusionLoop(*_copies(r, "eps_net")),
                          _diffusion_feed, data=("x0",)),
    "latent_diffusion": Workload("latent_diffusion", "latent_diffusion.yaml",
                                 lambda r: hw.LatentDiffusionLoop(*_copies(r, "enc", "dec", "eps_net")),
                                 _latent_feed, data=("x",)),
    "cgan": Workload("cgan", "cgan.yaml",
                     lambda r: hw.GANLoop(*_copies(r, "G", "D"), real_y="real.y", fake_y="y_fake"),
                     lambda r, g: _gan_feed(r, g, conditional=True), data=("real",)),
    "diffusion_cfg": Workload("diffusion_cfg", "diffusion_cfg.yaml",
                              lambda r: hw.DiffusionLoop(*_copies(r, "eps_net"), cond="dsm.cond"),
                              lambda r, g: _diffusion_feed(r, g, cond_drop=0.1), data=("x0",)),
}


def batches(workload, runner, count: int, seed: int) -> list[dict]:
    """`count` batches on the Runner's device (noise drawn on the CPU, seeded, then moved)."""
    gen = torch.Generator().manual_seed(seed)
    return [{k: v.to(runner.device) for k, v in workload.feed(runner, gen).items()} for _ in range(count)]


def count_forwards(loop, modules: dict, batch_list) -> dict:
    """Forward calls per module per step of a hand-written loop (hooks, on a throwaway run)."""
    calls = {name: 0 for name in modules}
    handles = [m.register_forward_hook(lambda *_, n=name: calls.__setitem__(n, calls[n] + 1))
               for name, m in modules.items()]
    for batch in batch_list:
        loop.step(batch)
    for handle in handles:
        handle.remove()
    return {name: c / len(batch_list) for name, c in calls.items()}


def hand_modules(loop) -> dict:
    """name -> module of a hand-written loop, by the attribute names the loops use."""
    found = {}
    for owner in (loop, getattr(loop, "dsm", None)):
        for name, value in vars(owner).items() if owner is not None else ():
            if isinstance(value, torch.nn.Module):
                found[name] = value
    return found
