"""The benchmarked graphs: how to build the compiled Runner, its hand-written twin (bench/
handwritten.py, same initial weights) and the batches both are fed.

Batches hold everything random that a step consumes (data drawn from the Runner's own streams,
latents, diffusion times and noise, dropped labels), drawn once beforehand from seeded
generators, so both loops do the same arithmetic on the same numbers. Shapes come from the
compiled graph (`runner.graph.shapes`) and the loops' optimizer settings, learning-rate schedules
and penalty weights from the spec, so a change to a graph file changes both sides alike.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch

from composer import api

import handwritten as hw
import handwritten_2d as hw2

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


def _adam(runner, name) -> dict:
    """Adam's keyword arguments of the graph's optimizer `name` (lr, and betas, eps,
    weight_decay where the graph sets them)."""
    opt = next(o for o in runner.spec.optimizers if o.name == name)
    if opt.type != "adam":
        raise ValueError(f"optimizers.{name}: the hand-written loops use Adam, the graph has '{opt.type}'")
    args = {k: tuple(v) if isinstance(v, list) else v for k, v in opt.args.items()
            if k in ("betas", "eps", "weight_decay")}
    return {"lr": opt.lr, **args}


def _schedule(runner, name) -> dict:
    """The graph's learning-rate schedule of optimizer `name` without its type, with `total`:
    the run's steps (cosine: warmup; linear_decay: start)."""
    opt = next(o for o in runner.spec.optimizers if o.name == name)
    return {"total": runner.spec.train.steps, **{k: v for k, v in opt.lr_schedule.items() if k != "type"}}


def _objective(runner, name) -> dict:
    return next(o for o in runner.spec.objectives if o.name == name).args


def _noise(runner, node, n, gen):
    """`n` draws of N(0, I) in the compiled graph's per-sample shape of `node`."""
    return torch.randn(n, *runner.graph.shapes[node], generator=gen)


def _draw(runner, name) -> dict:
    """One batch of a data input, its fields named as the graph feeds them (NAME, NAME.y)."""
    record = runner.streams[name].next()
    return {name if key == "x" else f"{name}.{key}": value for key, value in record.items()}


def _gan_feed(runner, gen, conditional=False):
    batch = _draw(runner, "real")
    n = batch["real"].shape[0]
    batch["z"] = _noise(runner, "z", n, gen)
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


def _diffusion_feed(runner, gen, data="x0", cond_drop=0.0):
    """A DSM batch; the noise has the shape of what is noised (the data, or the latent of
    graphs/latent_diffusion.yaml)."""
    batch = _dsm_feed(runner, gen, data, cond_drop)
    batch["dsm.eps"] = _noise(runner, "dsm.eps", batch[data].shape[0], gen)
    return batch


def _cyclegan_feed(runner, gen):
    return {**_draw(runner, "real_A"), **_draw(runner, "real_B")}


def _gan_hand(runner, **keys):
    gan = _objective(runner, "gan")
    loss = gan.get("loss", "non_saturating")
    if gan.get("penalty") != "r1" or loss not in ("non_saturating", "minimax"):
        raise ValueError("objectives.gan: the hand-written GANLoop is the non-saturating or minimax loss with R1")
    return hw.GANLoop(*_copies(runner, "G", "D"), adam_D=_adam(runner, "D"), adam_G=_adam(runner, "G"),
                      gamma=gan.get("penalty_weight", 10.0), minimax=loss == "minimax", **keys)   # 10: the default


def _cyclegan_hand(runner):
    pool_rng = torch.Generator()
    pool_rng.set_state(runner.generator.get_state())   # the Runner's pools draw from its generator
    decay = _schedule(runner, "G")
    return hw.CycleGANLoop(*_copies(runner, "G_AB", "G_BA", "D_A", "D_B"), pool_rng, adam_G=_adam(runner, "G"),
                           adam_D=_adam(runner, "D"), total=decay["total"], start=decay["start"])


def _diffusion_hand(runner, **keys):
    return hw.DiffusionLoop(*_copies(runner, "eps_net"), adam=_adam(runner, "eps_net"),
                            **_schedule(runner, "eps_net"), clip=runner.spec.train.grad_clip, **keys)


def _latent_hand(runner):
    return hw.LatentDiffusionLoop(*_copies(runner, "enc", "dec", "eps_net"), adam_ae=_adam(runner, "ae"),
                                  adam_eps=_adam(runner, "eps_net"), **_schedule(runner, "eps_net"),
                                  clip=runner.spec.train.grad_clip)


def _gan_2d_hand(runner, scale=None):
    """gan_ring, gan_grid: the careful loop (D(real) once for the loss and R1)."""
    gan = _objective(runner, "gan")
    if gan.get("penalty") != "r1":
        raise ValueError("objectives.gan: the hand-written SharedR1GANLoop is a GAN with R1")
    return hw2.SharedR1GANLoop(*_copies(runner, "G", "D"), adam_D=_adam(runner, "D"), adam_G=_adam(runner, "G"),
                               gamma=gan.get("penalty_weight", 10.0), total=_schedule(runner, "D")["total"],
                               loss=gan.get("loss", "non_saturating"), scale=scale)


def _wgan_gp_hand(runner):
    gan = _objective(runner, "gan")
    if gan.get("penalty") != "wgan_gp" or gan.get("loss") != "wgan":
        raise ValueError("objectives.gan: the hand-written WGANGPLoop is the wgan loss with wgan_gp")
    return hw2.WGANGPLoop(*_copies(runner, "G", "D"), runner.streams["real"], runner.generator,
                          adam_D=_adam(runner, "D"), adam_G=_adam(runner, "G"), lam=gan["penalty_weight"],
                          n_critic=runner.spec.schedule.repeat.get("D", 1))


def _nothing_fed(runner, gen):
    """Nothing fed: the Runner draws its data and noise, the loop the same from copies of its sources."""
    return {}


WORKLOADS = {
    "dcgan": Workload("dcgan", "dcgan.yaml", _gan_hand, _gan_feed, data=("real",)),
    "cyclegan": Workload("cyclegan", "cyclegan.yaml", _cyclegan_hand, _cyclegan_feed, data=("real_A", "real_B")),
    "diffusion": Workload("diffusion", "diffusion.yaml", _diffusion_hand, _diffusion_feed, data=("x0",)),
    "latent_diffusion": Workload("latent_diffusion", "latent_diffusion.yaml", _latent_hand,
                                 lambda r, g: _diffusion_feed(r, g, data="x"), data=("x",)),
    "cgan": Workload("cgan", "cgan.yaml", lambda r: _gan_hand(r, real_y="real.y", fake_y="y_fake"),
                     lambda r, g: _gan_feed(r, g, conditional=True), data=("real",)),
    "diffusion_cfg": Workload("diffusion_cfg", "diffusion_cfg.yaml", lambda r: _diffusion_hand(r, cond="dsm.cond"),
                              lambda r, g: _diffusion_feed(r, g, cond_drop=_objective(r, "dsm")["cond_drop"]),
                              data=("x0",)),
    "gan_ring": Workload("gan_ring", "gan_ring.yaml", _gan_2d_hand, _gan_feed, data=("real",)),
    "gan_grid": Workload("gan_grid", "gan_grid.yaml", lambda r: _gan_2d_hand(r, scale=0.125), _gan_feed,
                         data=("real",)),
    "diffusion_2d": Workload("diffusion_2d", "diffusion_2d.yaml", _diffusion_hand, _diffusion_feed, data=("x0",)),
    "wgan_gp": Workload("wgan_gp", "wgan_gp.yaml", _wgan_gp_hand, _nothing_fed, data=("real",)),
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
