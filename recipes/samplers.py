"""Samplers for every Gaussian path: VP diffusion (an eps-network) and flow matching (a velocity network).

Every sampler is a plain function in the k-diffusion style,

    sample_xxx(model, x, ts, schedule, *, generator=None, callback=None, **options) -> Tensor

`schedule` is a `Path` (schedules.py): the forward marginal x_t = gamma_t x0 + sigma_t eps and
the reading of the network's prediction. `model(x, t)` returns that prediction for a batch (t is
a [B] tensor in x's dtype): eps for the VP schedules, the velocity for `RectifiedFlow`. The
samplers never look at the prediction itself; they ask the path for eps_hat (`schedule.eps`),
x0_hat (`schedule.x0`) or the probability-flow velocity dx/dt (`schedule.velocity`), so a
recipe brings its path and a model adapter, and every sampler serves it. `x` is the noise at
ts[0]; `ts` is a decreasing time grid (see `time_grid`), for VP ending at t_min > 0.
Samplers return x at ts[-1] (for VP it still carries noise of scale sigma(t_min), about 0.01
for the VP default), or with `denoise=True` the Tweedie estimate x0_hat at ts[-1], for one
extra network evaluation (NFE). `callback`, when given, is called once per step as in
k-diffusion with {"i": step, "t": ts[i], "x": x at ts[i], "denoised": x0_hat there}.
There is no hidden state: the whole trajectory is a function of the arguments.

A note on signs. With the score s = -eps / sigma (course notes, "Parameterize") the
reverse SDE of Anderson 1982 / Song et al. 2021 (eq. 6) is
dx = [-1/2 beta x - beta s] dt + sqrt(beta) dW, dt < 0. Written with the positive
backward step dtau = -dt this is dx = [1/2 beta x - beta eps / sigma] dtau + sqrt(beta) dW:
the notes' "generation process" -[1/2 beta x - beta eps/sigma] dt read with dt < 0.
The probability-flow ODE (Song et al. 2021, eq. 13) is dx/dt = -1/2 beta [x - eps / sigma];
for any path it is dx/dt = gamma'_t x0_hat + sigma'_t eps_hat, on the straight path v itself.
"""
from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor

from composer.errors import did_you_mean
from composer.registry import Registry

from composer.recipes.schedules import Path, Schedule, as_time

Model = Callable[[Tensor, Tensor], Tensor]
Callback = Callable[[dict], None]


def _check_name(kind: str, name: str, choices) -> None:
    """ValueError naming the bad value, the allowed set and the nearest valid name."""
    if name not in choices:
        hint = did_you_mean(name, choices)
        hint = hint if "did you mean" in hint else ""
        raise ValueError(f"unknown {kind} '{name}'; allowed: {', '.join(sorted(choices))}{hint}")


def _predict(model: Model, x: Tensor, t: Tensor) -> Tensor:
    """model(x, t) with the scalar time t broadcast to a [B] tensor in x's dtype."""
    return model(x, t.to(device=x.device, dtype=x.dtype).expand(x.shape[0]))


def _randn(shape, generator: torch.Generator | None, device, dtype) -> Tensor:
    """N(0, I) drawn where `generator` lives (the CPU for composer's), then moved to `device`."""
    where = generator.device if generator is not None else device
    return torch.randn(shape, generator=generator, device=where, dtype=dtype).to(device)


def _noise(x: Tensor, generator: torch.Generator | None) -> Tensor:
    return _randn(x.shape, generator, x.device, x.dtype)


def _report(callback: Callback | None, i: int, x: Tensor, t: Tensor, schedule: Path, pred: Tensor) -> None:
    """k-diffusion's per-step callback, with x at ts[i] and its x0_hat (no extra NFE)."""
    if callback is not None:
        callback({"i": i, "t": t, "x": x, "denoised": schedule.x0(x, t, pred)})


def _finish(model: Model, x: Tensor, t: Tensor, schedule: Path, denoise: bool) -> Tensor:
    """x at the last grid point, or its x0_hat estimate (one extra NFE) when `denoise`."""
    return schedule.x0(x, t, _predict(model, x, t)) if denoise else x


