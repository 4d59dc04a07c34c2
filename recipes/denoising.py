"""Denoising score matching on a VP diffusion (the course notes; Song et al. 2021; Ho et al. 2020).

Expands into ordinary nodes that `composer plan` shows:

    t    ~ U(t_eps, 1)                   noise node (time: logsnr -- u ~ U(0, 1) noise node,
                                         t = t(lambda(1) + u (lambda(t_eps) - lambda(1))) fn node)
    eps  ~ N(0, I) shaped like x0        noise node
    x_t  = gamma_t x0 + sigma_t eps      fn node (the closed-form forward marginal)
    pred = model(x_t, t, *cond)          call node (cond: optional conditions, dropped to the
                                         null condition with probability cond_drop: fn node)
    loss = lambda_t / sigma_t^2 ||pred - eps||^2  (lambda_t = sigma_t^2 by default: plain MSE)

and returns how to generate, `Denoiser`: a sampler from samplers.py run on the trained model
(its EMA copy when kept); its keyword options are the `sample:` keys this recipe accepts
(sampler, steps, spacing, decode, guidance, t_min, eta, denoise).
"""
from __future__ import annotations

import torch

from composer.errors import did_you_mean
from composer.graph.nodes import Expansion, Generator, Node, Op, OptionError, Tensor, Tensors

from composer.recipes.dsm import TARGETS, WEIGHTINGS, as_eps_model, dsm_loss, estimate
from composer.recipes.samplers import DEFAULT_SPACING, SAMPLERS, SPACINGS, sample
from composer.recipes.schedules import SCHEDULES, forward_marginal
from composer.ranges import Fraction, TimeFraction


def make_schedule(name: str, options: dict | None):
    if name not in SCHEDULES:
        raise ValueError(f"unknown schedule '{name}'{did_you_mean(name, SCHEDULES)}")
    return SCHEDULES[name](**(options or {}))


