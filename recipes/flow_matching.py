"""Flow matching with the straight (rectified-flow) path (Lipman et al. 2023; Liu et al. 2023):

    t    ~ U(0, 1)                      noise node
    eps  ~ N(0, I) shaped like x0       noise node
    x_t  = (1 - t) x0 + t eps           fn node
    pred = model(x_t, t, *cond)         call node
    loss = ||pred - (eps - x0)||^2      the velocity of the path, per sample

and generation integrates dx/dt = model(x, t) from t = 1 (noise) to t = 0 with Euler or Heun
steps. A whole generative family in one file: the core knows nothing about it.
"""
from __future__ import annotations

import torch

from composer.errors import did_you_mean
from composer.graph.nodes import Expansion, Generator, Loss, Node, Op, OptionError, Tensor, Tensors

SOLVERS = ("euler", "heun")


class StraightPath(Op):
    """x_t = (1 - t) x0 + t eps, t broadcast over the sample's dims."""

    def __call__(self, ctx, x0, t, eps):
        t = t.reshape((-1,) + (1,) * (x0.dim() - 1)).to(x0.dtype)
        return (1 - t) * x0 + t * eps

    def __repr__(self) -> str:
        return "straight_path"


def velocity_loss(pred: torch.Tensor, x0: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
    """Per-sample mean squared error to the path's velocity eps - x0."""
    return (pred.float() - (eps - x0).float()).pow(2).flatten(1).mean(1)


def flow_matching(name, /, *, data: Tensor, model: str, cond: Tensors | None = None,
                  trains: list | None = None) -> Expansion:
    """Train `model(x_t, t, *cond)` to predict the velocity eps - x0 of the straight path from
    `data` (t = 0) to Gaussian noise (t = 1); only `model` moves unless `trains` says otherwise."""
    conds = () if cond is None else ((cond,) if isinstance(cond, str) else tuple(cond))
    t, eps, x_t, pred = (f"{name}.{s}" for s in ("t", "eps", "x_t", "pred"))
    nodes = (
        Node(t, "noise", "uniform", args={"shape": [], "low": 0.0, "high": 1.0}),
        Node(eps, "noise", "normal", (data,), args={"like": data}),
        Node(x_t, "fn", "straight_path", (data, t, eps), op=StraightPath()),
        Node(pred, "call", model, (x_t, t, *conds)),
        Node(f"{name}.loss", "term", "velocity_mse", (pred, data, eps), op=Loss(velocity_loss, "velocity_mse"),
             trains=tuple(trains) if trains is not None else (model,)),
    )
    return Expansion(nodes, VelocityODE(model, data, conds))


class VelocityODE(Generator):
    """Integrate dx/dt = v(x, t) from noise at t = 1 to t = 0 in `steps` uniform steps, with
    `solver` euler or heun (its second-order trapezoidal correction, not on the last step)."""

    def __init__(self, model: str, data: str, conds: tuple[str, ...]):
        self.model, self.data, self.conds = model, data, conds

    @torch.no_grad()
    def __call__(self, gen, n: int, *, steps: int = 20, solver: str = "heun") -> torch.Tensor:
        net = gen.module(self.model)
        conds = gen.values(list(self.conds), n) if self.conds else []
        x = torch.randn((n,) + tuple(gen.shape(self.data)), generator=gen.generator).to(gen.device)
        ts = torch.linspace(1.0, 0.0, steps + 1, device=gen.device)

        def velocity(x, t):
            return net(x, t.expand(x.shape[0]).to(x.dtype), *conds)

        for t, s in zip(ts[:-1], ts[1:]):
            v = velocity(x, t)
            x_next = x + (s - t) * v
            if solver == "heun" and s > 0:
                x_next = x + (s - t) * 0.5 * (v + velocity(x_next, s))
            x = x_next
        return x

    def check(self, options: dict, modules: set) -> None:
        solver = options.get("solver", "heun")
        if not isinstance(solver, str) or solver not in SOLVERS:
            raise OptionError("solver", f"unknown solver '{solver}'{did_you_mean(str(solver), SOLVERS)}")
        steps = options.get("steps", 20)
        if not isinstance(steps, int) or isinstance(steps, bool) or steps < 1:
            raise OptionError("steps", f"expected a positive number of steps, got {steps!r}")
