"""Denoising score matching (DSM) for VP diffusion: targets, weightings, per-sample loss.

Course notes (VP-SDE section): sample t ~ U(0, T), x_t = gamma_t x_0 + sigma_t eps and
"update eps_theta(x_t, t) to minimize lambda_t / sigma_t^2 ||eps_theta - eps||^2, usually
lambda_t = sigma_t^2", i.e. a lambda_t-weighted regression of the score
s_theta = -eps_theta / sigma_t onto grad log q(x_t | x_0) = -eps / sigma_t.

The network may predict one of three targets (all interconvertible given x_t and t):
    "eps": eps                                   (Ho et al. 2020)
    "x0":  x_0                                   (x0_hat = (x_t - sigma eps_hat) / gamma)
    "v":   v = gamma eps - sigma x_0             (Salimans & Ho 2022, sec. 4 / app. D)
Their residuals are proportional to the eps residual, eps_hat - eps = c_t (pred - target),
with c_t^2 = 1 (eps), SNR (x0), gamma^2 (v), where SNR = gamma^2 / sigma^2.

Weightings. Every weighting is a weight w(t) on the eps-space error ||eps_hat - eps||^2
(the common scale of Kingma & Gao 2023); `dsm_loss` applies it in the prediction's own
space as w(t) c_t^2 ||pred - target||^2, so a weighting means the same objective for every
target. Per target the loss equals:

| weighting    | w(t)         | target "eps"     | target "x0"          | target "v"            |
|--------------|--------------|------------------|----------------------|-----------------------|
| none         | 1 / c_t^2    | |eps_hat-eps|^2  | |x0_hat-x0|^2        | |v_hat-v|^2           |
| sigma2       | 1            | |eps_hat-eps|^2  | SNR |x0_hat-x0|^2    | gamma^2 |v_hat-v|^2   |
| score        | 1 / sigma^2  | |s_hat - grad log q(x_t|x_0)|^2, the notes' lambda_t = 1          |
| snr          | 1            | = sigma2, Salimans & Ho's name: SNR-weighted x0 loss              |
| min_snr      | min(SNR,5)/SNR | x0 loss weighted min(SNR, 5) (Hang et al. 2023, Min-SNR-5)      |
| snr_trunc    | max(SNR,1)/SNR | x0 loss weighted max(SNR, 1) (Salimans & Ho 2022, "truncated")  |
| snr_plus_one | (1+SNR)/SNR  | x0 loss weighted 1 + SNR = |v_hat - v|^2 (Salimans & Ho 2022)     |

(|.|^2 is the per-sample mean over the non-batch dims; sigma2 is the notes' lambda_t = sigma_t^2.)

"none" is plain MSE on whatever the network predicts; "sigma2" is the notes' default
(and DDPM's L_simple); for target "eps" the two coincide. All losses are per-sample
means over the non-batch dims, shape [B]; the runtime reduces them.
"""
from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor

from composer.errors import did_you_mean
from composer.registry import Registry

from composer.recipes.schedules import Schedule, append_dims, as_time

TARGETS = ("eps", "x0", "v")

WEIGHTINGS = Registry("weighting", {
    "none": lambda snr, c2: 1 / c2,
    "sigma2": lambda snr, c2: torch.ones_like(snr),
    "score": lambda snr, c2: 1 + snr,
    "snr": lambda snr, c2: torch.ones_like(snr),
    "min_snr": lambda snr, c2: snr.clamp(max=5.0) / snr,
    "snr_trunc": lambda snr, c2: snr.clamp(min=1.0) / snr,
    "snr_plus_one": lambda snr, c2: (1 + snr) / snr,
}, supplied=("snr", "c2"), docs={
    "none": "plain MSE on whatever the network predicts",
    "sigma2": "the notes' lambda_t = sigma_t^2: MSE on eps (DDPM's L_simple)",
    "score": "lambda_t = 1: the score-space error (w = 1 / sigma^2)",
    "snr": "Salimans & Ho's name for sigma2: SNR-weighted x0 loss",
    "min_snr": "x0 loss weighted min(SNR, 5) (Hang et al. 2023, Min-SNR-5)",
    "snr_trunc": "x0 loss weighted max(SNR, 1) (Salimans & Ho 2022, truncated SNR)",
    "snr_plus_one": "x0 loss weighted 1 + SNR, i.e. MSE on v (Salimans & Ho 2022)",
}, examples={name: f"{{recipe: denoising, data: x, model: eps_net, target: x0, weighting: {name}}}"
             for name in ("none", "sigma2", "score", "snr", "min_snr", "snr_trunc", "snr_plus_one")})
"""Name -> w(t) on the eps-space error, as a function of (SNR_t, c_t^2); see the module table.
"score" is 1 / sigma^2 = 1 + SNR."""


def _check_name(kind: str, name: str, choices) -> None:
    """ValueError naming the bad value, the allowed set and the nearest valid name."""
    if name not in choices:
        hint = did_you_mean(name, choices)
        hint = hint if "did you mean" in hint else ""
        raise ValueError(f"unknown {kind} '{name}'; allowed: {', '.join(sorted(choices))}{hint}")


