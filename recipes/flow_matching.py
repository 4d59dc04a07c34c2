"""Flow matching with the straight (rectified-flow) path (Lipman et al. 2023; Liu et al. 2023):

    t    ~ U(0, 1)                      noise node
    eps  ~ N(0, I) shaped like x0       noise node
    x_t  = (1 - t) x0 + t eps           fn node
    pred = model(x_t, t, *cond)         call node
    loss = ||pred - (eps - x0)||^2      the velocity of the path, per sample
    x0_hat = x_t - t pred, eps_hat = x_t + (1 - t) pred, v_hat = pred   (NAME.x0_hat, ...: fn nodes
                                        other objectives and the flow may read)

and generation runs a shared sampler (samplers.py) from t = 1 (noise) to t = 0 on the straight
path `RectifiedFlow` (schedules.py: gamma_t = 1 - t, sigma_t = t, the network predicts v), which
reads x0_hat = x - t v, eps_hat = x + (1 - t) v and dx/dt = v from the velocity; `sample:` takes
`sampler:` (default heun), `steps:`, `spacing:`, `eta:` as the denoising recipe does. A whole
generative family in one file: the core knows nothing about it.
"""
from __future__ import annotations

import torch

from composer.errors import did_you_mean
from composer.graph.nodes import Expansion, Generator, Loss, Node, Op, OptionError, Tensor, Tensors

from composer.recipes.denoising import estimates
from composer.recipes.samplers import SAMPLERS, VP_ONLY, sample, samplers_for
from composer.recipes.schedules import RectifiedFlow

PATH = RectifiedFlow()
SPACINGS = ("uniform", "quadratic")
"""Time grids from t = 1 to 0; "logsnr" has none here, as lambda(1) = log(0 / 1) = -inf."""


class StraightPath(Op):
    """x_t = (1 - t) x0 + t eps, t broadcast over the sample's dims."""

    def __call__(self, ctx, x0, t, eps):
        t = t.reshape((-1,) + (1,) * (x0.dim() - 1)).to(x0.dtype)
        return (1 - t) * x0 + t * eps

    def __repr__(self) -> str:
        return "straight_path"


class Estimate(Op):
    """x0_hat = x_t - t v_hat, eps_hat = x_t + (1 - t) v_hat, or v_hat itself, from the velocity."""

    def __init__(self, want: str):
        self.want = want

    def __call__(self, ctx, pred, x_t, t):
        t = t.reshape((-1,) + (1,) * (pred.dim() - 1)).to(pred.dtype)
        return {"x0": lambda: x_t - t * pred, "eps": lambda: x_t + (1 - t) * pred, "v": lambda: pred}[self.want]()

    def __repr__(self) -> str:
        return f"{self.want}_hat[velocity]"


def velocity_loss(pred: torch.Tensor, x0: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
    """Per-sample mean squared error to the path's velocity eps - x0."""
    return (pred.float() - (eps - x0).float()).pow(2).flatten(1).mean(1)


def flow_matching(name, /, *, data: Tensor, model: str, cond: Tensors | None = None) -> Expansion:
    """Train `model(x_t, t, *cond)` to predict the velocity eps - x0 of the straight path from
    `data` (t = 0) to Gaussian noise (t = 1); only `model` moves unless the objective's `trains:`
    says otherwise."""
    conds = () if cond is None else ((cond,) if isinstance(cond, str) else tuple(cond))
    t, eps, x_t, pred = (f"{name}.{s}" for s in ("t", "eps", "x_t", "pred"))
    nodes = (
        Node(t, "noise", "uniform", args={"shape": [], "low": 0.0, "high": 1.0}),
        Node(eps, "noise", "normal", (data,), args={"like": data}),
        Node(x_t, "fn", "straight_path", (data, t, eps), op=StraightPath()),
        Node(pred, "call", model, (x_t, t, *conds)),
        Node(f"{name}.loss", "term", "velocity_mse", (pred, data, eps), op=Loss(velocity_loss, "velocity_mse"),
             trains=(model,)),
        *estimates(name, Estimate, (pred, x_t, t)),
    )
    return Expansion(nodes, VelocitySampler(model, data, conds))


class VelocitySampler(Generator):
    """Generation from a trained velocity network: noise at t = 1, then `sampler` (a shared sampler
    of samplers.py, default heun) over `steps` grid intervals spaced by `spacing` down to t = 0 on
    the straight path. heun skips its correction on the last step (into t = 0), as before; euler,
    heun and ddim (eta = 0, which is Euler in t on this path) integrate dx/dt = v; dpmpp_2m steps in
    lambda; ddpm and ddim with eta > 0 take ancestral steps. `solver:` was renamed `sampler:`."""

    def __init__(self, model: str, data: str, conds: tuple[str, ...]):
        self.model, self.data, self.conds = model, data, conds

    def __call__(self, gen, n: int, *, sampler: str = "heun", steps: int = 20, spacing: str = "uniform",
                 eta: float | None = None, solver: None = None) -> torch.Tensor:
        net = gen.module(self.model)
        conds = gen.values(list(self.conds), n) if self.conds else []
        options = {"eta": eta} if eta is not None else {}
        return sample(sampler, lambda x, t: net(x, t, *conds), (n,) + tuple(gen.shape(self.data)), PATH, steps,
                      generator=gen.generator, t_min=0.0, spacing=spacing, device=gen.device,
                      dtype=torch.float32, **options)

    def check(self, options: dict, modules: set) -> None:
        if "solver" in options:
            raise OptionError("solver", f"the key is now 'sampler' (the shared samplers): write "
                                        f"sampler: {options['solver']} instead of solver: {options['solver']}")
        allowed = samplers_for(PATH)
        sampler = options.get("sampler", "heun")
        if sampler in VP_ONLY:
            raise OptionError("sampler", f"sampler '{sampler}' needs a VP schedule (its reverse SDE is singular "
                                         f"at t = 1 on the straight path); flow matching samples with "
                                         f"{', '.join(allowed)}")
        for key, value, choices in (("sampler", sampler, allowed), ("spacing", options.get("spacing"), SPACINGS)):
            if value is not None and (not isinstance(value, str) or value not in choices):
                raise OptionError(key, f"unknown {key} '{value}'{did_you_mean(str(value), choices)}")
        if options.get("eta") is not None and not SAMPLERS.accepts(sampler, "eta"):
            raise OptionError("eta", f"sampler '{sampler}' takes no eta (ddim does; ddpm is ddim with eta = 1)")
        steps = options.get("steps", 20)
        if not isinstance(steps, int) or isinstance(steps, bool) or steps < 1:
            raise OptionError("steps", f"expected a positive number of steps, got {steps!r}")
