"""The adversarial objective: "collection `fake` must look like collection `real` to `critic`".

It is not one loss but an update recipe. It expands into ordinary graph nodes and loss terms,
each tagged with who minimises it (Goodfellow et al. 2014; the course notes' practical form):

    real_logits = critic(real)        D_real: minimised by the critic
    fake_logits = critic(fake)        D_fake: minimised by the critic (the scheduler cuts `fake`)
                                      G:      minimised by whatever produced `fake`, critic frozen

The scheduler, not this file, decides where the detach goes and what is frozen.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from composer.nodes import Node

from .penalties import PENALTIES
from .pool import ImagePool


def _per_sample(x: torch.Tensor) -> torch.Tensor:
    return x.reshape(x.shape[0], -1).mean(1)


# loss name -> (critic loss on real logits, critic loss on fake logits, generator loss on fake logits)
LOSSES = {
    "non_saturating": (lambda r: F.softplus(-r), lambda f: F.softplus(f), lambda f: F.softplus(-f)),
    "minimax": (lambda r: F.softplus(-r), lambda f: F.softplus(f), lambda f: -F.softplus(f)),
    "lsgan": (lambda r: (r - 1) ** 2, lambda f: f ** 2, lambda f: (f - 1) ** 2),
    "hinge": (lambda r: F.relu(1 - r), lambda f: F.relu(1 + f), lambda f: -f),
    "wgan": (lambda r: -r, lambda f: f, lambda f: -f),
}


class LogitLoss:
    """A per-sample loss on critic logits (mean over any patch dimensions)."""

    def __init__(self, fn, label: str):
        self.fn, self.label = fn, label

    def __call__(self, logits: torch.Tensor) -> torch.Tensor:
        return _per_sample(self.fn(logits))

    def __repr__(self) -> str:
        return self.label


def adversarial(name, /, *, critic: str, real: str, fake: str, loss: str = "non_saturating",
                weight: float = 1.0, critic_weight: float = 1.0, penalty: str | None = None,
                penalty_weight: float = 10.0, pool: int = 0, pool_prob: float = 0.5) -> list[Node]:
    """Expand into critic calls and the terms D_real, D_fake (critic) and G (producer of `fake`).

    loss: non_saturating | minimax | lsgan | hinge | wgan. critic_weight scales the critic's two
    terms (0.5 gives CycleGAN's (real + fake) / 2). penalty: r1 (Mescheder et al. 2018) or
    wgan_gp (Gulrajani et al. 2017), weighted by penalty_weight. pool > 0 feeds the critic's fake
    term from an image history pool of that size (Shrivastava et al. 2017, as in CycleGAN).
    """
    if loss not in LOSSES:
        from composer.errors import did_you_mean

        raise ValueError(f"unknown adversarial loss '{loss}'{did_you_mean(loss, LOSSES)}")
    on_real, on_fake, on_gen = LOSSES[loss]
    fake_for_critic = fake
    nodes = [Node(f"{name}.real_logits", "call", critic, (real,))]
    if pool:
        fake_for_critic = f"{name}.pool"
        nodes.append(Node(fake_for_critic, "fn", "image_pool", (fake,), op=ImagePool(pool, pool_prob, fake_for_critic)))
    nodes.append(Node(f"{name}.fake_logits", "call", critic, (fake_for_critic,)))
    gen_logits = f"{name}.fake_logits"
    if pool:
        gen_logits = f"{name}.gen_logits"
        nodes.append(Node(gen_logits, "call", critic, (fake,)))
    nodes += [
        Node(f"{name}.D_real", "term", f"{loss}.D_real", (f"{name}.real_logits",),
             op=LogitLoss(on_real, f"{loss}.D_real"), trains=(critic,), weight=weight * critic_weight),
        Node(f"{name}.D_fake", "term", f"{loss}.D_fake", (f"{name}.fake_logits",),
             op=LogitLoss(on_fake, f"{loss}.D_fake"), trains=(critic,), weight=weight * critic_weight),
        Node(f"{name}.G", "term", f"{loss}.G", (gen_logits,), op=LogitLoss(on_gen, f"{loss}.G"),
             exclude=(critic,), weight=weight),
    ]
    if penalty is not None:
        nodes += _penalty_nodes(name, penalty, penalty_weight, critic, real, fake_for_critic)
    return nodes


def _penalty_nodes(name, penalty, penalty_weight, critic, real, fake) -> list[Node]:
    if penalty not in PENALTIES:
        from composer.errors import did_you_mean

        raise ValueError(f"unknown penalty '{penalty}'{did_you_mean(penalty, PENALTIES)}")
    op, needs_fake = PENALTIES[penalty]
    inputs = (real, fake) if needs_fake else (real,)
    return [
        Node(f"{name}.{penalty}", "fn", penalty, inputs, op=op(critic), modules=(critic,)),
        Node(f"{name}.D_{penalty}", "term", penalty, (f"{name}.{penalty}",), op=Identity(penalty),
             trains=(critic,), weight=penalty_weight),
    ]


class Identity:
    """A term whose per-sample values were computed by an fn node."""

    def __init__(self, label: str):
        self.label = label

    def __call__(self, values: torch.Tensor) -> torch.Tensor:
        return values

    def __repr__(self) -> str:
        return self.label
