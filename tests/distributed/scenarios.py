"""The graphs the 2-process tests train, shrunk to a few seconds, shared by the ranks (run under
torchrun by train_scenarios.py) and the one-process references (tests/distributed/test_distributed.py).

`spec(name, batch)` is the scenario at a per-process batch: the ranks use B, the reference 2B.
`feed(name, step, rank, world, batch)` gives explicit inputs where a scenario feeds them (rank r gets
rows [r*B:(r+1)*B] of the step's global batch); the other scenarios draw their own data and noise,
which the reference reproduces with virtual ranks (virtual_ranks.py).
"""
from __future__ import annotations

import torch

from composer import api
from conftest import GRAPHS
from specs import small_2d_gan

STEPS = 3
BATCH = {"r1_fed": 8, "plain": 8, "wgan_gp": 8, "cyclegan": 2, "diffusion": 4, "two_heads": 4, "vqvae": 4}   # per process
FED = {"r1_fed": ("real", "z")}


def spec(name: str, batch: int):
    """The scenario's Spec with `batch` samples per process."""
    steps, one = f"train.steps={STEPS}", "train.threads=1"
    if name == "plain":        # the non-saturating GAN of the first DDP test: no penalty
        return api.from_dict(small_2d_gan(), [steps, f"train.batch={batch}", one])
    if name == "r1_fed":       # R1: torch.autograd.grad through the DDP-wrapped critic
        return api.from_dict(small_2d_gan(penalty="r1", penalty_weight=1.0), [steps, f"train.batch={batch}", one])
    if name == "wgan_gp":      # n_critic 3, fresh z for G (redraw), penalty at random interpolates
        return api.load(GRAPHS / "wgan_gp.yaml", [
            steps, f"train.batch={batch}", "schedule.repeat.D=3", "modules.G.hidden=32",
            "modules.D.hidden=32", "modules.G.depth=2", "modules.D.depth=2", "optimizers.D.lr=1.0e-3",
            "optimizers.G.lr=1.0e-3"])
    if name == "cyclegan":     # pools of 3 images per rank: full after two steps, then coin flips
        small = [f"inputs.real_{d}.size=8" for d in "AB"]
        small += [f"modules.{g}.{k}" for g in ("G_AB", "G_BA") for k in ("width=4", "n_blocks=1")]
        small += [f"modules.{d}.{k}" for d in ("D_A", "D_B") for k in ("width=8", "n_layers=1")]
        return api.load(GRAPHS / "cyclegan.yaml", [
            steps, f"train.batch={batch}", one, "objectives.gan_A.pool=3", "objectives.gan_B.pool=3", *small])
    if name == "diffusion":    # log-SNR times, grad clipping, EMA
        return api.load(GRAPHS / "diffusion.yaml", [
            steps, f"train.batch={batch}", one, "modules.eps_net.width=8", "modules.eps_net.groups=4",
            "optimizers.eps_net.lr_schedule={type: constant}", "train.ema={eps_net: 0.5}"])
    if name == "two_heads":    # InfoGAN's Q on the critic's trunk: critic D[0], R1 on that output
        return api.from_dict(_two_heads(), [steps, f"train.batch={batch}", one])
    if name == "vqvae":        # EMA codebook and dead-code restarts: buffers moved by the global batch
        return api.load(GRAPHS / "vqvae.yaml", [   # no GroupNorm: a bias before it gets a ~0 gradient
            steps, f"train.batch={batch}", one, "modules.vq.codes=16",
            *[f"modules.{m}.{k}" for m in ("enc", "dec") for k in ("width=4", "norm=none")]])
    raise KeyError(name)


def _two_heads() -> dict:
    """A code-reading critic without BatchNorm (8x8: the DCGAN trunk is one conv) and an MLP G."""
    return {
        "name": "two_heads",
        "inputs": {"real": {"source": "digits", "size": 8}, "z": {"noise": "normal", "shape": [4]},
                   "c": {"noise": "categorical", "classes": 3}},
        "modules": {"G": {"block": "MLP", "in_features": 7, "hidden": 16, "depth": 2, "out_features": 64},
                    "D": {"block": "DCGANDiscriminator", "image_size": 8, "channels": 1, "width": 4,
                          "aux_classes": 3}},
        "flow": {"code": "one_hot(c, num_classes=3)", "zc": "cat(z, code)", "flat": "G(zc)",
                 "fake": 'rearrange(flat, pattern="b (c h w) -> b c h w", c=1, h=8, w=8)',
                 "judged": "D(fake)", "c_logits": "judged[1]"},
        "objectives": {"gan": {"recipe": "adversarial", "critic": "D[0]", "real": "real", "fake": "fake",
                               "penalty": "r1", "penalty_weight": 1.0},
                       "info": {"recipe": "cross_entropy", "logits": "c_logits", "labels": "c"}},
        "optimizers": {"D": {"params": ["D"], "lr": 1e-3}, "G": {"params": ["G"], "lr": 1e-3}},
        "train": {"steps": 3, "batch": 4},
    }


def feed(name: str, step: int, rank: int, world: int, batch: int) -> dict | None:
    """This process's rows of the step's global batch (2 processes x B rows, or 1 x 2B)."""
    if name not in FED:
        return None
    generator = torch.Generator().manual_seed(1000 + step)
    total = world * batch
    rows = slice(rank * batch, (rank + 1) * batch)
    values = {"real": torch.randn(total, 2, generator=generator),
              "z": torch.randn(total, 4, generator=generator)}
    return {k: values[k][rows] for k in FED[name]}


def train(runner, name: str, rank: int = 0, world: int = 1) -> None:
    batch = runner.spec.train.batch
    for step in range(STEPS):
        runner.step(feed(name, step, rank, world, batch))


def tensors(runner) -> dict[str, torch.Tensor]:
    """Every module's weights and buffers, and the EMA copies."""
    out = {f"{m}.{k}": v.detach().clone().contiguous()
           for m in runner.raw for k, v in runner.unwrapped(m, ema=False).state_dict().items()}
    out.update({f"ema.{m}.{k}": v.detach().clone().contiguous()
                for m, module in runner.ema.items() for k, v in module.state_dict().items()})
    return out
