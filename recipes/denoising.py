"""Denoising score matching on a VP diffusion (the course notes; Song et al. 2021; Ho et al. 2020).

Expands into ordinary nodes that `composer plan` shows:

    t    ~ U(t_eps, 1)                   noise node
    eps  ~ N(0, I) shaped like x0        noise node
    x_t  = gamma_t x0 + sigma_t eps      fn node (the closed-form forward marginal)
    pred = model(x_t, t)                 call node
    loss = lambda_t / sigma_t^2 ||pred - eps||^2  (lambda_t = sigma_t^2 by default: plain MSE)

and registers how to generate: a sampler from samplers.py run on the trained model.
"""
from __future__ import annotations

import torch

from composer.errors import did_you_mean
from composer.nodes import Node

from .dsm import TARGETS, WEIGHTINGS, as_eps_model, dsm_loss
from .samplers import SAMPLERS, sample
from .schedules import SCHEDULES, forward_marginal


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


def denoising(name, /, *, data: str, model: str, schedule: str = "vp", schedule_options: dict | None = None,
              target: str = "eps", weighting: str = "sigma2", t_eps: float = 1e-3, weight: float = 1.0,
              trains: list | None = None) -> list[Node]:
    """Train `model(x_t, t)` to predict eps (or x0, v) of `data`. Only `model` is moved unless
    `trains` says otherwise: the data (e.g. an encoder's latents) is read detached."""
    if target not in TARGETS:
        raise ValueError(f"unknown target '{target}'{did_you_mean(target, TARGETS)}")
    if weighting not in WEIGHTINGS:
        raise ValueError(f"unknown weighting '{weighting}'{did_you_mean(weighting, WEIGHTINGS)}")
    sched = make_schedule(schedule, schedule_options)
    t, eps, x_t, pred = (f"{name}.{s}" for s in ("t", "eps", "x_t", "pred"))
    return [
        Node(t, "noise", "uniform", args={"shape": [], "low": t_eps, "high": 1.0}),
        Node(eps, "noise", "normal", (data,), args={"like": data}),
        Node(x_t, "fn", "forward_marginal", (data, t, eps), op=ForwardMarginal(sched)),
        Node(pred, "call", model, (x_t, t)),
        Node(f"{name}.loss", "term", "dsm", (pred, data, eps, t), op=DSMLoss(sched, target, weighting),
             trains=tuple(trains) if trains is not None else (model,), weight=weight),
    ]


@torch.no_grad()
def generate(runner, objective: str, n: int, *, generator=None, sampler: str | None = None,
             steps: int | None = None, **options) -> torch.Tensor:
    """Samples from a trained denoising objective: noise at t = 1, a sampler down to t_min, then
    `sample.decode` (latent diffusion) when the spec names a decoder."""
    spec, graph = runner.spec, runner.graph
    loss = graph.nodes[f"{objective}.loss"]
    pred = graph.nodes[f"{objective}.pred"]
    data = loss.inputs[1]
    sampler = sampler or spec.sample.sampler
    if sampler not in SAMPLERS:
        raise ValueError(f"unknown sampler '{sampler}'{did_you_mean(sampler, SAMPLERS)}")
    steps = steps or spec.sample.steps
    options.setdefault("spacing", spec.sample.spacing)
    net = runner.unwrapped(pred.target)
    decoder = runner.unwrapped(spec.sample.decode) if spec.sample.decode else None
    eps_model = as_eps_model(lambda x, t: net(x, t.to(x.dtype)), loss.op.schedule, loss.op.target)
    chunks = []
    net.eval()
    try:
        for start in range(0, n, 1000):
            size = min(1000, n - start)
            x = sample(sampler, eps_model, (size,) + tuple(graph.shapes[data]), loss.op.schedule, steps,
                       generator=generator, device=runner.device, dtype=torch.float32, **options)
            chunks.append((decoder(x) if decoder is not None else x).float().cpu())
    finally:
        net.train()
    return torch.cat(chunks)
