"""Standing statistics of EMA copies (BigGAN's, Brock et al. 2019, sec. 4 and appendix C).

An EMA copy averages a module's weights, but batch norm's running mean and variance are buffers,
not weights: the copy takes the trained module's, measured on activations of *other* weights.
Before an EMA copy generates, its batch-norm statistics are therefore re-estimated on its own
activations: `train.standing_stats` batches (of `train.batch` samples) of the inputs of the
module's first call in the graph, computed as at generation time (fresh noise from a fixed seed,
held-out data, EMA weights upstream), pass through the copy with only its batch norms in training
mode and an equal-weight running average (momentum None), as `torch.optim.swa_utils.update_bn`
does for SWA (which takes single-input modules only; a generator here may take z and y).
The estimate lives in a copy of the EMA module: the EMA module itself, the training trajectory,
the checkpoints and the run's RNG streams stay as they were. It is redone once per training step
at most, the first time the copy is asked for.
"""
from __future__ import annotations

from copy import deepcopy

import torch
from torch.nn.modules.batchnorm import _BatchNorm

from composer.errors import ComposerError

SEED_OFFSET = 8191   # the standing batches' noise: train.seed + this, apart from every other stream


def batch_norms(module: torch.nn.Module) -> list[_BatchNorm]:
    """The batch norms of `module` that keep running statistics."""
    return [m for m in module.modules() if isinstance(m, _BatchNorm) and m.track_running_stats]


def first_call(graph, module: str):
    """The first node (in graph order) that calls `module`, or None."""
    return next((n for n in graph.nodes.values() if n.kind == "call" and n.target == module), None)


@torch.no_grad()
def estimate(runner, name: str, batches: int, into: torch.nn.Module | None = None) -> torch.nn.Module:
    """The EMA copy of module `name` with its batch-norm statistics re-estimated: written into
    `into` (a previous estimate, reused) or a new copy; `runner.ema[name]` itself, which training
    and checkpoints keep, is left as it is."""
    from composer.run.generate import forward

    ema, call = runner.ema[name], first_call(runner.graph, name)
    copy = into if into is not None else deepcopy(ema)
    copy.load_state_dict(ema.state_dict())
    norms = batch_norms(copy)
    if not norms or call is None or batches < 1:
        return copy
    generator = torch.Generator().manual_seed(runner.spec.train.seed + SEED_OFFSET)
    try:
        inputs = [forward(runner, list(call.inputs), runner.spec.train.batch, {}, generator) for _ in range(batches)]
    except Exception as err:
        raise ComposerError(f"train.standing_stats: the inputs of {call.name} = {name}({', '.join(call.inputs)}) "
                            f"could not be computed for the standing statistics of EMA {name} ({err}); "
                            "set train.standing_stats: 0 to keep the trained module's statistics") from err
    momenta, training = [m.momentum for m in norms], copy.training
    copy.eval()
    for norm in norms:
        norm.reset_running_stats()
        norm.momentum = None
        norm.train()
    try:
        for values in inputs:
            copy(*values)
    finally:
        for norm, momentum in zip(norms, momenta):
            norm.momentum = momentum
        copy.train(training)
    return copy
