"""Metrics the graph declares (`eval.metrics`), computed on fresh samples from a Runner."""
from __future__ import annotations

import inspect

import torch

from composer.data.inputs import reference_table
from composer.errors import ComposerError
from composer.run.generate import generate, run_flow


class Evaluation:
    """What a metric that runs the flow itself receives as `runner`: the Runner's attributes
    (`spec`, `graph`, `device`, `unwrapped`, ...) plus generation, so that metrics need not import
    the run layer. `generate(n, **options)` is `composer.run.generate.generate` and
    `run_flow(n, outputs, inputs, generator)` its flow-tensor form, both on this run."""

    def __init__(self, runner):
        self.runner = runner

    def __getattr__(self, name):
        return getattr(self.runner, name)

    def generate(self, n: int, **options):
        return generate(self.runner, n, **options)

    def run_flow(self, n: int, outputs: list, inputs: dict | None, generator) -> list:
        return run_flow(self.runner, n, outputs, inputs, generator)


def evaluate(runner, n: int | None = None) -> dict[str, float]:
    from composer.metrics import METRICS

    spec = runner.spec
    if not spec.eval.metrics:
        return {}
    check_finite_weights(runner)
    n = n or spec.eval.n
    results: dict[str, float] = {}
    for name, options in spec.eval.metrics.items():   # names and options were checked at build
        metric = METRICS[name]
        options = dict(options or {})
        if "runner" in inspect.signature(metric).parameters:
            values = metric(runner=Evaluation(runner), **options)
        else:
            samples = generate(runner, n)
            values = metric(samples, reference_table_of(runner), **options)
        results.update({f"{name}.{k}": v for k, v in values.items()})
    return results


def check_finite_weights(runner) -> None:
    """ComposerError naming the first module (or EMA copy) weight that is NaN or infinite: the
    metrics of such weights mean nothing, so none are reported."""
    copies = [(name, m) for name, m in runner.raw.items()] + [(f"ema.{n}", m) for n, m in runner.ema.items()]
    for name, module in copies:
        for key, value in module.state_dict().items():
            if value.is_floating_point() and not bool(torch.isfinite(value).all()):
                raise ComposerError(f"eval: module {name}: {key} is not finite; metrics of non-finite weights "
                                    "are not computed")


def reference_table_of(runner):
    """The data a runner's samples are scored against: the table of its `eval.reference` input,
    or of its first data input when the graph names none (the reference of every metric that
    takes `(samples, reference)`; also what bench/ scores saved samples against)."""
    spec = runner.spec
    name = spec.eval.reference or next((i.name for i in spec.inputs if i.kind == "data"), None)
    item = spec.input(name)
    if item is None or item.kind != "data":
        raise ComposerError(f"eval.reference: '{name}' is not a data input")
    return reference_table(spec, item)
