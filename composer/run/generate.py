"""Generation from a trained Runner: a forward pass of the flow that produces `sample.output`
(GANs, translation) or the objective's sampler (diffusion). EMA weights when there are any.

`sample.output` may name several flow tensors of one shape, e.g. `[real_A, fake_B, rec_A]`:
they are computed from the same inputs and stacked as `[n, k, ...]`, and a sample grid shows one
sample per row: input | translation | reconstruction in its columns."""
from __future__ import annotations

from contextlib import contextmanager

import networkx as nx
import torch

from composer.data.lazy import LazyTable
from composer.errors import ComposerError, did_you_mean
from composer.data.inputs import held_out_table
from composer.graph.interpreter import Context, Interpreter

CHUNK = 500          # samples per flow evaluation
RECIPE_CHUNK = 1000  # samples per call of a recipe's generator (a sampler run)


class Generation:
    """What a recipe's generator may use (composer.graph.nodes.Generator): modules for generation (EMA
    copies where kept, in eval mode), the graph's per-sample shapes, and the values of graph nodes
    for `n` samples through the interpreter (held-out data, fresh noise, fed tensors)."""

    def __init__(self, runner, generator: torch.Generator, feed: dict | None = None):
        self.runner, self.graph, self.generator = runner, runner.graph, generator
        self.feed = dict(feed or {})
        self.device = runner.device

    def module(self, name: str) -> torch.nn.Module:
        return self.runner.unwrapped(name)

    def shape(self, name: str):
        return self.graph.shapes[name]

    def values(self, names: list, n: int) -> list:
        return forward(self.runner, list(names), n, {k: v[:n] for k, v in self.feed.items()}, self.generator)


@torch.no_grad()
def generate(runner, n: int, *, output: str | list | None = None, inputs: dict | None = None,
             generator: torch.Generator | None = None, **options) -> torch.Tensor:
    """`n` samples in data space, `[n, ...]` on the CPU; `[n, k, ...]` for a list of k outputs.
    With `sample.objective` (and no `output`), the objective's recipe generates, with the spec's
    `sample:` options updated by `options`; `inputs` feeds graph tensors (e.g. class labels)."""
    spec = runner.spec
    for name in sorted(set(inputs or {}) - set(runner.graph.nodes)):
        raise ComposerError(f"cannot feed '{name}': the graph has no tensor of that name"
                            f"{did_you_mean(name, runner.graph.nodes)}")
    generator = generator or torch.Generator().manual_seed(spec.train.seed + 12345)
    objective = spec.sample.objective
    if objective and output is None:
        return _from_recipe(runner, objective, n, inputs, generator, options)
    if options:
        raise ComposerError(f"sampler options {sorted(options)} apply to a generating objective; "
                            "this graph samples flow tensors (sample.output)")
    output = output or spec.sample.output
    if not output:
        raise ComposerError("sample.output: no flow tensor to generate (set sample.output or --node)")
    if isinstance(output, str):
        return run_flow(runner, n, [output], inputs, generator)[0]
    names = computable(runner.graph, list(output), set(inputs or {}))
    values = run_flow(runner, n, names, inputs, generator)
    if len({tuple(v.shape[1:]) for v in values}) > 1:
        shapes = ", ".join(f"{k} {list(v.shape[1:])}" for k, v in zip(names, values))
        raise ComposerError(f"sample.output: tensors shown side by side need one shape, got {shapes}")
    return torch.stack(values, dim=1)


def _from_recipe(runner, objective: str, n: int, inputs, generator, options) -> torch.Tensor:
    from composer.graph.checks import callables
    from composer.graph.lower import bind_args
    from composer.graph.nodes import OptionError

    make = runner.graph.generators[objective]
    chosen = {**runner.spec.sample.options, **options}
    try:
        bind_args(runner.spec, make.__call__, chosen, ("sample",), "the generator", supplied=("gen", "n"))
        make.check(chosen, callables(runner.spec))
    except OptionError as err:
        raise ComposerError(f"sample.{err.key}: {err.message}") from None
    chunks = []
    for size, feed in fed_chunks(n, inputs, RECIPE_CHUNK):
        with eval_mode(*(runner.unwrapped(m) for m in runner.graph.param_counts)):
            chunks.append(make(Generation(runner, generator, feed), size, **chosen).float().cpu())
    return torch.cat(chunks)


