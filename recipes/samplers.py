"""Samplers for VP diffusion models with an eps-prediction network.

Every sampler is a plain function in the k-diffusion style,

    sample_xxx(eps_model, x, ts, schedule, *, generator=None, **options) -> Tensor

`eps_model(x, t)` predicts eps for a batch (t is a [B] tensor in x's dtype); `x` is the
noise at ts[0]; `ts` is a decreasing time grid (see `time_grid`) ending at t_min > 0.
Samplers return x at ts[-1] (which still carries noise of scale sigma(t_min), about 0.01
for the VP default), or with `denoise=True` the Tweedie estimate
x0_hat = (x - sigma eps_hat) / gamma at ts[-1], for one extra network evaluation (NFE).
There is no hidden state: the whole trajectory is a function of the arguments.

A note on signs. With the score s = -eps / sigma (course notes, "Parameterize") the
reverse SDE of Anderson 1982 / Song et al. 2021 (eq. 6) is
dx = [-1/2 beta x - beta s] dt + sqrt(beta) dW, dt < 0. Written with the positive
backward step dtau = -dt this is dx = [1/2 beta x - beta eps / sigma] dtau + sqrt(beta) dW:
the notes' "generation process" -[1/2 beta x - beta eps/sigma] dt read with dt < 0.
The probability-flow ODE (Song et al. 2021, eq. 13) is dx/dt = -1/2 beta [x - eps / sigma].
"""
from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor

from composer.errors import did_you_mean
from composer.registry import Registry

from composer.recipes.schedules import Schedule, as_time

EpsModel = Callable[[Tensor, Tensor], Tensor]


def _check_name(kind: str, name: str, choices) -> None:
    """ValueError naming the bad value, the allowed set and the nearest valid name."""
    if name not in choices:
        hint = did_you_mean(name, choices)
        hint = hint if "did you mean" in hint else ""
        raise ValueError(f"unknown {kind} '{name}'; allowed: {', '.join(sorted(choices))}{hint}")


def _eps(eps_model: EpsModel, x: Tensor, t: Tensor) -> Tensor:
    """eps_hat(x, t) with the scalar time t broadcast to a [B] tensor."""
    return eps_model(x, t.to(device=x.device, dtype=x.dtype).expand(x.shape[0]))


def _noise(x: Tensor, generator: torch.Generator | None) -> Tensor:
    return torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)


def _x0_hat(x: Tensor, eps_hat: Tensor, t: Tensor, schedule: Schedule) -> Tensor:
    """Data prediction x0_hat = (x - sigma_t eps_hat) / gamma_t."""
    return (x - schedule.sigma(t) * eps_hat) / schedule.gamma(t)


def _finish(eps_model: EpsModel, x: Tensor, t: Tensor, schedule: Schedule, denoise: bool) -> Tensor:
    """x at the last grid point, or its x0_hat estimate (one extra NFE) when `denoise`."""
    return _x0_hat(x, _eps(eps_model, x, t), t, schedule) if denoise else x


def ode_drift(eps_model: EpsModel, x: Tensor, t: Tensor, schedule: Schedule) -> Tensor:
    """Probability-flow ODE velocity dx/dt = -1/2 beta(t) [x - eps_hat(x, t) / sigma_t]."""
    eps_hat = _eps(eps_model, x, t)
    return -0.5 * schedule.beta(t) * (x - eps_hat / schedule.sigma(t))


