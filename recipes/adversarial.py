"""The adversarial objective: "collection `fake` must look like collection `real` to `critic`".

It is not one loss but an update recipe. It expands into ordinary graph nodes and loss terms,
each tagged with who minimises it (Goodfellow et al. 2014; the course notes' practical form):

    real_logits = critic(*real)       D_real: minimised by the critic
    fake_logits = critic(*fake)       D_fake: minimised by the critic (the scheduler cuts `fake`)
                                      G:      minimised by whatever produced `fake`, critic frozen
                                      E:      (train_real) minimised by whatever produced `real`

`real` and `fake` may each be a list of tensors, passed to the critic together: a conditional
critic `D(x, y)` (real: [x, y], fake: [fake, y_fake]) or a critic on pairs `D(x, z)` (BiGAN/ALI).
A critic with several outputs (a trunk shared with an auxiliary head: AC-GAN's classifier,
InfoGAN's Q) is named with the output that holds the logits, `critic: D[0]`; the flow reads the
other head from its own call, `D(fake)` then `[1]`, and that term trains D and whatever made `fake`.
The scheduler, not this file, decides where the detach goes and what is frozen.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F

from composer.errors import did_you_mean
from composer.graph.nodes import Loss, Node, Tensors
from composer.ops.flow import call_output, module_output
from composer.registry import Registry

from composer.recipes.penalties import PENALTIES
from composer.recipes.pool import ImagePool
from composer.ranges import Count, Fraction


@dataclass(frozen=True)
class GANLoss:
    """The per-logit losses of one game: the critic's on real and on fake logits, the generator's
    on fake logits, and the encoder's on real logits (the side that produced `real` wants it
    judged fake: BiGAN/ALI, Donahue et al. 2017, Dumoulin et al. 2017)."""

    D_real: Callable
    D_fake: Callable
    G: Callable
    E: Callable


LOSSES = Registry("adversarial loss", {
    "non_saturating": GANLoss(lambda r: F.softplus(-r), lambda f: F.softplus(f),
                              lambda f: F.softplus(-f), lambda r: F.softplus(r)),
    "minimax": GANLoss(lambda r: F.softplus(-r), lambda f: F.softplus(f),
                       lambda f: -F.softplus(f), lambda r: -F.softplus(-r)),
    "lsgan": GANLoss(lambda r: (r - 1) ** 2, lambda f: f ** 2, lambda f: (f - 1) ** 2, lambda r: r ** 2),
    "hinge": GANLoss(lambda r: F.relu(1 - r), lambda f: F.relu(1 + f), lambda f: -f, lambda r: r),
    "wgan": GANLoss(lambda r: -r, lambda f: f, lambda f: -f, lambda r: r),
}, docs={
    "non_saturating": "-log D(x) - log(1 - D(G(z))) for D; -log D(G(z)) for G (Goodfellow et al. 2014)",
    "minimax": "the original game: G minimises log(1 - D(G(z))) (Goodfellow et al. 2014)",
    "lsgan": "least squares, labels 1/0 (Mao et al. 2017)",
    "hinge": "hinge loss for D, -D(G(z)) for G (Lim & Ye 2017; Miyato et al. 2018)",
    "wgan": "the Wasserstein critic D(G(z)) - D(x) (Arjovsky et al. 2017); pair with a penalty",
})


def _per_sample(x: torch.Tensor) -> torch.Tensor:
    if x.numel() == x.shape[0]:   # one logit per sample: its own mean, without a reduction's ops
        return x if x.dim() == 1 else x.reshape(x.shape[0])
    return x.reshape(x.shape[0], -1).mean(1)


class LogitLoss:
    """A per-sample loss on critic logits (mean over any patch dimensions)."""

    def __init__(self, fn, label: str):
        self.fn, self.label = fn, label

    def __call__(self, logits: torch.Tensor) -> torch.Tensor:
        if isinstance(logits, (tuple, list)):
            raise ValueError(f"the critic returned {len(logits)} outputs, not logits: name the output that holds "
                             "the logits, e.g. critic: D[0]")
        return _per_sample(self.fn(logits))

    def __repr__(self) -> str:
        return self.label


def adversarial(name, /, *, critic: str, real: Tensors, fake: Tensors, loss: str = "non_saturating",
                critic_weight: float = 1.0, generator_weight: float = 1.0, train_real: bool = False,
                penalty: str | None = None, penalty_weight: float = 10.0, pool: Count = 0,
                pool_prob: Fraction = 0.5) -> list[Node]:
    """Expand into critic calls and the terms D_real, D_fake (critic), G (producer of `fake`) and,
    with train_real, E (producer of `real`).

    critic: a module, or `D[i]` for output i of a module with several heads.
    loss: non_saturating | minimax | lsgan | hinge | wgan. critic_weight scales the critic's terms
    (0.5 gives CycleGAN's (real + fake) / 2), generator_weight the G and E terms. penalty: r1 or
    r2 (Mescheder et al. 2018) or wgan_gp (Gulrajani et al. 2017), weighted by penalty_weight.
    pool > 0 feeds the critic's fake term from an image history pool of that size (Shrivastava
    et al. 2017, as in CycleGAN).
    """
    if loss not in LOSSES:
        raise ValueError(f"unknown adversarial loss '{loss}'{did_you_mean(loss, LOSSES)}")
    real, fake = _names(real), _names(fake)
    if len(real) != len(fake):
        raise ValueError(f"the critic takes {len(real)} tensor(s) for real but {len(fake)} for fake")
    if pool and len(fake) > 1:
        raise ValueError("pool keeps single images: it needs one fake tensor, not a list")
    game = LOSSES[loss]
    critic_ref, critic = critic, module_output(critic)[0]
    nodes = call_output(f"{name}.real_logits", critic_ref, real)
    fake_for_critic = fake
    if pool:
        fake_for_critic = (f"{name}.pool",)
        nodes.append(Node(f"{name}.pool", "fn", "image_pool", fake, op=ImagePool(pool, pool_prob, f"{name}.pool")))
    nodes += call_output(f"{name}.fake_logits", critic_ref, fake_for_critic)
    gen_logits = f"{name}.fake_logits"
    if pool:
        gen_logits = f"{name}.gen_logits"
        nodes += call_output(gen_logits, critic_ref, fake)
    nodes += [
        _term(name, "D_real", f"{name}.real_logits", game.D_real, loss, trains=(critic,), weight=critic_weight),
        _term(name, "D_fake", f"{name}.fake_logits", game.D_fake, loss, trains=(critic,), weight=critic_weight),
        _term(name, "G", gen_logits, game.G, loss, exclude=(critic,), weight=generator_weight),
    ]
    if train_real:
        nodes.append(_term(name, "E", f"{name}.real_logits", game.E, loss, exclude=(critic,), weight=generator_weight))
    if penalty is not None:
        nodes += _penalty_nodes(name, penalty, penalty_weight, critic_ref, real, fake_for_critic)
    return nodes


def _names(value) -> tuple[str, ...]:
    return (value,) if isinstance(value, str) else tuple(value)


def _term(name, term, logits, fn, loss, **tags) -> Node:
    label = f"{loss}.{term}"
    return Node(f"{name}.{term}", "term", label, (logits,), op=Loss(LogitLoss(fn, label), label), **tags)


def _penalty_nodes(name, penalty, penalty_weight, critic_ref, real, fake) -> list[Node]:
    if penalty not in PENALTIES:
        raise ValueError(f"unknown penalty '{penalty}'{did_you_mean(penalty, PENALTIES)}")
    critic, output = module_output(critic_ref)
    op = PENALTIES[penalty](critic=critic, output=output)
    inputs = real + fake if op.needs_fake else fake if op.on_fake else real
    return [
        Node(f"{name}.{penalty}", "fn", penalty, inputs, op=op, modules=(critic,)),
        Node(f"{name}.D_{penalty}", "term", penalty, (f"{name}.{penalty}",), op=Loss(_identity, penalty),
             trains=(critic,), weight=penalty_weight),
    ]


def _identity(values: torch.Tensor) -> torch.Tensor:
    """A term whose per-sample values were computed by an fn node."""
    return values