def fed_chunks(n: int, inputs: dict | None, chunk: int):
    """(size, feed) per chunk of `n` samples (fewer if the fed `inputs` are shorter)."""
    given = dict(inputs or {})
    if given:
        n = min(n, *(len(v) for v in given.values()))
    for start in range(0, n, chunk):
        size = min(chunk, n - start)
        yield size, {k: v[start:start + size] for k, v in given.items()}


def computable(graph, names: list, given: set) -> list:
    """With inputs fed (`composer sample --input real_A=...`), the listed outputs that need no
    other data input; all of them when nothing is fed."""
    if not given:
        return names
    kept = [o for o in names if data_needed(graph, o) <= given]
    return kept or names


def data_needed(graph, output: str) -> set:
    """The data inputs a node is computed from (`Graph.data_inputs`)."""
    return set(graph.data_inputs(output))


def run_flow(runner, n: int, outputs: list, inputs: dict | None, generator) -> list:
    """The flow tensors `outputs` for `n` samples (fewer if the fed `inputs` are shorter), each
    `[n, ...]` float on the CPU, computed in chunks from the same inputs and noise."""
    for name in outputs:
        if name not in runner.graph.nodes:
            raise ComposerError(f"sample.output: '{name}' is not a tensor of the graph")
    chunks = [[v.float().cpu() for v in forward(runner, outputs, size, feed, generator)]
              for size, feed in fed_chunks(n, inputs, CHUNK)]
    return [torch.cat(parts) for parts in zip(*chunks)]


@contextmanager
def eval_mode(*modules):
    """Modules in eval mode (dropout off, norm statistics fixed) for the block, then as before."""
    modules = [m for m in modules if m is not None]
    before = [m.training for m in modules]
    try:
        yield [m.eval() for m in modules]
    finally:
        for module, training in zip(modules, before):
            module.train(training)


def forward(runner, output: str | list, batch: int, feed: dict, generator):
    """Evaluate one node (or a list of nodes, sharing their ancestors) through the interpreter,
    with the modules in eval mode (EMA copies where kept) and data inputs drawn from their
    held-out split."""
    graph = runner.graph
    wanted = [output] if isinstance(output, str) else list(output)
    needed = set().union(*(_ancestors(graph, o) for o in wanted))
    modules = {m: runner.unwrapped(m) for m in graph.param_counts}
    ctx = Context(modules, generator, runner.device, lambda name: _held_out(runner, name, batch, generator),
                  lambda name: batch)
    with eval_mode(*modules.values()):
        values = Generating(ctx, feed).run([node for name, node in graph.nodes.items() if name in needed], {})
    return values[output] if isinstance(output, str) else [values[o] for o in wanted]


class Generating(Interpreter):
    """Generation's pass of the interpreter: a fed tensor stands for its node; a field of a fed
    data input that was not fed is a ComposerError naming it."""

    def __init__(self, ctx: Context, feed: dict):
        super().__init__(ctx)
        self.feed = feed

    def run_node(self, node, env: dict):
        if node.name in self.feed:
            return self.feed[node.name].to(self.ctx.device)
        try:
            return super().run_node(node, env)
        except KeyError as err:   # a field of a fed data input that was not fed
            raise ComposerError(str(err.args[0])) from None


def _ancestors(graph, output: str) -> set:
    return nx.ancestors(graph.dag, output) | {output}


def _held_out(runner, name: str, batch: int, generator) -> dict:
    """One batch of a data input at generation time, every field at the same indices: from its
    test split when the source has one."""
    table = held_out_table(runner.spec, runner.spec.input(name))
    index = torch.randint(len(table), (batch,), generator=generator)
    if isinstance(table, LazyTable):   # a streamed folder: decode just these rows
        return table.rows(index.tolist())
    return {field: column[index] for field, column in table.columns().items()}