@torch.no_grad()
def sample_euler_maruyama(eps_model: EpsModel, x: Tensor, ts: Tensor, schedule: Schedule, *,
                          generator: torch.Generator | None = None, denoise: bool = False) -> Tensor:
    """Reverse VP-SDE by Euler-Maruyama (Song et al. 2021, sec. 3-4; the notes' generation process).

    Per step, with dtau = t - t_next > 0 and z ~ N(0, I) from `generator`:
        x <- x + [1/2 beta(t) x - beta(t) eps_hat / sigma_t] dtau + sqrt(beta(t) dtau) z.
    Noise is added on every step, the last one included, so the output follows the
    marginal at ts[-1]. NFE = steps (+1 with `denoise`).
    """
    for t, t_next in zip(ts[:-1], ts[1:]):
        dtau, beta = t - t_next, schedule.beta(t)
        eps_hat = _eps(eps_model, x, t)
        # 1. drift of the reverse SDE, in backward time
        x = x + (0.5 * beta * x - beta * eps_hat / schedule.sigma(t)) * dtau
        # 2. diffusion
        x = x + torch.sqrt(beta * dtau) * _noise(x, generator)
    return _finish(eps_model, x, ts[-1], schedule, denoise)


@torch.no_grad()
def sample_ode_euler(eps_model: EpsModel, x: Tensor, ts: Tensor, schedule: Schedule, *,
                     generator: torch.Generator | None = None, denoise: bool = False) -> Tensor:
    """Probability-flow ODE (Song et al. 2021, eq. 13) by explicit Euler in t.

    x <- x + (t_next - t) dx/dt, dx/dt = -1/2 beta(t) [x - eps_hat / sigma_t].
    Deterministic; `generator` is unused. NFE = steps (+1 with `denoise`).
    """
    for t, t_next in zip(ts[:-1], ts[1:]):
        x = x + (t_next - t) * ode_drift(eps_model, x, t, schedule)
    return _finish(eps_model, x, ts[-1], schedule, denoise)


@torch.no_grad()
def sample_heun(eps_model: EpsModel, x: Tensor, ts: Tensor, schedule: Schedule, *,
                generator: torch.Generator | None = None, denoise: bool = False) -> Tensor:
    """Probability-flow ODE by Heun's second-order method (Karras et al. 2022, Algorithm 1).

    Per step: 1. Euler predictor with d = dx/dt at t; 2. trapezoidal corrector with the
    average of d and d' = dx/dt at (x_euler, t_next). A step ending at t_next = 0, where
    eps / sigma is undefined, stays Euler. NFE = 2 steps with t_min > 0 (2 steps - 1 when
    the grid ends at 0), +1 with `denoise`. Deterministic; `generator` is unused.
    """
    for t, t_next in zip(ts[:-1], ts[1:]):
        h = t_next - t
        # 1. Euler predictor
        d = ode_drift(eps_model, x, t, schedule)
        x_euler = x + h * d
        if schedule.sigma(t_next) == 0:
            x = x_euler
            continue
        # 2. trapezoidal corrector
        d_next = ode_drift(eps_model, x_euler, t_next, schedule)
        x = x + h * 0.5 * (d + d_next)
    return _finish(eps_model, x, ts[-1], schedule, denoise)


@torch.no_grad()
def sample_ddim(eps_model: EpsModel, x: Tensor, ts: Tensor, schedule: Schedule, *,
                generator: torch.Generator | None = None, eta: float = 0.0,
                denoise: bool = False) -> Tensor:
    """DDIM (Song, Meng & Ermon 2021, eq. 12 and 16) with continuous gamma_t, sigma_t.

    From t to s < t: x_s = gamma_s x0_hat + sqrt(sigma_s^2 - c^2) eps_hat + c z with
    c = eta (sigma_s / sigma_t) sqrt(1 - gamma_t^2 / gamma_s^2). eta = 0 is the
    deterministic DDIM (a first-order solver of the probability-flow ODE in lambda);
    eta = 1 is DDPM's ancestral posterior q(x_s | x_t, x0_hat). NFE = steps (+1 with `denoise`).
    """
    if not 0.0 <= eta <= 1.0:
        raise ValueError(f"sample_ddim: expected 0 <= eta <= 1, got eta={eta}")
    for t, s in zip(ts[:-1], ts[1:]):
        gamma_t, sigma_t = schedule.gamma(t), schedule.sigma(t)
        gamma_s, sigma_s = schedule.gamma(s), schedule.sigma(s)
        eps_hat = _eps(eps_model, x, t)
        # 1. predict x_0
        x0_hat = (x - sigma_t * eps_hat) / gamma_t
        # 2. noise scale of the step
        c = eta * sigma_s / sigma_t * torch.sqrt(1 - (gamma_t / gamma_s) ** 2)
        # 3. step to s: x_0 part, direction pointing to x_t, fresh noise
        x = gamma_s * x0_hat + torch.sqrt(sigma_s**2 - c**2) * eps_hat
        if eta > 0:
            x = x + c * _noise(x, generator)
    return _finish(eps_model, x, ts[-1], schedule, denoise)


