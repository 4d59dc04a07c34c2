"""Gaussian paths from data (t = 0) to noise (t = 1), and the VP schedules among them.

A `Path` is the forward marginal q(x_t | x_0) = N(gamma_t x_0, sigma_t^2 I), t in [0, 1], together
with what a network trained on it predicts. It is the one model interface of the samplers
(samplers.py): `model(x, t)` returns the path's prediction, and the path reads from it

    eps(x, t, pred)       eps_hat,  the noise in x = gamma_t x0 + sigma_t eps
    x0(x, t, pred)        x0_hat,   the data prediction (Tweedie's estimate; k-diffusion's denoiser)
    velocity(x, t, pred)  dx/dt of the probability-flow ODE

so one sampler serves every path. Two kinds of path:

- The variance-preserving (VP) schedules (`Schedule`, the course notes' VP-SDE section),
  gamma_t^2 + sigma_t^2 = 1, predicting eps; everything is derived from two functions of t,

    beta(t)       = -d log(gamma_t^2) / dt             (the SDE's diffusion rate)
    log_gamma(t)  = log gamma_t = -1/2 int_0^t beta(s) ds

  and the inverse `t_of_log_gamma`, from which `t_of_lambda` follows for the half-log-SNR
  lambda_t = log(gamma_t / sigma_t) used by DPM-Solver (Lu et al. 2022).
- The straight path of flow matching (`RectifiedFlow`), gamma_t = 1 - t, sigma_t = t, predicting
  the velocity v = eps - x0 (Lipman et al. 2023; Liu et al. 2023). An eps-interface cannot serve
  it: at t = 1, gamma = 0 and x0_hat = (x - sigma eps_hat) / gamma is 0/0; from v both
  estimates follow without a division, x0_hat = x - t v and eps_hat = x + (1 - t) v.

All methods are pure; tensors come back in the dtype and device of `t` (of `x` for the readers).
"""
from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from composer.registry import Registry


def as_time(t: Tensor | float) -> Tensor:
    """`t` as a tensor; Python numbers become float64 scalars (no silent float32 rounding)."""
    return t if isinstance(t, Tensor) else torch.tensor(float(t), dtype=torch.float64)


def append_dims(v: Tensor, ndim: int) -> Tensor:
    """Append trailing singleton dims so a per-sample [B] tensor broadcasts over [B, ...]."""
    assert v.dim() <= ndim, f"cannot broadcast shape {tuple(v.shape)} to {ndim} dims"
    return v.reshape(*v.shape, *([1] * (ndim - v.dim())))


class Path(ABC):
    """A Gaussian path x_t = gamma_t x0 + sigma_t eps and the reading of its network's prediction.

    Samplers call the readers with a scalar grid time `t` and `pred = model(x, t)`."""

    @abstractmethod
    def gamma(self, t: Tensor) -> Tensor:
        """gamma_t, the signal scale."""

    @abstractmethod
    def sigma(self, t: Tensor) -> Tensor:
        """sigma_t, the noise scale."""

    @abstractmethod
    def lam(self, t: Tensor) -> Tensor:
        """lambda_t = log(gamma_t / sigma_t), half the log-SNR (Lu et al. 2022, DPM-Solver)."""

    @abstractmethod
    def t_of_lambda(self, lam: Tensor) -> Tensor:
        """Inverse of `lam`."""

    @abstractmethod
    def eps(self, x: Tensor, t: Tensor, pred: Tensor) -> Tensor:
        """eps_hat from the prediction."""

    @abstractmethod
    def x0(self, x: Tensor, t: Tensor, pred: Tensor) -> Tensor:
        """x0_hat from the prediction."""

    @abstractmethod
    def velocity(self, x: Tensor, t: Tensor, pred: Tensor) -> Tensor:
        """dx/dt of the probability-flow ODE, gamma'_t x0_hat + sigma'_t eps_hat."""

    def transition_variance(self, s: Tensor, t: Tensor) -> Tensor:
        """Variance of q(x_t | x_s), s < t, of the Markov process with these marginals:
        sigma_{t|s}^2 = sigma_t^2 - (gamma_t / gamma_s)^2 sigma_s^2 (Kingma et al. 2021, VDM, q(z_t | z_s))."""
        return self.sigma(t) ** 2 - (self.gamma(t) / self.gamma(s)) ** 2 * self.sigma(s) ** 2


