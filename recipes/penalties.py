"""Gradient penalties on the critic, as fn nodes that call the critic themselves."""
from __future__ import annotations

import torch


def _grad_sq_norm(critic, x: torch.Tensor) -> torch.Tensor:
    x = x.detach().requires_grad_(True)
    out = critic(x)
    (grad,) = torch.autograd.grad(out.sum(), x, create_graph=True)
    return grad.reshape(grad.shape[0], -1).pow(2).sum(1)


class R1:
    """R1 = ½‖∇_x D(x)‖² on real data (Mescheder, Geiger, Nowozin 2018, eq. 9; γ = the term weight)."""

    def __init__(self, critic: str):
        self.critic = critic

    def __call__(self, ctx, real: torch.Tensor) -> torch.Tensor:
        if real.device.type == "meta":
            return torch.empty(real.shape[0], device="meta")
        return 0.5 * _grad_sq_norm(ctx.modules[self.critic], real)

    def __repr__(self) -> str:
        return f"r1[{self.critic}]"


class WGANGP:
    """(‖∇D(x̂)‖ − 1)² at x̂ = αx + (1−α)x̃, α ~ U(0, 1) per sample (Gulrajani et al. 2017, Alg. 1)."""

    def __init__(self, critic: str):
        self.critic = critic

    def __call__(self, ctx, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        if real.device.type == "meta":
            return torch.empty(real.shape[0], device="meta")
        shape = (real.shape[0],) + (1,) * (real.dim() - 1)
        alpha = torch.rand(shape, generator=ctx.generator).to(real.device)
        x_hat = alpha * real.detach() + (1 - alpha) * fake.detach()
        return (_grad_sq_norm(ctx.modules[self.critic], x_hat).sqrt() - 1) ** 2

    def __repr__(self) -> str:
        return f"wgan_gp[{self.critic}]"


# name -> (penalty class, whether it also reads the fake batch)
PENALTIES = {
    "r1": (R1, False),
    "wgan_gp": (WGANGP, True),
}