def ode_drift(model: Model, x: Tensor, t: Tensor, schedule: Path) -> Tensor:
    """Probability-flow ODE velocity dx/dt at (x, t): for VP -1/2 beta(t) [x - eps_hat / sigma_t]."""
    return schedule.velocity(x, t, _predict(model, x, t))


@torch.no_grad()
def sample_euler_maruyama(model: Model, x: Tensor, ts: Tensor, schedule: Schedule, *,
                          generator: torch.Generator | None = None, callback: Callback | None = None,
                          denoise: bool = False) -> Tensor:
    """Reverse VP-SDE by Euler-Maruyama (Song et al. 2021, sec. 3-4; the notes' generation process).

    Per step, with dtau = t - t_next > 0 and z ~ N(0, I) from `generator`:
        x <- x + [1/2 beta(t) x - beta(t) eps_hat / sigma_t] dtau + sqrt(beta(t) dtau) z.
    Noise is added on every step, the last one included, so the output follows the
    marginal at ts[-1]. NFE = steps (+1 with `denoise`). VP schedules only (see VP_ONLY).
    """
    if not isinstance(schedule, Schedule):
        raise ValueError(f"sample_euler_maruyama: the reverse VP-SDE needs a VP schedule with beta(t), got "
                         f"{type(schedule).__name__}; the samplers for any path are {', '.join(ANY_PATH)}")
    for i, (t, t_next) in enumerate(zip(ts[:-1], ts[1:])):
        dtau, beta = t - t_next, schedule.beta(t)
        pred = _predict(model, x, t)
        _report(callback, i, x, t, schedule, pred)
        eps_hat = schedule.eps(x, t, pred)
        # 1. drift of the reverse SDE, in backward time
        x = x + (0.5 * beta * x - beta * eps_hat / schedule.sigma(t)) * dtau
        # 2. diffusion
        x = x + torch.sqrt(beta * dtau) * _noise(x, generator)
    return _finish(model, x, ts[-1], schedule, denoise)


@torch.no_grad()
def sample_ode_euler(model: Model, x: Tensor, ts: Tensor, schedule: Path, *,
                     generator: torch.Generator | None = None, callback: Callback | None = None,
                     denoise: bool = False) -> Tensor:
    """Probability-flow ODE (Song et al. 2021, eq. 13) by explicit Euler in t.

    x <- x + (t_next - t) dx/dt, dx/dt = `schedule.velocity` (VP: -1/2 beta(t) [x - eps_hat / sigma_t];
    flow matching: v). Deterministic; `generator` is unused. NFE = steps (+1 with `denoise`).
    """
    for i, (t, t_next) in enumerate(zip(ts[:-1], ts[1:])):
        pred = _predict(model, x, t)
        _report(callback, i, x, t, schedule, pred)
        x = x + (t_next - t) * schedule.velocity(x, t, pred)
    return _finish(model, x, ts[-1], schedule, denoise)


@torch.no_grad()
def sample_heun(model: Model, x: Tensor, ts: Tensor, schedule: Path, *,
                generator: torch.Generator | None = None, callback: Callback | None = None,
                denoise: bool = False) -> Tensor:
    """Probability-flow ODE by Heun's second-order method (Karras et al. 2022, Algorithm 1).

    Per step: 1. Euler predictor with d = dx/dt at t; 2. trapezoidal corrector with the
    average of d and d' = dx/dt at (x_euler, t_next). A step ending where sigma = 0 (t_next = 0),
    where eps / sigma is undefined (and Karras et al. take no correction), stays Euler. NFE =
    2 steps with t_min > 0 (2 steps - 1 when the grid ends at 0), +1 with `denoise`.
    Deterministic; `generator` is unused.
    """
    for i, (t, t_next) in enumerate(zip(ts[:-1], ts[1:])):
        h = t_next - t
        pred = _predict(model, x, t)
        _report(callback, i, x, t, schedule, pred)
        # 1. Euler predictor
        d = schedule.velocity(x, t, pred)
        x_euler = x + h * d
        if schedule.sigma(t_next) == 0:
            x = x_euler
            continue
        # 2. trapezoidal corrector
        d_next = ode_drift(model, x_euler, t_next, schedule)
        x = x + h * 0.5 * (d + d_next)
    return _finish(model, x, ts[-1], schedule, denoise)