class Schedule(Path):
    """Abstract VP schedule: subclasses give beta, log_gamma and its inverse; the rest follows.
    The network predicts eps (other targets are converted first: dsm.as_eps_model)."""

    @abstractmethod
    def beta(self, t: Tensor) -> Tensor:
        """beta(t) = -d log(gamma_t^2)/dt."""

    @abstractmethod
    def log_gamma(self, t: Tensor) -> Tensor:
        """log gamma_t, the log of the signal scale."""

    @abstractmethod
    def t_of_log_gamma(self, log_gamma: Tensor) -> Tensor:
        """The time t at which log gamma_t equals `log_gamma` (inverse of `log_gamma`)."""

    def gamma(self, t: Tensor) -> Tensor:
        """gamma_t, the signal scale."""
        return self.log_gamma(as_time(t)).exp()

    def sigma(self, t: Tensor) -> Tensor:
        """sigma_t = sqrt(1 - gamma_t^2), computed as sqrt(-expm1(2 log gamma_t)) for accuracy."""
        return torch.sqrt(-torch.expm1(2 * self.log_gamma(as_time(t))))

    def lam(self, t: Tensor) -> Tensor:
        """lambda_t = log(gamma_t / sigma_t), half the log-SNR (Lu et al. 2022, DPM-Solver)."""
        log_gamma = self.log_gamma(as_time(t))
        return log_gamma - 0.5 * torch.log(-torch.expm1(2 * log_gamma))

    def t_of_lambda(self, lam: Tensor) -> Tensor:
        """Inverse of `lam`: gamma^2 = sigmoid(2 lambda), so log gamma = 1/2 logsigmoid(2 lambda)."""
        return self.t_of_log_gamma(0.5 * F.logsigmoid(2 * as_time(lam)))

    def eps(self, x: Tensor, t: Tensor, pred: Tensor) -> Tensor:
        """The prediction is eps_hat."""
        return pred

    def x0(self, x: Tensor, t: Tensor, pred: Tensor) -> Tensor:
        """x0_hat = (x - sigma_t eps_hat) / gamma_t."""
        return (x - self.sigma(t) * pred) / self.gamma(t)

    def velocity(self, x: Tensor, t: Tensor, pred: Tensor) -> Tensor:
        """dx/dt = -1/2 beta(t) [x - eps_hat / sigma_t] (Song et al. 2021, eq. 13)."""
        return -0.5 * self.beta(t) * (x - pred / self.sigma(t))

    def transition_variance(self, s: Tensor, t: Tensor) -> Tensor:
        """sigma_{t|s}^2 = 1 - (gamma_t / gamma_s)^2, as gamma^2 + sigma^2 = 1."""
        return 1 - (self.gamma(t) / self.gamma(s)) ** 2


@dataclass(frozen=True)
class VPSDE(Schedule):
    """The VP-SDE of Song et al. 2021 (score_sde, eq. 11) and of the course notes.

    Forward SDE dx = -1/2 beta(t) x dt + sqrt(beta(t)) dW with the linear rate
    beta(t) = beta_min + t (beta_max - beta_min), hence

        int_0^t beta = beta_min t + 1/2 (beta_max - beta_min) t^2,
        gamma_t = exp(-1/2 int_0^t beta),   sigma_t^2 = 1 - exp(-int_0^t beta).

    The defaults are the continuous limit of `DDPMLinear()`: beta(t) ~= T * beta_i.
    """

    beta_min: float = 0.1
    beta_max: float = 20.0

    def beta(self, t: Tensor) -> Tensor:
        return self.beta_min + as_time(t) * (self.beta_max - self.beta_min)

    def integral_beta(self, t: Tensor) -> Tensor:
        """int_0^t beta(s) ds."""
        t = as_time(t)
        return self.beta_min * t + 0.5 * (self.beta_max - self.beta_min) * t**2

    def log_gamma(self, t: Tensor) -> Tensor:
        return -0.5 * self.integral_beta(t)

    def t_of_log_gamma(self, log_gamma: Tensor) -> Tensor:
        # Solve 1/2 d t^2 + beta_min t - L = 0 for t >= 0, L = -2 log gamma; the form
        # 2L / (beta_min + sqrt(beta_min^2 + 2 d L)) avoids cancellation and allows d = 0.
        integral = -2 * as_time(log_gamma)
        slope = self.beta_max - self.beta_min
        return 2 * integral / (self.beta_min + torch.sqrt(self.beta_min**2 + 2 * slope * integral))


