"""Hand-written PyTorch training loops of the shipped graphs: what a careful user writes.

Each loop owns its modules (copies of a Runner's initial weights), its optimizers and LR
schedules, and takes one step per `step(batch)` on the same batch dict that is fed to the compiled
Runner (data and noise drawn beforehand), so the two do the same arithmetic. Careful means: every
module called once per input (`fake = G(z)` reused by both phases, `fake.detach()` for the critic,
the latent reused detached by the denoiser), the critic frozen for the generator's step,
constants of the noise schedule hoisted out of the loop, `zero_grad(set_to_none=True)`, no
`.item()` in the step (but in junyanz's ImagePool coin flips, which the compiled pool shares). The loops follow pytorch/examples
dcgan/main.py, junyanz/pytorch-CycleGAN-and-pix2pix `CycleGANModel.optimize_parameters` (with its
`ImagePool`) and the DDPM/VP-SDE denoising step (Ho et al. 2020; Song et al. 2021). Optimizer
settings, learning-rate schedules and penalty weights are arguments, read from the graph file by
bench/workloads.py; what the loops hard-code is the recipe itself.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from composer.run.optim import cosine

BETA_MIN, BETA_MAX, T_EPS = 0.1, 20.0, 1e-3     # the VP-SDE of graphs/diffusion*.yaml


def r1(logits, x):
    """R1 = 1/2 ||grad_x D(x)||^2 on real data (Mescheder et al. 2018), condition held fixed: from
    the loss term's logits D(x, *cond), `x` given to D with its gradient enabled."""
    (grad,) = torch.autograd.grad(logits.sum(), x, create_graph=True)
    return 0.5 * grad.pow(2).flatten(1).sum(1).mean()


class GANLoop:
    """pytorch/examples' DCGAN step on logits plus R1: D once on real, its gradient enabled (R1
    from the same call), fake = G(z) once, D on fake.detach(), step D; D on the same fake, step G. `cond` keys make it class-conditional
    (Mirza & Osindero 2014): D(x, y) and G(z, y). `adam_D`, `adam_G`: Adam's keyword arguments
    (the graph's optimizers, read by bench/workloads.py); `gamma`: the R1 weight; `minimax`: G
    minimises log(1 - D(G(z))) = -softplus(logit) (graphs/gan_ring.yaml), D's loss is the same."""

    def __init__(self, G, D, *, adam_D, adam_G, gamma, real="real", z="z", real_y=None, fake_y=None,
                 minimax=False):
        self.G, self.D, self.gamma, self.minimax = G, D, gamma, minimax
        self.keys = real, z, real_y, fake_y
        self.opt_D = torch.optim.Adam(D.parameters(), **adam_D)
        self.opt_G = torch.optim.Adam(G.parameters(), **adam_G)

    def step(self, batch):
        real_key, z_key, real_y, fake_y = self.keys
        real, z = batch[real_key], batch[z_key]
        cond_real = (batch[real_y],) if real_y else ()
        cond_fake = (batch[fake_y],) if fake_y else ()
        self.opt_D.zero_grad(set_to_none=True)
        x = real.detach().requires_grad_(True)
        real_logits = self.D(x, *cond_real)
        fake = self.G(z, *cond_fake)
        fake_logits = self.D(fake.detach(), *cond_fake)
        loss_D = (F.softplus(-real_logits).mean() + F.softplus(fake_logits).mean()
                  + self.gamma * r1(real_logits, x))
        loss_D.backward()
        self.opt_D.step()
        self.opt_G.zero_grad(set_to_none=True)
        self.D.requires_grad_(False)
        logits = self.D(fake, *cond_fake)
        loss_G = -F.softplus(logits).mean() if self.minimax else F.softplus(-logits).mean()
        loss_G.backward()
        self.D.requires_grad_(True)
        self.opt_G.step()


class ImagePool:
    """junyanz's `ImagePool.query`, drawing from a torch generator instead of `random`."""

    def __init__(self, size, generator):
        self.size, self.generator, self.images = size, generator, []

    def query(self, images):
        out = []
        for image in images.detach():
            image = image.unsqueeze(0)
            if len(self.images) < self.size:
                self.images.append(image)
                out.append(image)
            elif torch.rand((), generator=self.generator).item() < 0.5:
                index = int(torch.randint(self.size, (), generator=self.generator))
                out.append(self.images[index].clone())
                self.images[index] = image
            else:
                out.append(image)
        return torch.cat(out)