@torch.no_grad()
def sample_ddim(model: Model, x: Tensor, ts: Tensor, schedule: Path, *,
                generator: torch.Generator | None = None, callback: Callback | None = None,
                eta: float = 0.0, denoise: bool = False) -> Tensor:
    """DDIM (Song, Meng & Ermon 2021, eq. 12 and 16) with continuous gamma_t, sigma_t.

    From t to s < t: x_s = gamma_s x0_hat + sqrt(sigma_s^2 - c^2) eps_hat + c z with
    c = eta (sigma_s / sigma_t) sigma_{t|s}, sigma_{t|s}^2 the variance of q(x_t | x_s)
    (`transition_variance`; VP: 1 - gamma_t^2 / gamma_s^2). eta = 0 is the deterministic DDIM
    (a first-order solver of the probability-flow ODE in lambda; on the straight path exactly
    Euler in t, as gamma_s x0_hat + sigma_s eps_hat = x + (s - t) v); eta = 1 is DDPM's
    ancestral posterior q(x_s | x_t, x0_hat). NFE = steps (+1 with `denoise`).
    """
    if not 0.0 <= eta <= 1.0:
        raise ValueError(f"sample_ddim: expected 0 <= eta <= 1, got eta={eta}")
    for i, (t, s) in enumerate(zip(ts[:-1], ts[1:])):
        pred = _predict(model, x, t)
        _report(callback, i, x, t, schedule, pred)
        # 1. predict x_0 and eps
        x0_hat, eps_hat = schedule.x0(x, t, pred), schedule.eps(x, t, pred)
        # 2. noise scale of the step
        sigma_s = schedule.sigma(s)
        c = eta * sigma_s / schedule.sigma(t) * torch.sqrt(schedule.transition_variance(s, t))
        # 3. step to s: x_0 part, direction pointing to x_t, fresh noise
        x = schedule.gamma(s) * x0_hat + torch.sqrt(sigma_s**2 - c**2) * eps_hat
        if eta > 0:
            x = x + c * _noise(x, generator)
    return _finish(model, x, ts[-1], schedule, denoise)


def sample_ddpm(model: Model, x: Tensor, ts: Tensor, schedule: Path, *,
                generator: torch.Generator | None = None, callback: Callback | None = None,
                denoise: bool = False) -> Tensor:
    """DDPM's ancestral sampling (Ho et al. 2020, Algorithm 2) on any time grid: `sample_ddim` with
    eta = 1, each step a draw from the posterior q(x_s | x_t, x0_hat). Its fresh noise corrects
    errors of the learned eps-network that a deterministic ODE solver carries to the end (Karras
    et al. 2022, sec. 4); it needs more steps than the ODE solvers. NFE = steps (+1 with `denoise`)."""
    return sample_ddim(model, x, ts, schedule, generator=generator, callback=callback, eta=1.0, denoise=denoise)