@dataclass(frozen=True)
class DDPMLinear(Schedule):
    """Ho et al. 2020 (DDPM, sec. 4): betas linear from beta_start to beta_end over `steps`.

    Discrete view: alpha_bar_i = prod_{j <= i} (1 - beta_j), i = 0 .. T-1 (`alpha_bar`).
    Continuous view (documented choice): piecewise log-linear interpolation of alpha_bar
    on the knots (t = 0, alpha_bar = 1) and (t = (i + 1) / T, alpha_bar_i). Hence
    gamma_{(i+1)/T} = sqrt(alpha_bar_i) exactly, sigma_0 = 0 as for the other schedules,
    and beta(t) = -T log(1 - beta_i) on [i/T, (i+1)/T) -- about T beta_i, which is the
    VPSDE(beta_min = T beta_start, beta_max = T beta_end) limit (Song et al. 2021, sec. 3.4).

    Example: `{recipe: denoising, data: x, model: eps_net, schedule: ddpm_linear}`
    """

    beta_start: float = 1e-4
    beta_end: float = 0.02
    steps: int = 1000

    @property
    def betas(self) -> Tensor:
        """beta_i, i = 0 .. T-1 (float64)."""
        return torch.linspace(self.beta_start, self.beta_end, self.steps, dtype=torch.float64)

    @property
    def alpha_bar(self) -> Tensor:
        """alpha_bar_i = prod_{j <= i} (1 - beta_j), shape [T] (float64)."""
        return torch.cumprod(1 - self.betas, dim=0)

    def _slopes(self, like: Tensor) -> Tensor:
        """log(1 - beta_i): the change of log alpha_bar across segment i."""
        return torch.log1p(-self.betas).to(like)

    def _knots(self, like: Tensor) -> Tensor:
        """log alpha_bar at t = 0, 1/T, ..., 1 (shape [T + 1])."""
        slopes = torch.log1p(-self.betas)
        return torch.cat([slopes.new_zeros(1), torch.cumsum(slopes, 0)]).to(like)

    def _segment(self, t: Tensor) -> tuple[Tensor, Tensor]:
        """Segment index i = floor(t T) clamped to [0, T-1], and the offset t T - i."""
        u = as_time(t) * self.steps
        idx = u.floor().clamp(0, self.steps - 1).long()
        return idx, u - idx

    def beta(self, t: Tensor) -> Tensor:
        t = as_time(t)
        idx, _ = self._segment(t)
        return -self.steps * self._slopes(t)[idx]

    def log_gamma(self, t: Tensor) -> Tensor:
        t = as_time(t)
        idx, frac = self._segment(t)
        return 0.5 * (self._knots(t)[idx] + frac * self._slopes(t)[idx])

    def t_of_log_gamma(self, log_gamma: Tensor) -> Tensor:
        log_alpha_bar = 2 * as_time(log_gamma)
        knots = self._knots(log_alpha_bar)
        # knots decrease; find i with knots[i] >= log_alpha_bar > knots[i + 1]
        idx = torch.searchsorted(-knots, -log_alpha_bar.contiguous(), right=True) - 1
        idx = idx.clamp(0, self.steps - 1)
        frac = (log_alpha_bar - knots[idx]) / self._slopes(log_alpha_bar)[idx]
        return (idx + frac) / self.steps


@dataclass(frozen=True)
class Cosine(Schedule):
    """Nichol & Dhariwal 2021 (Improved DDPM, eq. 17) in continuous time.

    alpha_bar(t) = f(t) / f(0),  f(t) = cos^2(phi(t)),  phi(t) = (t + s) / (1 + s) * pi / 2,
    so beta(t) = -d log alpha_bar / dt = pi / (1 + s) * tan(phi(t)), which diverges at t = 1.

    The clip (documented choice): the paper clips the discrete beta_t at 0.999; here the
    continuous rate is clipped at `beta_clip`. Up to t_clip, where beta reaches beta_clip,
    the schedule is exactly the cosine one; after it log alpha_bar falls linearly with
    slope -beta_clip. With the default 1000, t_clip ~= 0.998 and alpha_bar(1) ~= 1.3e-6,
    so gamma_1 ~= 1.1e-3 and sigma_1 < 1 even in float32, and lambda_1 is finite.

    Example: `{recipe: denoising, data: x, model: eps_net, schedule: cosine}`
    """

    s: float = 0.008
    beta_clip: float = 1000.0

    def __post_init__(self):
        if self.t_clip <= 0:
            raise ValueError(f"Cosine: beta_clip={self.beta_clip} clips the whole schedule; "
                             f"expected beta_clip > {math.pi * math.tan(self._phi0) / (1 + self.s):.4g}")

    @property
    def _phi0(self) -> float:
        return self.s / (1 + self.s) * math.pi / 2

    @property
    def t_clip(self) -> float:
        """The time at which beta(t) = beta_clip: phi = atan(beta_clip (1 + s) / pi)."""
        phi = math.atan(self.beta_clip * (1 + self.s) / math.pi)
        return phi * 2 / math.pi * (1 + self.s) - self.s

    def _phi(self, t: Tensor) -> Tensor:
        return (t + self.s) / (1 + self.s) * (math.pi / 2)

    def _log_alpha_bar_cos(self, t: Tensor) -> Tensor:
        """The unclipped log alpha_bar = 2 log cos(phi(t)) - 2 log cos(phi(0))."""
        return 2 * torch.log(torch.cos(self._phi(t))) - 2 * math.log(math.cos(self._phi0))

    def beta(self, t: Tensor) -> Tensor:
        t = as_time(t)
        t_cos = t.clamp(max=self.t_clip)
        beta_cos = math.pi / (1 + self.s) * torch.tan(self._phi(t_cos))
        return torch.where(t <= self.t_clip, beta_cos, torch.full_like(t, self.beta_clip))

    def log_gamma(self, t: Tensor) -> Tensor:
        t = as_time(t)
        t_cos = t.clamp(max=self.t_clip)
        log_alpha_bar = self._log_alpha_bar_cos(t_cos) - self.beta_clip * (t - t_cos)
        return 0.5 * log_alpha_bar.clamp(max=0.0)  # round-off at t = 0 must not make gamma > 1

    def t_of_log_gamma(self, log_gamma: Tensor) -> Tensor:
        log_alpha_bar = 2 * as_time(log_gamma)
        log_alpha_bar_clip = 2 * self.log_gamma(self.t_clip).item()
        # 1. cosine part: cos(phi) = sqrt(alpha_bar) cos(phi(0))
        cos_phi = torch.exp(0.5 * log_alpha_bar) * math.cos(self._phi0)
        t_cos = torch.arccos(cos_phi.clamp(max=1.0)) * 2 / math.pi * (1 + self.s) - self.s
        # 2. clipped part: log alpha_bar falls linearly after t_clip
        t_lin = self.t_clip + (log_alpha_bar_clip - log_alpha_bar) / self.beta_clip
        return torch.where(log_alpha_bar >= log_alpha_bar_clip, t_cos, t_lin)


