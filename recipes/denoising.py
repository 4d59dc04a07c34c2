"""Denoising score matching on a VP diffusion (the course notes; Song et al. 2021; Ho et al. 2020).

Expands into ordinary nodes that `composer plan` shows:

    t    ~ U(t_eps, 1)                   noise node (time: logsnr -- u ~ U(0, 1) noise node,
                                         t = t(lambda(1) + u (lambda(t_eps) - lambda(1))) fn node)
    eps  ~ N(0, I) shaped like x0        noise node
    x_t  = gamma_t x0 + sigma_t eps      fn node (the closed-form forward marginal)
    pred = model(x_t, t)                 call node
    loss = lambda_t / sigma_t^2 ||pred - eps||^2  (lambda_t = sigma_t^2 by default: plain MSE)

and registers how to generate: a sampler from samplers.py run on the trained model (its EMA
copy when kept), with `sample.sampler`, `sample.steps` and `sample.spacing` (default: the
sampler's own, `DEFAULT_SPACING`), then `sample.decode` for latent diffusion.
"""
from __future__ import annotations

from contextlib import contextmanager

import torch

from composer.errors import ComposerError, did_you_mean
from composer.nodes import Node

from .dsm import TARGETS, WEIGHTINGS, as_eps_model, dsm_loss
from .samplers import DEFAULT_SPACING, SAMPLERS, SPACINGS, sample
from .schedules import SCHEDULES, forward_marginal

CHUNK = 1000  # samples per sampler call


def make_schedule(name: str, options: dict | None):
    if name not in SCHEDULES:
        raise ValueError(f"unknown schedule '{name}'{did_you_mean(name, SCHEDULES)}")
    return SCHEDULES[name](**(options or {}))


