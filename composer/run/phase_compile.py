"""Whole-phase compilation, `train.compile: phase`: each phase's forward and loss as one
torch.compile region, its backward through AOTAutograd.

The region is the training interpreter itself, run over the phase's region nodes
(composer/graph/regions.py) inside `torch.compile`: dynamo traces the node loop, the dict look-ups
and the module calls away, and inductor fuses the modules' elementwise work with the loss terms.
There is no generated code: what is compiled is `Region.forward`, one plain Python function.

Kept outside the region, in the eager interpreter: drawing data and noise (the RNG streams are the
eager run's, so compiled and eager training see the same numbers), the double-backward nodes
(gradient penalties; they keep the per-module compile of `train.compile: true`), the optimizer
step, EMA and the other hooks. Term weights with a schedule enter the region as tensors, so a
changing weight does not recompile it; an op that reads `ctx.step` itself recompiles (dynamo
guards on the value), and after torch's recompile limit that region runs eagerly.
"""
from __future__ import annotations

import torch

from composer.graph.interpreter import Interpreter
from composer.graph.regions import Split, split
from composer.run.training import Training, _detach


class PhaseTraining(Training):
    """The training interpreter with each phase's region compiled; `splits` (phase name -> Split)
    says what each phase met so far compiled."""

    def __init__(self, ctx, forward_calls: dict, options: dict):
        super().__init__(ctx, forward_calls)
        self.options = {"dynamic": False, **options}
        self.regions: dict = {}
        self.splits: dict[str, Split] = {}

    def phase(self, phase, nodes, env: dict, feed: dict, logs: dict) -> torch.Tensor:
        region = self._region(phase, nodes, feed)
        if region is None:
            return super().phase(phase, nodes, env, feed, logs)
        self.cuts, self.feed, self.logs, self.loss = region.cuts, feed, logs, None
        self.run(region.split.before, env)
        loss = region(self, env, logs)
        self.loss = loss if self.loss is None else self.loss + loss
        self.run(region.split.after, env)
        loss, self.loss = self.loss, None
        return loss

    def _region(self, phase, nodes, feed: dict):
        key = (phase.name, tuple(n.name for n in nodes), frozenset(feed))
        if key not in self.regions:
            parts = split(nodes, phase.cuts, feed)
            self.splits[phase.name] = parts
            self.regions[key] = Region(parts, phase.cuts, self.options) if parts.region else None
        return self.regions[key]


class Region:
    """One phase's compiled region: `region(interpreter, env, logs)` evaluates its nodes into
    `env`, logs its terms' means and returns the weighted sum of its terms."""

    def __init__(self, parts: Split, cuts, options: dict):
        self.split, self.nodes, self.cuts = parts, parts.region, frozenset(cuts)
        names = {n.name for n in self.nodes}
        self.inputs = tuple(dict.fromkeys(i for n in self.nodes for i in n.inputs if i not in names))
        self.terms = tuple(n for n in self.nodes if n.kind == "term")
        self.uses = [m for n in self.nodes if n.kind != "term" for m in n.uses]
        self.compiled = torch.compile(self.forward, **options)

    def __call__(self, interpreter: Training, env: dict, logs: dict) -> torch.Tensor:
        ctx = interpreter.ctx
        weights = {n.name: _weight(n, ctx) for n in self.terms}
        loss, values = self.compiled(interpreter, {name: env[name] for name in self.inputs}, weights)
        env.update(values)
        for node in self.terms:
            logs[node.name] = values[node.name].detach()
        for module in self.uses:
            interpreter.forward_calls[module] += 1
        return loss

    def forward(self, interpreter: Interpreter, values: dict, weights: dict):
        """The region's nodes from its inputs `values`: (the weighted sum of its terms, every
        node's value). Traced by dynamo; plain Python over the interpreter's methods."""
        env, cuts, loss = dict(values), self.cuts, None
        for node in self.nodes:
            inputs = [_detach(env[i]) if (i, node.name) in cuts else env[i] for i in node.inputs]
            if node.kind == "term":
                value = Interpreter.term(interpreter, node, inputs).float().mean()
                weight = weights[node.name]
                term = value if isinstance(weight, float) and weight == 1 else weight * value
                loss = term if loss is None else loss + term
                env[node.name] = value
            else:
                env[node.name] = interpreter.methods[node.kind](node, inputs)
        return loss, {n.name: env[n.name] for n in self.nodes}


def _weight(node, ctx):
    """A term's weight at this step: a float when it is constant (compiled in), else a 0-dim tensor."""
    weight = node.weight_at(ctx.step)
    return float(weight) if node.schedule is None else torch.tensor(weight, device=ctx.device)