@torch.no_grad()
def sample_dpmpp_2m(model: Model, x: Tensor, ts: Tensor, schedule: Path, *,
                    generator: torch.Generator | None = None, callback: Callback | None = None,
                    denoise: bool = False) -> Tensor:
    """DPM-Solver++(2M) (Lu et al. 2022, "DPM-Solver++", Algorithm 2), multistep in lambda.

    With lambda = log(gamma / sigma), h_i = lambda_{i+1} - lambda_i, D_i = x0_hat at t_i:
        x_{i+1} = (sigma_{i+1} / sigma_i) x_i - gamma_{i+1} (exp(-h_i) - 1) D,
    D = D_0 on the first step (first order, = DDIM), afterwards the second-order
    extrapolation D = (1 + 1/(2 r)) D_i - 1/(2 r) D_{i-1}, r = h_{i-1} / h_i. The update
    is exact for any Gaussian path with x0_hat constant over the step (Lu et al. derive it
    for general gamma_t, sigma_t). A step ending at sigma = 0 (t = 0) has h = inf and r = 0, so
    it is taken first order, x = gamma_s D_i (the `lower_order_final` step of the authors' code
    and of k-diffusion's `sample_dpmpp_2m`). A step from lambda = -inf (the straight path at
    t = 1) has h = inf: it is DDIM's step, and the next one has r = inf, first order too.
    Deterministic; `generator` is unused. NFE = steps (+1 with `denoise`).
    """
    x0_prev, h_prev = None, None
    for i, (t, s) in enumerate(zip(ts[:-1], ts[1:])):
        pred = _predict(model, x, t)
        _report(callback, i, x, t, schedule, pred)
        # 1. predict x_0
        x0_hat = schedule.x0(x, t, pred)
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
    return _finish(model, x, ts[-1], schedule, denoise)


SAMPLERS = Registry("sampler", {
    "euler_maruyama": sample_euler_maruyama,
    "euler": sample_ode_euler,
    "heun": sample_heun,
    "ddim": sample_ddim,
    "ddpm": sample_ddpm,
    "dpmpp_2m": sample_dpmpp_2m,
}, supplied=("model", "x", "ts", "schedule", "generator", "callback"))

VP_ONLY = ("euler_maruyama",)
"""Samplers whose math needs a VP `Schedule` (its beta(t)), not only a `Path`: Euler-Maruyama steps
the reverse VP-SDE. The SDE with the straight path's marginals has drift -x / (1 - t) and
diffusion rate 2 t / (1 - t), both infinite at t = 1 where sampling starts, so flow matching has
no SDE sampler here; DDPM's ancestral steps (`ddpm`, `ddim` with eta > 0) are its stochastic ones."""

ANY_PATH = tuple(name for name in SAMPLERS if name not in VP_ONLY)
"""The built-in samplers that serve every `Path`, flow matching's `RectifiedFlow` included."""


def samplers_for(schedule: Path) -> list[str]:
    """Names in SAMPLERS that can run on `schedule`: all of them for a VP schedule, else all but VP_ONLY
    (a plugin's sampler is assumed to read the model through the path)."""
    return [name for name in SAMPLERS if isinstance(schedule, Schedule) or name not in VP_ONLY]


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
              schedule: Path | None = None) -> Tensor:
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
        if not (torch.isfinite(lam_max) and torch.isfinite(lam_min)):
            raise ValueError(f"time_grid: spacing 'logsnr' needs a finite lambda at t_max and t_min, got "
                             f"lambda({t_max:g}) = {lam_min.item():g} and lambda({t_min:g}) = {lam_max.item():g} "
                             f"for {type(schedule).__name__}")
        ts = schedule.t_of_lambda(lam_min + (lam_max - lam_min) * (1 - u))
    ts[0], ts[-1] = t_max, t_min  # exact end points despite round-off
    return ts


def sample(name: str, model: Model, shape: tuple[int, ...], schedule: Path, steps: int, *,
           generator: torch.Generator | None = None, t_min: float = 1e-3, spacing: str = "uniform",
           device: torch.device | str | None = None, dtype: torch.dtype | None = None,
           **options) -> Tensor:
    """Draw x ~ N(0, I) of `shape` at t = 1 with `generator`, build `time_grid` and run SAMPLERS[name].

    `options` go to the sampler (e.g. eta=, denoise=, callback=); unknown ones raise TypeError.
    """
    _check_name("sampler", name, SAMPLERS)
    x = _randn(shape, generator, device, dtype)
    ts = time_grid(steps, t_min=t_min, spacing=spacing, schedule=schedule)
    return SAMPLERS[name](model, x, ts, schedule, generator=generator, **options)