class ForwardMarginal:
    """x_t = gamma_t x0 + sigma_t eps."""

    def __init__(self, schedule):
        self.schedule = schedule

    def __call__(self, ctx, x0: torch.Tensor, t: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
        if x0.device.type == "meta":
            return torch.empty_like(x0)
        return forward_marginal(self.schedule, x0, t, eps).to(x0.dtype)

    def __repr__(self) -> str:
        return f"forward_marginal[{type(self.schedule).__name__}]"


class DSMLoss:
    def __init__(self, schedule, target: str, weighting: str):
        self.schedule, self.target, self.weighting = schedule, target, weighting

    def __call__(self, pred, x0, eps, t) -> torch.Tensor:
        if pred.device.type == "meta":
            return torch.empty(pred.shape[0], device="meta")
        return dsm_loss(pred.float(), x0=x0.float(), eps=eps.float(), t=t, schedule=self.schedule,
                        target=self.target, weighting=self.weighting)

    def __repr__(self) -> str:
        return f"dsm[{self.target}, {self.weighting}]"


class LogSNRTime:
    """t = t(lambda) for lambda = lambda(1) + u (lambda(t_eps) - lambda(1)), u ~ U(0, 1): training
    times spread evenly over half-log-SNR instead of t."""

    def __init__(self, schedule, t_eps: float):
        self.schedule, self.t_eps = schedule, t_eps

    def __call__(self, ctx, u: torch.Tensor) -> torch.Tensor:
        if u.device.type == "meta":
            return torch.empty_like(u)
        lam_min, lam_max = self.schedule.lam(1.0), self.schedule.lam(self.t_eps)
        t = self.schedule.t_of_lambda(lam_min + (lam_max - lam_min) * u.double())
        return t.clamp(self.t_eps, 1.0).to(u.dtype)

    def __repr__(self) -> str:
        return f"t_of_logsnr[{type(self.schedule).__name__}, t_eps={self.t_eps:g}]"


TIMES = ("uniform", "logsnr")


def denoising(name, /, *, data: str, model: str, schedule: str = "vp", schedule_options: dict | None = None,
              target: str = "eps", weighting: str = "sigma2", t_eps: float = 1e-3, time: str = "uniform",
              weight: float = 1.0, trains: list | None = None) -> list[Node]:
    """Train `model(x_t, t)` to predict eps (or x0, v) of `data`. Only `model` is moved unless
    `trains` says otherwise: the data (e.g. an encoder's latents) is read detached.

    `time` is how training times are drawn: "uniform", t ~ U(t_eps, 1) (the notes), or "logsnr",
    uniform in lambda = log(gamma / sigma) between t = 1 and t_eps (a node `NAME.u` ~ U(0, 1)
    mapped to `NAME.t`). With the same per-time loss, "logsnr" is the objective re-weighted by
    the density of lambda (Kingma & Gao 2023): more effort at low noise, where fine detail
    (sharp modes) is decided; uniform t puts under 2% of draws below sigma = 0.05."""
    if target not in TARGETS:
        raise ValueError(f"unknown target '{target}'{did_you_mean(target, TARGETS)}")
    if weighting not in WEIGHTINGS:
        raise ValueError(f"unknown weighting '{weighting}'{did_you_mean(weighting, WEIGHTINGS)}")
    if time not in TIMES:
        raise ValueError(f"unknown time '{time}'{did_you_mean(time, TIMES)}")
    sched = make_schedule(schedule, schedule_options)
    t, eps, x_t, pred = (f"{name}.{s}" for s in ("t", "eps", "x_t", "pred"))
    if time == "uniform":
        times = [Node(t, "noise", "uniform", args={"shape": [], "low": t_eps, "high": 1.0})]
    else:
        times = [Node(f"{name}.u", "noise", "uniform", args={"shape": [], "low": 0.0, "high": 1.0}),
                 Node(t, "fn", "t_of_logsnr", (f"{name}.u",), op=LogSNRTime(sched, t_eps))]
    return [
        *times,
        Node(eps, "noise", "normal", (data,), args={"like": data}),
        Node(x_t, "fn", "forward_marginal", (data, t, eps), op=ForwardMarginal(sched)),
        Node(pred, "call", model, (x_t, t)),
        Node(f"{name}.loss", "term", "dsm", (pred, data, eps, t), op=DSMLoss(sched, target, weighting),
             trains=tuple(trains) if trains is not None else (model,), weight=weight),
    ]


SAMPLE_CHOICES = {"sampler": SAMPLERS, "spacing": SPACINGS}
"""The values `sample.sampler` and `sample.spacing` may take (checked when the graph is built)."""


def sample_options(spec, sampler: str | None = None, steps: int | None = None,
                   spacing: str | None = None) -> tuple[str, int, str]:
    """(sampler, steps, spacing): the arguments given, else the spec's `sample` section, else
    the sampler's default spacing (`DEFAULT_SPACING`)."""
    sampler = sampler or spec.sample.sampler
    steps = steps or spec.sample.steps
    spacing = spacing or spec.sample.spacing or DEFAULT_SPACING.get(sampler, "uniform")
    for key, value in (("sampler", sampler), ("spacing", spacing)):
        if value not in SAMPLE_CHOICES[key]:
            raise ComposerError(f"unknown {key} '{value}'{did_you_mean(str(value), SAMPLE_CHOICES[key])}")
    if not isinstance(steps, int) or steps < 1:
        raise ComposerError(f"sampler steps must be a positive integer, got {steps!r}")
    return sampler, steps, spacing


@contextmanager
def eval_mode(*modules):
    """Modules in eval mode (dropout off, norm statistics fixed) for the block, then as before."""
    modules = [m for m in modules if m is not None]
    before = [m.training for m in modules]
    try:
        yield [m.eval() for m in modules]
    finally:
        for module, training in zip(modules, before):
            module.train(training)


@torch.no_grad()
def generate(runner, objective: str, n: int, *, generator=None, sampler: str | None = None,
             steps: int | None = None, spacing: str | None = None, **options) -> torch.Tensor:
    """Samples from a trained denoising objective: noise at t = 1, `sampler` (default
    `sample.sampler`) over `steps` grid intervals spaced by `spacing` down to t_min, then
    `sample.decode` (latent diffusion) when the spec names a decoder. `options` go to the
    sampler (`eta=`, `denoise=`, `t_min=`). EMA weights where kept, in eval mode."""
    spec, graph = runner.spec, runner.graph
    loss = graph.nodes[f"{objective}.loss"]
    pred = graph.nodes[f"{objective}.pred"]
    shape = tuple(graph.shapes[loss.inputs[1]])
    sampler, steps, spacing = sample_options(spec, sampler, steps, spacing)
    net = runner.unwrapped(pred.target)
    decoder = runner.unwrapped(spec.sample.decode) if spec.sample.decode else None
    eps_model = as_eps_model(lambda x, t: net(x, t.to(x.dtype)), loss.op.schedule, loss.op.target)
    chunks = []
    with eval_mode(net, decoder):
        for start in range(0, n, CHUNK):
            size = min(CHUNK, n - start)
            x = sample(sampler, eps_model, (size,) + shape, loss.op.schedule, steps, generator=generator,
                       spacing=spacing, device=runner.device, dtype=torch.float32, **options)
            chunks.append((decoder(x) if decoder is not None else x).float().cpu())
    return torch.cat(chunks)