def _coefficients(schedule: Schedule, t: Tensor, like: Tensor) -> tuple[Tensor, Tensor]:
    """gamma_t and sigma_t in like's dtype, broadcastable over like's trailing dims."""
    t = as_time(t)
    gamma = append_dims(schedule.gamma(t).to(like), like.dim())
    sigma = append_dims(schedule.sigma(t).to(like), like.dim())
    return gamma, sigma


def sample_time(batch: int, *, t_eps: float = 1e-3, t_max: float = 1.0,
                generator: torch.Generator | None = None, device: torch.device | str | None = None,
                dtype: torch.dtype | None = None) -> Tensor:
    """t ~ U(t_eps, t_max), shape [batch]; t_eps > 0 keeps sigma_t and eps / sigma_t finite
    (Song et al. 2021, app. C use t_eps = 1e-5 for VP; 1e-3 is the sampling default here)."""
    u = torch.rand(batch, generator=generator, device=device, dtype=dtype)
    return t_eps + (t_max - t_eps) * u


def dsm_target(x0: Tensor, eps: Tensor, t: Tensor, schedule: Schedule, target: str = "eps") -> Tensor:
    """The regression target for `target`: eps, x0, or v = gamma_t eps - sigma_t x0."""
    _check_name("target", target, TARGETS)
    if target == "eps":
        return eps
    if target == "x0":
        return x0
    gamma, sigma = _coefficients(schedule, t, x0)
    return gamma * eps - sigma * x0


def to_eps(prediction: Tensor, x_t: Tensor, t: Tensor, schedule: Schedule, target: str = "eps") -> Tensor:
    """Convert a network output for `target` to eps_hat, so eps-samplers serve every target.

    eps: as is;  x0: (x_t - gamma x0_hat) / sigma;  v: sigma x_t + gamma v_hat
    (since gamma v + sigma x_t = (gamma^2 + sigma^2) eps, Salimans & Ho 2022, app. D).
    """
    _check_name("target", target, TARGETS)
    if target == "eps":
        return prediction
    gamma, sigma = _coefficients(schedule, t, x_t)
    if target == "x0":
        return (x_t - gamma * prediction) / sigma
    return sigma * x_t + gamma * prediction


def estimate(prediction: Tensor, x_t: Tensor, t: Tensor, schedule: Schedule, target: str = "eps",
             want: str = "x0") -> Tensor:
    """Read `want` (eps, x0 or v) off a network output for `target`, whatever the target:

        eps_hat = to_eps(prediction);  x0_hat = (x_t - sigma eps_hat) / gamma, or gamma x_t - sigma v_hat
        for a v-prediction (no division by a small gamma);  v_hat = gamma eps_hat - sigma x0_hat.
    The prediction itself is returned where want == target."""
    _check_name("target", target, TARGETS)
    _check_name("estimate", want, TARGETS)
    if want == target:
        return prediction
    gamma, sigma = _coefficients(schedule, t, x_t)
    eps = to_eps(prediction, x_t, t, schedule, target)
    if want == "eps":
        return eps
    x0 = {"x0": prediction, "v": gamma * x_t - sigma * prediction}.get(target, (x_t - sigma * eps) / gamma)
    return x0 if want == "x0" else gamma * eps - sigma * x0


def as_eps_model(net: Callable[[Tensor, Tensor], Tensor], schedule: Schedule,
                 target: str = "eps") -> Callable[[Tensor, Tensor], Tensor]:
    """Wrap a network predicting `target` as an eps_model(x, t) for `samplers`."""
    _check_name("target", target, TARGETS)
    return lambda x, t: to_eps(net(x, t), x, t, schedule, target)


def dsm_loss(prediction: Tensor, *, x0: Tensor, eps: Tensor, t: Tensor, schedule: Schedule,
             x_t: Tensor | None = None, target: str = "eps", weighting: str = "sigma2") -> Tensor:
    """Per-sample DSM loss w(t) c_t^2 mean ||prediction - target||^2, shape [B].

    x_t = gamma_t x0 + sigma_t eps is implied by (x0, eps, t); it is accepted so a caller
    can pass its whole context, and is not needed. See the module table for `weighting`.
    """
    _check_name("target", target, TARGETS)
    _check_name("weighting", weighting, WEIGHTINGS)
    t = as_time(t)
    gamma, sigma = schedule.gamma(t).to(prediction), schedule.sigma(t).to(prediction)
    # 1. regression target and per-sample MSE over the non-batch dims
    residual = prediction - dsm_target(x0, eps, t, schedule, target)
    mse = residual.pow(2).flatten(1).mean(1)
    # 2. squared scale c_t^2 of the residual in eps space
    snr = (gamma / sigma) ** 2
    c2 = {"eps": torch.ones_like(snr), "x0": snr, "v": gamma**2}[target]
    # 3. eps-space weight, applied in the prediction's own space
    return WEIGHTINGS[weighting](snr, c2) * c2 * mse
