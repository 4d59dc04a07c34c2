"""Hand-written PyTorch loops of the 2-D MLP GAN graphs (gan_ring, gan_grid, wgan_gp): what a
careful user writes. diffusion_2d needs no loop of its own: it is bench/handwritten.py's
`DiffusionLoop` on the TimeMLP.

Careful means, beyond bench/handwritten.py's rules: the critic runs once on the real batch, with
the gradient of the real input enabled, and that one output serves both the loss and R1 (D runs
3 times per step, not 4; issue 26). `WGANGPLoop` follows Gulrajani et al. 2017, Algorithm 1:
n_critic rounds on fresh data and noise, each with its interpolates, then the generator's step on
fresh noise; it draws from copies of the Runner's data stream and generator, in the order the
compiled plan draws (data, z, alpha per critic round; z for the generator).
"""
from __future__ import annotations

import copy

import torch
import torch.nn.functional as F

from composer.run.optim import linear_decay

G_LOSSES = {   # the generator's per-logit loss of each game the loops play
    "non_saturating": lambda f: F.softplus(-f),
    "minimax": lambda f: -F.softplus(f),
}


def grad_sq_norm(out, x):
    """||d out.sum() / dx||^2 per sample, kept differentiable (the penalty trains the critic)."""
    (grad,) = torch.autograd.grad(out.sum(), x, create_graph=True)
    return grad.pow(2).flatten(1).sum(1)


def _decayed(optimizer, total):
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: linear_decay(s, total=total))


class SharedR1GANLoop:
    """D on real with the input's gradient on (once: logits for the loss and R1), fake = G(z)
    once, D on fake.detach(), step D; D frozen on the same fake, step G; both LRs decay linearly
    to 0 over the second half (graphs/gan_ring.yaml, gan_grid.yaml; `total=None`: constant). `scale`
    multiplies the real data before the critic (gan_grid's real_small), `loss` is the generator's
    game, `gamma` the R1 weight (0: no penalty, graphs/dcgan_64.yaml)."""

    shared = True
    """False: R1 on a second pass of D over the real batch, as a plan without the shared forward
    does (the same work as that plan, for the parity test and the interpreter's cost)."""

    def __init__(self, G, D, *, adam_D, adam_G, gamma, total, loss="non_saturating", scale=None):
        self.G, self.D, self.gamma, self.scale, self.g_loss = G, D, gamma, scale, G_LOSSES[loss]
        self.opt_D = torch.optim.Adam(D.parameters(), **adam_D)
        self.opt_G = torch.optim.Adam(G.parameters(), **adam_G)
        self.schedules = [_decayed(self.opt_D, total), _decayed(self.opt_G, total)] if total else []

    def step(self, batch):
        real, z = batch["real"], batch["z"]
        if self.scale is not None:
            real = real * self.scale
        self.opt_D.zero_grad(set_to_none=True)
        x = real.detach().requires_grad_(True) if self.shared and self.gamma else real
        real_logits = self.D(x)
        fake = self.G(z)
        fake_logits = self.D(fake.detach())
        loss_D = F.softplus(-real_logits).mean() + F.softplus(fake_logits).mean()
        if self.gamma:
            if not self.shared:
                x = real.detach().requires_grad_(True)
            penalty = 0.5 * grad_sq_norm(real_logits if self.shared else self.D(x), x)
            loss_D = loss_D + self.gamma * penalty.mean()
        loss_D.backward()
        self.opt_D.step()
        self.opt_G.zero_grad(set_to_none=True)
        self.D.requires_grad_(False)
        loss_G = self.g_loss(self.D(fake)).mean()
        loss_G.backward()
        self.D.requires_grad_(True)
        self.opt_G.step()
        for schedule in self.schedules:
            schedule.step()


class WGANGPLoop:
    """Gulrajani et al. 2017, Algorithm 1 (graphs/wgan_gp.yaml): `n_critic` critic steps on
    D(fake) - D(real) + lambda (||grad D(x_hat)|| - 1)^2, then one generator step on -D(G(z))."""

    def __init__(self, G, D, stream, generator, *, adam_D, adam_G, lam, n_critic):
        self.G, self.D, self.lam, self.n_critic = G, D, lam, n_critic
        self.stream = copy.deepcopy(stream)          # the Runner's data stream, as it stands
        self.generator = torch.Generator()
        self.generator.set_state(generator.get_state())   # the Runner's noise, as it stands
        self.opt_D = torch.optim.Adam(D.parameters(), **adam_D)
        self.opt_G = torch.optim.Adam(G.parameters(), **adam_G)

    def step(self, batch=None):
        for _ in range(self.n_critic):
            self.critic_step()
        self.opt_G.zero_grad(set_to_none=True)
        z = torch.randn(self.stream.batch, 2, generator=self.generator)
        self.D.requires_grad_(False)
        (-self.D(self.G(z))).mean().backward()
        self.D.requires_grad_(True)
        self.opt_G.step()

    def critic_step(self):
        real = self.stream.next()["x"]
        z = torch.randn(real.shape[0], 2, generator=self.generator)
        self.opt_D.zero_grad(set_to_none=True)
        fake = self.G(z).detach()
        wasserstein = (-self.D(real)).mean() + self.D(fake).mean()
        alpha = torch.rand(real.shape[0], generator=self.generator).view(-1, 1)
        x_hat = (alpha * real + (1 - alpha) * fake).requires_grad_(True)
        penalty = (grad_sq_norm(self.D(x_hat), x_hat).sqrt() - 1) ** 2
        loss = wasserstein + self.lam * penalty.mean()
        loss.backward()
        self.opt_D.step()