class ForwardMarginal(Op):
    """x_t = gamma_t x0 + sigma_t eps."""

    def __init__(self, schedule):
        self.schedule = schedule

    def __call__(self, ctx, x0: torch.Tensor, t: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
        return forward_marginal(self.schedule, x0, t, eps).to(x0.dtype)

    def __repr__(self) -> str:
        return f"forward_marginal[{type(self.schedule).__name__}]"


class DSMLoss(Op):
    def __init__(self, schedule, target: str, weighting: str):
        self.schedule, self.target, self.weighting = schedule, target, weighting

    def __call__(self, ctx, pred, x0, eps, t) -> torch.Tensor:
        return dsm_loss(pred.float(), x0=x0.float(), eps=eps.float(), t=t, schedule=self.schedule,
                        target=self.target, weighting=self.weighting)

    def __repr__(self) -> str:
        return f"dsm[{self.target}, {self.weighting}]"


class Estimate(Op):
    """The denoiser's estimate of x0, eps or v read off its prediction, whatever its target."""

    def __init__(self, schedule, target: str, want: str):
        self.schedule, self.target, self.want = schedule, target, want

    def __call__(self, ctx, pred, x_t, t) -> torch.Tensor:
        return estimate(pred, x_t, t, self.schedule, self.target, self.want).to(pred.dtype)

    def __repr__(self) -> str:
        return f"{self.want}_hat[{self.target}]"


def estimates(name: str, op, inputs: tuple[str, ...]) -> list[Node]:
    """`NAME.x0_hat`, `NAME.eps_hat`, `NAME.v_hat`: nodes other objectives and the flow may read
    (a GAN term on x0_hat); computed only where something reads them."""
    return [Node(f"{name}.{want}_hat", "fn", f"{want}_hat", inputs, op=op(want)) for want in TARGETS]


class LogSNRTime(Op):
    """t = t(lambda) for lambda = lambda(1) + u (lambda(t_eps) - lambda(1)), u ~ U(0, 1): training
    times spread evenly over half-log-SNR instead of t."""

    def __init__(self, schedule, t_eps: float):
        self.schedule, self.t_eps = schedule, t_eps

    def __call__(self, ctx, u: torch.Tensor) -> torch.Tensor:
        lam_min, lam_max = self.schedule.lam(1.0), self.schedule.lam(self.t_eps)
        t = self.schedule.t_of_lambda(lam_min + (lam_max - lam_min) * u.double())
        return t.clamp(self.t_eps, 1.0).to(u.dtype)

    def __repr__(self) -> str:
        return f"t_of_logsnr[{type(self.schedule).__name__}, t_eps={self.t_eps:g}]"


TIMES = ("uniform", "logsnr")


def denoising(name, /, *, data: Tensor, model: str, cond: Tensors | None = None, cond_drop: Fraction = 0.0,
              schedule: str = "vp", schedule_options: dict | None = None, target: str = "eps",
              weighting: str = "sigma2", t_eps: float = 1e-3, time: str = "uniform") -> Expansion:
    """Train `model(x_t, t, *cond)` to predict eps (or x0, v) of `data`. Only `model` is moved
    unless the objective's `trains:` says otherwise: the data (e.g. an encoder's latents) is read detached.

    `cond` names the condition tensor(s) passed to the model after t (class labels `x0.y`, an
    image); with `cond_drop` > 0 each sample's condition is replaced by the null condition with
    that probability (-1 for labels, zeros otherwise), so one model learns the conditional and
    the unconditional score, as classifier-free guidance needs (Ho & Salimans 2022).

    `time` is how training times are drawn: "uniform", t ~ U(t_eps, 1) (the notes), or "logsnr",
    uniform in lambda = log(gamma / sigma) between t = 1 and t_eps (a node `NAME.u` ~ U(0, 1)
    mapped to `NAME.t`). With the same per-time loss, "logsnr" is the objective re-weighted by
    the density of lambda (Kingma & Gao 2023): more effort at low noise, where fine detail
    (sharp modes) is decided; uniform t puts under 2% of draws below sigma = 0.05.

    Whatever the target, `NAME.x0_hat`, `NAME.eps_hat` and `NAME.v_hat` are the denoiser's
    estimates read off its prediction (dsm.estimate), for other objectives and the flow to read
    (a diffusion-GAN hybrid judges x0_hat); `NAME.eps` is the noise drawn, `NAME.x_t` the input."""
    from composer.ops.flow import DropCondition

    if target not in TARGETS:
        raise ValueError(f"unknown target '{target}'{did_you_mean(target, TARGETS)}")
    if weighting not in WEIGHTINGS:
        raise ValueError(f"unknown weighting '{weighting}'{did_you_mean(weighting, WEIGHTINGS)}")
    if time not in TIMES:
        raise ValueError(f"unknown time '{time}'{did_you_mean(time, TIMES)}")
    conds = () if cond is None else ((cond,) if isinstance(cond, str) else tuple(cond))
    if cond_drop and not conds:
        raise ValueError("cond_drop needs a condition: set cond")
    sched = make_schedule(schedule, schedule_options)
    t, eps, x_t, pred = (f"{name}.{s}" for s in ("t", "eps", "x_t", "pred"))
    if time == "uniform":
        nodes = [Node(t, "noise", "uniform", args={"shape": [], "low": t_eps, "high": 1.0})]
    else:
        nodes = [Node(f"{name}.u", "noise", "uniform", args={"shape": [], "low": 0.0, "high": 1.0}),
                 Node(t, "fn", "t_of_logsnr", (f"{name}.u",), op=LogSNRTime(sched, t_eps))]
    model_conds = conds
    if cond_drop:
        model_conds = tuple(f"{name}.cond{i if len(conds) > 1 else ''}" for i in range(len(conds)))
        nodes += [Node(m, "fn", "drop_condition", (c,), {"p": cond_drop}, op=DropCondition(p=cond_drop))
                  for m, c in zip(model_conds, conds)]
    nodes += [
        Node(eps, "noise", "normal", (data,), args={"like": data}),
        Node(x_t, "fn", "forward_marginal", (data, t, eps), op=ForwardMarginal(sched)),
        Node(pred, "call", model, (x_t, t, *model_conds)),
        Node(f"{name}.loss", "term", "dsm", (pred, data, eps, t), op=DSMLoss(sched, target, weighting),
             trains=(model,)),
        *estimates(name, lambda want: Estimate(sched, target, want), (pred, x_t, t)),
    ]
    return Expansion(tuple(nodes), Denoiser(sched, model, data, target, conds))


class Denoiser(Generator):
    """Generation from a trained denoising objective: noise at t = 1, a sampler from samplers.py
    over `steps` grid intervals spaced by `spacing` (default: the sampler's own) down to `t_min`,
    then `decode` (a module, or a module's flow method such as `vae.decode`, for latent diffusion). With conditions, their values come from the
    graph (held-out data, or fed: `composer sample --labels`), and `guidance` w > 0 mixes the
    conditional and the unconditional prediction, eps_c + w (eps_c - eps_null) (Ho & Salimans
    2022; w = 0 is plain conditional sampling)."""

    def __init__(self, schedule, model: str, data: str, target: str, conds: tuple[str, ...]):
        self.schedule, self.model, self.data, self.target, self.conds = schedule, model, data, target, conds

    def __call__(self, gen, n: int, *, sampler: str = "heun", steps: int = 20, spacing: str | None = None,
                 decode: str | None = None, guidance: float = 0.0, t_min: TimeFraction = 1e-3, eta: float | None = None,
                 denoise: bool = False) -> torch.Tensor:
        net = gen.module(self.model)
        conds = gen.values(list(self.conds), n) if self.conds else []
        eps_model = self._eps_model(net, conds, guidance)
        options = {"denoise": denoise, **({"eta": eta} if eta is not None else {})}
        x = sample(sampler, eps_model, (n,) + tuple(gen.shape(self.data)), self.schedule, steps,
                   generator=gen.generator, t_min=t_min, device=gen.device, dtype=torch.float32,
                   spacing=spacing or DEFAULT_SPACING.get(sampler, "uniform"), **options)
        if not decode:
            return x
        module, _, method = decode.partition(".")     # `dec`, or a flow method: `vae.decode`
        return getattr(gen.module(module), method)(x) if method else gen.module(module)(x)

    def _eps_model(self, net, conds: list, guidance: float):
        def eps_of(*given):
            return as_eps_model(lambda x, t: net(x, t.to(x.dtype), *given), self.schedule, self.target)

        conditional = eps_of(*conds)
        if not guidance:
            return conditional
        unconditional = eps_of(*(_null(c) for c in conds))

        def guided(x, t):
            eps_c = conditional(x, t)
            return eps_c + guidance * (eps_c - unconditional(x, t))

        return guided

    def check(self, options: dict, modules: set) -> None:
        for key, allowed in (("sampler", SAMPLERS), ("spacing", SPACINGS)):
            value = options.get(key)
            if value is not None and (not isinstance(value, str) or value not in allowed):
                raise OptionError(key, f"unknown {key} '{value}'{did_you_mean(str(value), allowed)}")
        sampler = options.get("sampler", "heun")
        if options.get("eta") is not None and sampler in SAMPLERS and not SAMPLERS.accepts(sampler, "eta"):
            raise OptionError("eta", f"sampler '{sampler}' takes no eta (ddim does; ddpm is ddim with eta = 1)")
        steps = options.get("steps", 20)
        if not isinstance(steps, int) or isinstance(steps, bool) or steps < 1:
            raise OptionError("steps", f"expected a positive number of sampler steps, got {steps!r}")
        decode = options.get("decode")
        if decode is not None and (not isinstance(decode, str) or decode not in modules):
            raise OptionError("decode", f"unknown module '{decode}'{did_you_mean(str(decode), modules)}")
        guidance = options.get("guidance", 0.0)
        if not isinstance(guidance, (int, float)) or isinstance(guidance, bool) or guidance < 0:
            raise OptionError("guidance", f"expected a guidance scale >= 0, got {guidance!r}")
        if guidance and not self.conds:
            raise OptionError("guidance", "guidance needs a conditional model: set the objective's cond "
                                          "(and cond_drop, so it also learns the null condition)")


def _null(cond: torch.Tensor) -> torch.Tensor:
    """The null condition: -1 for integer labels, zeros for float conditions."""
    return torch.full_like(cond, -1) if not cond.is_floating_point() else torch.zeros_like(cond)
