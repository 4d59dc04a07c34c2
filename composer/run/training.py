"""Training's pass of the interpreter: one phase of a step.

A phase evaluates the nodes its program computes (composer/graph/plan.py: `Plan.evaluated`,
the reuses left out) into the round's environment, which the phases of one round share. Around
each node it detaches the inputs read through the phase's cut edges, takes fed tensors in place
of drawn ones and counts module forward calls; each loss term is reduced to its mean, logged,
weighted by its weight at this step and summed into the phase's loss.

A module may report scalars of its own forward (a vector quantiser's codebook usage): a block
with a `reports` dict attribute (name -> 0-dim tensor), refilled by its forward, has those values
logged after each of its calls in training as `MODULE.NAME`, beside the loss terms.
"""
from __future__ import annotations

import torch
from torch.nn.parallel import DistributedDataParallel

from composer.graph.interpreter import Context, Interpreter, checked_term


class Training(Interpreter):
    """The interpreter of training phases. `forward_calls` (module -> calls) is counted in place;
    `phase(...)` runs one phase and returns its loss."""

    def __init__(self, ctx: Context, forward_calls: dict):
        super().__init__(ctx)
        self.forward_calls = forward_calls
        self.cuts: tuple = ()
        self.feed: dict = {}
        self.logs: dict = {}
        self.loss = None
        self.programs: dict = {}   # (id(nodes), id(cuts)) -> (nodes, cuts, steps): built once per phase
        self.reporting = {name: inner for name, module in ctx.modules.items()
                          if isinstance(getattr(inner := _inner(module), "reports", None), dict)}

    def phase(self, phase, nodes, env: dict, feed: dict, logs: dict) -> torch.Tensor:
        """Evaluate `nodes` (the phase's computed nodes) into `env`; log each term's mean in
        `logs`; return the weighted sum of the terms (a zero when the phase has none).

        The per-node decisions that do not change from step to step (which inputs are read
        through a cut, which modules a node calls) are taken once per phase (`program`); a step
        is then lookups: the kind's method, the inputs, the feed."""
        self.cuts, self.feed, self.logs, self.loss = phase.cuts, feed, logs, None
        self.run(nodes, env)
        loss, self.loss = self.loss, None   # the phase's autograd graph is not kept here
        return loss if loss is not None else torch.zeros((), device=self.ctx.device)

    def run(self, nodes, env: dict) -> dict:
        """Evaluate `nodes` into `env` under the current phase's cuts and feed: cut inputs
        detached, fed values taken in place of computed ones, module forward calls counted."""
        methods, calls, feed = self.methods, self.forward_calls, self.feed
        for node, name, inputs, cut, uses in self.program(nodes, self.cuts):
            args = [env[i] for i in inputs] if cut is None else [
                _detach(env[i]) if c else env[i] for i, c in zip(inputs, cut)]
            if uses is not None:   # not a term
                if name in feed:
                    env[name] = self.fed(node)
                    continue
                for module in uses:
                    calls[module] += 1
            env[name] = methods[node.kind](node, args)
        return env

    def program(self, nodes, cuts) -> tuple:
        """Per node: (node, name, input names, which inputs are cut (None: none), the modules it
        calls (None for a term: terms are never fed and call no module directly))."""
        key = (id(nodes), id(cuts))
        entry = self.programs.get(key)
        if entry is None or entry[0] is not nodes or entry[1] is not cuts:
            steps = []
            for node in nodes:
                cut = tuple((i, node.name) in cuts for i in node.inputs)
                steps.append((node, node.name, tuple(node.inputs), cut if any(cut) else None,
                              None if node.kind == "term" else tuple(node.uses)))
            entry = self.programs[key] = (nodes, cuts, tuple(steps))
        return entry[2]

    def call(self, node, inputs: list):
        """The module's output; the scalars a reporting module filled in during this call logged."""
        value = super().call(node, inputs)
        if node.target in self.reporting:
            for key, reported in self.reporting[node.target].reports.items():
                self.logs[f"{node.target}.{key}"] = reported.detach()
        return value

    def term(self, node, inputs: list) -> torch.Tensor:
        """The term's mean, logged and added (times its weight at this step) to the phase's loss."""
        value = checked_term(node.op(self.ctx, *inputs), inputs).float().mean()   # never on the meta device
        self.logs[node.name] = value.detach()
        weight = node.weight_at(self.ctx.step)
        term = value if weight == 1 else weight * value   # no op for the usual weight 1
        self.loss = term if self.loss is None else self.loss + term
        return value

    def fn(self, node, inputs: list):
        """The node's Op on its inputs (training is never on the meta device)."""
        return node.op(self.ctx, *inputs)

    def fed(self, node) -> torch.Tensor:
        """A fed tensor for `node`; a fed data input's fields must be fed too."""
        self.ctx.records.pop(node.name, None)
        return self.feed[node.name].to(self.ctx.device)


def _inner(module):
    return module.module if isinstance(module, DistributedDataParallel) else module


def _detach(value):
    if isinstance(value, (tuple, list)):
        return type(value)(v.detach() for v in value)
    return value.detach()