@dataclass(frozen=True)
class RectifiedFlow(Path):
    """The straight (rectified-flow) path of flow matching, x_t = (1 - t) x0 + t eps
    (Lipman et al. 2023; Liu et al. 2023): gamma_t = 1 - t, sigma_t = t, lambda_t =
    log((1 - t) / t), -inf at t = 1. The network predicts the velocity v = eps - x0 = dx_t/dt,
    so x0_hat = x - t v, eps_hat = x + (1 - t) v and the probability-flow velocity is v itself.

    Not a VP schedule (gamma^2 + sigma^2 != 1) and not in SCHEDULES: it has no beta(t), and the
    SDE with these marginals, dx = -x / (1 - t) dt + sqrt(2 t / (1 - t)) dW, is singular at t = 1."""

    def gamma(self, t: Tensor) -> Tensor:
        return 1 - as_time(t)

    def sigma(self, t: Tensor) -> Tensor:
        return as_time(t)

    def lam(self, t: Tensor) -> Tensor:
        t = as_time(t)
        return torch.log1p(-t) - torch.log(t)

    def t_of_lambda(self, lam: Tensor) -> Tensor:
        """(1 - t) / t = exp(lambda), so t = sigmoid(-lambda)."""
        return torch.sigmoid(-as_time(lam))

    def eps(self, x: Tensor, t: Tensor, pred: Tensor) -> Tensor:
        return x + (1 - t) * pred

    def x0(self, x: Tensor, t: Tensor, pred: Tensor) -> Tensor:
        return x - t * pred

    def velocity(self, x: Tensor, t: Tensor, pred: Tensor) -> Tensor:
        return pred

    def transition_variance(self, s: Tensor, t: Tensor) -> Tensor:
        """sigma_{t|s}^2 = t^2 - ((1 - t) s / (1 - s))^2, factored so that it stays >= 0 in
        floating point: (t - s)(t + s - 2 t s) / (1 - s)^2."""
        s, t = as_time(s), as_time(t)
        return (t - s) * (t + s - 2 * t * s) / (1 - s) ** 2


SCHEDULES = Registry("schedule", {
    "vp": VPSDE,
    "ddpm_linear": DDPMLinear,
    "cosine": Cosine,
})


def forward_marginal(schedule: Path, x0: Tensor, t: Tensor, eps: Tensor) -> Tensor:
    """x_t = gamma_t x_0 + sigma_t eps, a sample of q(x_t | x_0) (course notes, VP-SDE).

    `t` is a scalar or a [B] tensor broadcast over the trailing dims of `x0`.
    """
    t = as_time(t)
    gamma = append_dims(schedule.gamma(t).to(x0), x0.dim())
    sigma = append_dims(schedule.sigma(t).to(x0), x0.dim())
    return gamma * x0 + sigma * eps
