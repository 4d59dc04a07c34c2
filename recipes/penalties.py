"""Gradient penalties on the critic, as fn ops that call the critic themselves, or, for R1 and R2,
share the critic's call on the same inputs that its phase's loss term makes
(composer/graph/sharing.py).

A critic may take several tensors (a conditional critic D(x, y), a pair critic D(x, z)): the
penalty is on the gradient with respect to every floating-point input together; integer inputs
(class labels) are held fixed.
"""
from __future__ import annotations

import torch

from composer.graph.nodes import InputGradient, Op, requires_grad
from composer.registry import Registry


def _grad_sq_norm(out, inputs, scale: float = 1.0, output: int | None = None) -> torch.Tensor:
    """‖∇_x out‖² per sample, with respect to the floating-point `inputs` that `out` (the critic's
    output; its output `output` when it has several) was computed from with their gradient
    enabled; under fp16 the output is scaled by the phase's loss scale before differentiating and
    the gradients divided back in fp32 (composer/precision.py)."""
    if output is not None:
        out = out[output]
    wrt = [x for x in inputs if x.is_floating_point()]
    grads = torch.autograd.grad(out.sum() * scale if scale != 1.0 else out.sum(), wrt, create_graph=True)
    if scale != 1.0:
        grads = [g.float() / scale for g in grads]
    return sum(g.reshape(g.shape[0], -1).pow(2).sum(1) for g in grads)


class _Penalty(Op):
    needs_fake = False       # WGAN-GP: real and fake inputs
    on_fake = False          # R2: the fake inputs (those the critic's fake term reads)
    double_backward = True   # autograd.grad(..., create_graph=True): outside compiled regions

    def __init__(self, *, critic: str, output: int | None = None):
        self.critic, self.module, self.output = critic, critic, output

    def meta(self, ctx, *inputs):
        return torch.empty(inputs[0].shape[0], device="meta")

    def __repr__(self) -> str:
        shown = self.critic if self.output is None else f"{self.critic}[{self.output}]"
        return f"{self.name}[{shown}]"


class R1(_Penalty, InputGradient):
    """R1 = ½‖∇_x D(x)‖² on real data (Mescheder, Geiger, Nowozin 2018, eq. 9; γ = the term weight).

    It differentiates the critic's call on the same real inputs when its phase makes one."""

    name = "r1"

    def from_output(self, ctx, out, *real: torch.Tensor) -> torch.Tensor:
        return 0.5 * _grad_sq_norm(out, real, ctx.grad_scale, self.output)


class R2(_Penalty, InputGradient):
    """R2 = ½‖∇_x̃ D(x̃)‖² on generated data (Mescheder, Geiger, Nowozin 2018, eq. 10).

    It differentiates the critic's call on the same fakes (detached) when its phase makes one.
    Example: `{recipe: adversarial, critic: D, real: real, fake: fake, penalty: r2, penalty_weight: 1.0}`"""

    name = "r2"
    on_fake = True

    def from_output(self, ctx, out, *fake: torch.Tensor) -> torch.Tensor:
        return 0.5 * _grad_sq_norm(out, fake, ctx.grad_scale, self.output)


class WGANGP(_Penalty):
    """(‖∇D(x̂)‖ − 1)² at x̂ = αx + (1−α)x̃, α ~ U(0, 1) per sample (Gulrajani et al. 2017, Alg. 1);
    integer inputs (labels) are taken from the real side."""

    name = "wgan_gp"
    needs_fake = True

    def __call__(self, ctx, *pairs: torch.Tensor) -> torch.Tensor:
        half = len(pairs) // 2
        real, fake = pairs[:half], pairs[half:]
        first = real[0]
        alpha = torch.rand(first.shape[0], generator=ctx.generator).to(first.device)
        mixed = requires_grad([_mix(alpha, r, f) for r, f in zip(real, fake)])
        out = ctx.modules[self.critic](*mixed)
        return (_grad_sq_norm(out, mixed, ctx.grad_scale, self.output).sqrt() - 1) ** 2


def _mix(alpha: torch.Tensor, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    if not real.is_floating_point():
        return real
    a = alpha.reshape((-1,) + (1,) * (real.dim() - 1)).to(real.dtype)
    return a * real.detach() + (1 - a) * fake.detach()


PENALTIES = Registry("penalty", {
    "r1": R1,
    "r2": R2,
    "wgan_gp": WGANGP,
}, supplied=("critic", "output"))
