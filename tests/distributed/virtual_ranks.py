"""One process that sees exactly what `world` DDP ranks see together, to compare against them.

A rank r of a run draws its data from its own streams and its noise, interpolation weights
(wgan_gp) and pool coin flips from its own generator, seeded as in `Runner.__init__`
(composer/run/runner.py): noise generator seed*1000+17+r, data stream k seed*1000+31*(k+1)+r.
Here a one-process Runner with the global batch (world x B) is given:
  - data streams that concatenate the ranks' streams (rows [r*B:(r+1)*B] are rank r's batch);
  - noise nodes drawn per virtual rank from that rank's generator, B rows each;
  - fn ops (penalties, image pools, forward marginals) evaluated per virtual rank on its rows,
    with its generator and its own op state (each rank keeps its own image pool); a penalty that
    differentiates a module call made for it (composer/graph/sharing.py: R1 on the loss term's
    D(real)) is evaluated on the whole batch, as that call is: its rows are the ranks' rows.
Module calls and loss terms see the whole global batch: DDP averages the ranks' gradients of
their per-rank means, which is the gradient of the mean over the global batch. Exact only for
modules without cross-sample statistics (BatchNorm normalises per rank under DDP).
"""
from __future__ import annotations

import contextlib
import dataclasses

import torch

from composer.graph.interpreter import Interpreter
from composer.graph.sharing import FromOutput
from composer.run.feeds import BatchStream


class ConcatStream:
    """The ranks' data streams side by side: one batch = rank 0's rows, then rank 1's, ..."""

    def __init__(self, streams):
        self.streams = streams

    def next(self) -> dict[str, torch.Tensor]:
        parts = [s.next() for s in self.streams]
        return {k: torch.cat([p[k] for p in parts]) for k in parts[0]}


@contextlib.contextmanager
def virtual_ranks(runner, world: int):
    """Within the block, `runner.step()` computes what `world` ranks with batch/world each compute."""
    seed = runner.spec.train.seed
    generators = [torch.Generator().manual_seed(seed * 1000 + 17 + r) for r in range(world)]
    states: list[dict] = [{} for _ in range(world)]
    for k, item in enumerate(runner.spec.inputs):
        if item.kind == "data":
            whole = runner.streams[item.name]
            runner.streams[item.name] = ConcatStream([
                BatchStream(whole.table, whole.batch // world, seed * 1000 + 31 * (k + 1) + r) for r in range(world)])

    interpreter = runner.interpreter   # generation and standing statistics keep their own

    def per_rank(kind, original):
        def evaluate(node, inputs):
            if isinstance(node.op, FromOutput) or not all(isinstance(x, torch.Tensor) for x in inputs):
                return original(node, inputs)
            chunks = [x.chunk(world) for x in inputs]
            ranks = [Interpreter(_rank_context(interpreter.ctx, generators[r], states[r], world)) for r in range(world)]
            return _cat([getattr(rank, kind)(node, [c[r] for c in chunks]) for r, rank in enumerate(ranks)])
        return evaluate

    saved = {kind: interpreter.methods[kind] for kind in ("noise", "fn")}
    try:
        interpreter.methods.update({kind: per_rank(kind, method) for kind, method in saved.items()})
        yield states
    finally:
        interpreter.methods.update(saved)


def _rank_context(ctx, generator, state, world):
    return dataclasses.replace(ctx, generator=generator, state=state, batch=lambda name: ctx.batch(name) // world)


def _cat(outputs):
    if isinstance(outputs[0], (tuple, list)):
        return type(outputs[0])(torch.cat(parts) for parts in zip(*outputs))
    return torch.cat(outputs)
