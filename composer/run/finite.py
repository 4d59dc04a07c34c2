"""Finiteness: a phase's loss before its backward, its gradients before its optimizer step, and
the whole training state before a checkpoint is written, so that weights are never moved by a
NaN and the last checkpoint is always a good one. A stop names where the first non-finite value
appeared: the phase, its optimizer(s) and the term (for a gradient, found by taking each term's
gradient alone, on the stopping path only)."""
from __future__ import annotations

import math

import torch

from composer.errors import ComposerError


class NonFiniteLoss(ComposerError):
    """A loss term became NaN or infinite; raised before the optimizer step, so weights are intact."""


def check_loss(runner, name: str, phase, loss: torch.Tensor, logs: dict) -> bool:
    """Stop before the optimizer step when the phase's loss is not finite: one host read per
    phase (the ranks agree on it, so none waits in a backward the others skipped); the terms
    are looked at only then, to name the culprits. In fp16, an overflow the phase's scale
    caused skips the step instead (False)."""
    accelerator = runner.accelerator
    if accelerator.num_processes == 1:
        if math.isfinite(loss.item()):   # one read, no tensor op: the step's hot path
            return True
    else:
        finite = torch.isfinite(loss.detach()).float()
        if bool(accelerator.reduce(finite, reduction="sum") / accelerator.num_processes == 1):
            return True
    if runner.precision.overflowed(name):
        return False
    bad = {t: float(logs[t]) for t in phase.terms if t in logs and not torch.isfinite(logs[t])}
    terms = ", ".join(f"term {t}={v}" for t, v in bad.items()) or "the weighted sum (here or on another process)"
    raise NonFiniteLoss(f"non-finite loss in phase {name} ({_optimizers(phase)}) at step {runner.step_count}: "
                        f"{terms}")


def check_gradients(runner, name: str, phase, optimizers, rerun) -> None:
    """Stop before the optimizer step when the phase's gradients are not finite, or so large that
    their square is not (Adam's second moment would become infinite): one host read per phase
    (after DDP's all-reduce the ranks hold the same gradients, so they agree). Skipped in fp16,
    whose scaler skips such a step itself. `rerun()` evaluates the phase again, for the message."""
    if runner.precision.fp16:
        return
    grads = [p.grad for o in optimizers for g in o.param_groups for p in g["params"] if p.grad is not None]
    if not grads:
        return
    norms = torch._foreach_norm(grads)
    if len({n.dtype for n in norms}) > 1:
        norms = [n.float() for n in norms]
    if math.isfinite(torch.linalg.vector_norm(torch.stack(norms)).item()):   # inf once the squares' sum is
        return
    where = f"phase {name} ({_optimizers(phase)}) at step {runner.step_count}"
    raise NonFiniteLoss(f"non-finite gradient in {where}: {_culprit(runner, phase, rerun)}; the loss terms "
                        "were finite, so a value they read is too large (a learning rate too high for the "
                        "module that made it, or unbounded inputs)")


def _culprit(runner, phase, rerun) -> str:
    """The first term whose gradient alone is not finite (squared), with the largest values the
    phase computed: evaluated again from the same inputs and weights, each term differentiated alone."""
    env, nodes = rerun()
    params = [(f"{m}.{k}", p) for m in phase.trains for k, p in runner.raw[m].named_parameters()
              if p.requires_grad]
    blamed = []
    for node in (n for n in nodes if n.kind == "term"):
        weight = node.weight_at(runner.step_count)
        grads = torch.autograd.grad(weight * env[node.name], [p for _, p in params], retain_graph=True,
                                    allow_unused=True)
        norms = {k: float(g.float().norm().square()) for (k, _), g in zip(params, grads) if g is not None}
        worst = [k for k, v in norms.items() if not torch.isfinite(torch.tensor(v))]
        if worst:
            blamed.append(f"term {node.name} (value {float(env[node.name].detach()):.4g}; gradient of {worst[0]})")
    largest = sorted(((float(v.detach().abs().max()), n.name + (f" (from {n.target})" if n.kind == "call" else ""))
                      for n in nodes if n.kind in ("call", "fn") and torch.is_tensor(v := env.get(n.name))
                      and v.numel() and v.is_floating_point()), reverse=True)[:2]
    shown = ", ".join(f"{n} up to {m:.3g}" for m, n in largest)
    return ((", ".join(blamed) if blamed else "the weighted sum of its terms (each term's gradient alone is finite)")
            + (f"; largest values computed: {shown}" if shown else ""))


def _optimizers(phase) -> str:
    return ("optimizer " if len(phase.optimizers) == 1 else "optimizers ") + ", ".join(phase.optimizers)


def check_state(runner) -> None:
    """Weights, EMA copies and optimizer moments are finite; NonFiniteLoss names the first bad
    tensor."""
    step = runner.step_count
    for name, module in list(runner.raw.items()) + [(f"ema.{n}", m) for n, m in runner.ema.items()]:
        for key, value in module.state_dict().items():
            if value.is_floating_point() and not bool(torch.isfinite(value).all()):
                raise NonFiniteLoss(f"module {name}: {key} is not finite at step {step}")
    for opt_name, optimizer in runner.optimizers.items():
        for state in optimizer.state.values():
            for key, value in state.items():
                if torch.is_tensor(value) and value.is_floating_point() and not bool(torch.isfinite(value).all()):
                    raise NonFiniteLoss(f"optimizer {opt_name}: its {key} state is not finite at step {step} (a "
                                        f"gradient too large: a learning rate too high for {opt_name}, or for a "
                                        "module whose output its modules read)")