def sample_ddpm(eps_model: EpsModel, x: Tensor, ts: Tensor, schedule: Schedule, *,
                generator: torch.Generator | None = None, denoise: bool = False) -> Tensor:
    """DDPM's ancestral sampling (Ho et al. 2020, Algorithm 2) on any time grid: `sample_ddim` with
    eta = 1, each step a draw from the posterior q(x_s | x_t, x0_hat). Its fresh noise corrects
    errors of the learned eps-network that a deterministic ODE solver carries to the end (Karras
    et al. 2022, sec. 4); it needs more steps than the ODE solvers. NFE = steps (+1 with `denoise`)."""
    return sample_ddim(eps_model, x, ts, schedule, generator=generator, eta=1.0, denoise=denoise)


@torch.no_grad()
def sample_dpmpp_2m(eps_model: EpsModel, x: Tensor, ts: Tensor, schedule: Schedule, *,
                    generator: torch.Generator | None = None, denoise: bool = False) -> Tensor:
    """DPM-Solver++(2M) (Lu et al. 2022, "DPM-Solver++", Algorithm 2), multistep in lambda.

    With lambda = log(gamma / sigma), h_i = lambda_{i+1} - lambda_i, D_i = x0_hat at t_i:
        x_{i+1} = (sigma_{i+1} / sigma_i) x_i - gamma_{i+1} (exp(-h_i) - 1) D,
    D = D_0 on the first step (first order, = DDIM), afterwards the second-order
    extrapolation D = (1 + 1/(2 r)) D_i - 1/(2 r) D_{i-1}, r = h_{i-1} / h_i.
    A step ending at sigma = 0 (t = 0) has h = inf and r = 0, so it is taken first order,
    x = gamma_s D_i (the `lower_order_final` step of the authors' code and of k-diffusion's
    `sample_dpmpp_2m`). Deterministic; `generator` is unused. NFE = steps (+1 with `denoise`).
    """
    x0_prev, h_prev = None, None
    for t, s in zip(ts[:-1], ts[1:]):
        eps_hat = _eps(eps_model, x, t)
        # 1. predict x_0
        x0_hat = _x0_hat(x, eps_hat, t, schedule)
        # 2. step size in lambda and the (extrapolated) data prediction
        if schedule.sigma(s) == 0:
            x = schedule.gamma(s) * x0_hat  # first-order last step: h = inf
            continue
        h = schedule.lam(s) - schedule.lam(t)
        if x0_prev is None:
            d = x0_hat
        else:
            r = h_prev / h
            d = (1 + 1 / (2 * r)) * x0_hat - 1 / (2 * r) * x0_prev
        # 3. exponential-integrator update
        x = schedule.sigma(s) / schedule.sigma(t) * x - schedule.gamma(s) * torch.expm1(-h) * d
        x0_prev, h_prev = x0_hat, h
    return _finish(eps_model, x, ts[-1], schedule, denoise)


SAMPLERS = Registry("sampler", {
    "euler_maruyama": sample_euler_maruyama,
    "euler": sample_ode_euler,
    "heun": sample_heun,
    "ddim": sample_ddim,
    "ddpm": sample_ddpm,
    "dpmpp_2m": sample_dpmpp_2m,
}, supplied=("eps_model", "x", "ts", "schedule", "generator"))