class CycleGANLoop:
    """junyanz's `optimize_parameters`: forward both cycles; G step with both Ds frozen (LSGAN,
    cycle x10, identity x5); D step on pooled, detached fakes, losses x0.5; both learning rates
    decay linearly to 0 from step `start` of `total` (graphs/cyclegan.yaml)."""

    def __init__(self, G_AB, G_BA, D_A, D_B, pool_generator, *, adam_G, adam_D, total, start,
                 pool=50, lam=10.0, lam_idt=0.5):
        self.G_AB, self.G_BA, self.D_A, self.D_B = G_AB, G_BA, D_A, D_B
        self.lam, self.lam_idt = lam, lam_idt
        self.opt_G = torch.optim.Adam([*G_AB.parameters(), *G_BA.parameters()], **adam_G)
        self.opt_D = torch.optim.Adam([*D_A.parameters(), *D_B.parameters()], **adam_D)
        self.pool_A, self.pool_B = ImagePool(pool, pool_generator), ImagePool(pool, pool_generator)
        decay = lambda s: 1.0 if s < start else max(0.0, 1.0 - (s - start) / (total - start))  # noqa: E731
        self.schedules = [torch.optim.lr_scheduler.LambdaLR(o, decay) for o in (self.opt_G, self.opt_D)]

    def step(self, batch):
        real_A, real_B = batch["real_A"], batch["real_B"]
        fake_B = self.G_AB(real_A)
        rec_A = self.G_BA(fake_B)
        fake_A = self.G_BA(real_B)
        rec_B = self.G_AB(fake_A)
        self.D_A.requires_grad_(False)
        self.D_B.requires_grad_(False)
        self.opt_G.zero_grad(set_to_none=True)
        idt_B, idt_A = self.G_AB(real_B), self.G_BA(real_A)
        pred_B, pred_A = self.D_B(fake_B), self.D_A(fake_A)
        loss_G = (F.mse_loss(pred_B, torch.ones_like(pred_B)) + F.mse_loss(pred_A, torch.ones_like(pred_A))
                  + F.l1_loss(rec_A, real_A) * self.lam + F.l1_loss(rec_B, real_B) * self.lam
                  + F.l1_loss(idt_A, real_A) * self.lam * self.lam_idt
                  + F.l1_loss(idt_B, real_B) * self.lam * self.lam_idt)
        loss_G.backward()
        self.opt_G.step()
        self.D_A.requires_grad_(True)
        self.D_B.requires_grad_(True)
        self.opt_D.zero_grad(set_to_none=True)
        _lsgan_d(self.D_B, real_B, self.pool_B.query(fake_B)).backward()   # junyanz: one backward per D
        _lsgan_d(self.D_A, real_A, self.pool_A.query(fake_A)).backward()
        self.opt_D.step()
        for schedule in self.schedules:
            schedule.step()


def _lsgan_d(D, real, fake):
    pred_real, pred_fake = D(real), D(fake)
    real = F.mse_loss(pred_real, torch.ones_like(pred_real))
    return 0.5 * (real + F.mse_loss(pred_fake, torch.zeros_like(pred_fake)))


class VPTime:
    """VP-SDE (beta 0.1 -> 20) in closed form; t uniform in half-log-SNR between T_EPS and 1."""

    def __init__(self):
        self.lam_1, self.lam_eps = self.lam(1.0), self.lam(T_EPS)

    @staticmethod
    def log_gamma(t):
        return -0.5 * (BETA_MIN * t + 0.5 * (BETA_MAX - BETA_MIN) * t**2)

    def lam(self, t: float) -> float:
        lg = self.log_gamma(t)
        return lg - 0.5 * math.log(-math.expm1(2 * lg))

    def t_of_u(self, u):
        lam = self.lam_1 + (self.lam_eps - self.lam_1) * u.double()
        integral = -F.logsigmoid(2 * lam)          # -2 log gamma
        t = 2 * integral / (BETA_MIN + torch.sqrt(BETA_MIN**2 + 2 * (BETA_MAX - BETA_MIN) * integral))
        return t.clamp(T_EPS, 1.0).to(u.dtype)

    def noised(self, x0, t, eps):
        lg = self.log_gamma(t).view(-1, *[1] * (x0.dim() - 1))
        return lg.exp() * x0 + torch.sqrt(-torch.expm1(2 * lg)) * eps


class DiffusionLoop:
    """The DSM step: x_t = gamma_t x0 + sigma_t eps, MSE of eps_theta(x_t, t[, y]) to eps, clip 1,
    Adam, cosine LR with warm-up (graphs/diffusion.yaml, diffusion_cfg.yaml with `cond`)."""

    def __init__(self, net, *, adam, total, warmup, data="x0", cond=None, clip=1.0):
        self.eps_net, self.data, self.cond, self.clip = net, data, cond, clip
        self.opt = torch.optim.Adam(net.parameters(), **adam)
        self.schedule = torch.optim.lr_scheduler.LambdaLR(self.opt, lambda s: cosine(s, total=total, warmup=warmup))
        self.vp = VPTime()

    def step(self, batch):
        x0, eps = batch[self.data], batch["dsm.eps"]
        t = self.vp.t_of_u(batch["dsm.u"])
        cond = (batch[self.cond],) if self.cond else ()
        loss = (self.eps_net(self.vp.noised(x0, t, eps), t, *cond) - eps).pow(2).flatten(1).mean(1).mean()
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        if self.clip:
            torch.nn.utils.clip_grad_norm_(self.eps_net.parameters(), self.clip)
        self.opt.step()
        self.schedule.step()


class LatentDiffusionLoop:
    """Autoencoder step (L1 reconstruction), then the DSM step on the same latent, detached
    (graphs/latent_diffusion.yaml: two optimizers, clip 1, one cosine LR schedule for both)."""

    def __init__(self, enc, dec, eps_net, *, adam_ae, adam_eps, total, warmup, clip=1.0):
        self.enc, self.dec, self.clip = enc, dec, clip
        self.ae_params = [*enc.parameters(), *dec.parameters()]
        self.opt = torch.optim.Adam(self.ae_params, **adam_ae)
        self.schedule = torch.optim.lr_scheduler.LambdaLR(self.opt, lambda s: cosine(s, total=total, warmup=warmup))
        self.dsm = DiffusionLoop(eps_net, adam=adam_eps, total=total, warmup=warmup, data="z", clip=clip)

    def step(self, batch):
        x = batch["x"]
        z = self.enc(x)
        loss = (self.dec(z) - x).abs().flatten(1).mean(1).mean()
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        if self.clip:
            torch.nn.utils.clip_grad_norm_(self.ae_params, self.clip)
        self.opt.step()
        self.schedule.step()
        self.dsm.step({**batch, "z": z.detach()})