SPACINGS = ("uniform", "quadratic", "logsnr")

DEFAULT_SPACING: dict[str, str] = {
    "euler_maruyama": "quadratic",
    "euler": "quadratic",
    "heun": "quadratic",
    "ddim": "quadratic",
    "ddpm": "quadratic",
    "dpmpp_2m": "quadratic",
}
"""The time grid each sampler uses unless told otherwise (`sample.spacing`). Measured on the
trained 25-mode grid model (bench/samplers_2d.md, high-quality fraction and mode width / σ):
steps dense near t_min ("quadratic") are the best grid, or within 0.015 of it, for every sampler
at 10 and 20 steps. Uniform-in-t grids collapse below 20 steps (10 steps: Heun 0.15 vs 0.93,
DPM++(2M) 0.08 vs 0.95); on the log-SNR grid of Lu et al. 2022 DPM++(2M) trails (0.89 and 0.93
vs 0.95 at 10 and 20 steps), and Euler-Maruyama at 100 steps gives 0.965 on it vs 0.92 uniform. At 10
steps DPM++(2M)'s quadratic-grid modes are too narrow (0.66 σ; 0.99 σ at 20 steps)."""


def time_grid(steps: int, *, t_max: float = 1.0, t_min: float = 1e-3, spacing: str = "uniform",
              schedule: Schedule | None = None) -> Tensor:
    """Decreasing float64 time grid of length steps + 1 from t_max to t_min.

    spacing: "uniform" in t; "quadratic" uniform in sqrt(t - t_min), denser near t_min (DDIM,
    Song, Meng & Ermon 2021, app. D.2); "logsnr" uniform in lambda = log(gamma / sigma), which
    needs `schedule` and t_min > 0 (DPM-Solver's "logSNR" steps, Lu et al. 2022).
    """
    _check_name("spacing", spacing, SPACINGS)
    if steps < 1 or not 0 <= t_min < t_max:
        raise ValueError(f"time_grid: expected steps >= 1 and 0 <= t_min < t_max, "
                         f"got steps={steps}, t_min={t_min}, t_max={t_max}")
    u = torch.linspace(1.0, 0.0, steps + 1, dtype=torch.float64)
    if spacing == "uniform":
        ts = t_min + (t_max - t_min) * u
    elif spacing == "quadratic":
        ts = t_min + (t_max - t_min) * u**2
    else:
        if schedule is None or t_min == 0:
            raise ValueError(f"time_grid: spacing 'logsnr' needs a schedule and t_min > 0 "
                             f"(lambda is infinite at t = 0), got schedule={schedule}, t_min={t_min}")
        lam_max, lam_min = schedule.lam(as_time(t_min)), schedule.lam(as_time(t_max))
        ts = schedule.t_of_lambda(lam_min + (lam_max - lam_min) * (1 - u))
    ts[0], ts[-1] = t_max, t_min  # exact end points despite round-off
    return ts


def sample(name: str, eps_model: EpsModel, shape: tuple[int, ...], schedule: Schedule, steps: int, *,
           generator: torch.Generator | None = None, t_min: float = 1e-3, spacing: str = "uniform",
           device: torch.device | str | None = None, dtype: torch.dtype | None = None,
           **options) -> Tensor:
    """Draw x ~ N(0, I) of `shape` at t = 1 with `generator`, build `time_grid` and run SAMPLERS[name].

    `options` go to the sampler (e.g. eta=, denoise=); unknown ones raise TypeError.
    """
    _check_name("sampler", name, SAMPLERS)
    x = torch.randn(shape, generator=generator, device=device, dtype=dtype)
    ts = time_grid(steps, t_min=t_min, spacing=spacing, schedule=schedule)
    return SAMPLERS[name](eps_model, x, ts, schedule, generator=generator, **options)
