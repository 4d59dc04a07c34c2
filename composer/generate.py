"""Generation from a trained Runner: a forward pass of the flow that produces `sample.output`
(GANs, translation) or the objective's sampler (diffusion). EMA weights when there are any."""
from __future__ import annotations

import torch

from .errors import ComposerError
from .inputs import load_table
from .runtime_ops import OpContext, noise_like

CHUNK = 500


@torch.no_grad()
def generate(runner, n: int, *, output: str | None = None, inputs: dict | None = None,
             generator: torch.Generator | None = None, **options) -> torch.Tensor:
    """`n` samples in data space, `[n, ...]` on the CPU."""
    spec = runner.spec
    generator = generator or torch.Generator().manual_seed(spec.train.seed + 12345)
    objective = spec.sample.objective
    if objective and output is None:
        from composer.recipes import GENERATORS

        recipe = next(o.recipe for o in spec.objectives if o.name == objective)
        return GENERATORS[recipe](runner, objective, n, generator=generator, **options)
    output = output or spec.sample.output
    if output is None or output not in runner.graph.nodes:
        raise ComposerError(f"sample.output: '{output}' is not a tensor of the graph")
    given = {k: v for k, v in (inputs or {}).items()}
    if given:
        n = min(n, *(len(v) for v in given.values()))
    chunks = []
    for start in range(0, n, CHUNK):
        size = min(CHUNK, n - start)
        feed = {k: v[start:start + size] for k, v in given.items()}
        chunks.append(forward(runner, output, size, feed, generator).float().cpu())
    return torch.cat(chunks)


def forward(runner, output: str, batch: int, feed: dict, generator) -> torch.Tensor:
    """Evaluate one node with the modules in eval mode (EMA copies where kept)."""
    graph, spec = runner.graph, runner.spec
    needed = _ancestors(graph, output)
    modules = {m: runner.unwrapped(m) for m in graph.param_counts}
    ctx = OpContext(modules, generator, {}, runner.device)
    values: dict[str, torch.Tensor] = {}
    training = {m: mod.training for m, mod in modules.items()}
    for module in modules.values():
        module.eval()
    try:
        for name in (n for n in graph.nodes if n in needed):
            node = graph.nodes[name]
            inputs = [values[i] for i in node.inputs]
            if name in feed:
                values[name] = feed[name].to(runner.device)
            elif node.kind == "data":
                values[name] = _held_out(runner, name, batch, generator).to(runner.device)
            elif node.kind == "noise":
                values[name] = noise_like(node, inputs, batch, generator, runner.device)
            elif node.kind == "call":
                values[name] = modules[node.target](*inputs)
            elif node.kind == "fn":
                values[name] = node.op(ctx, *inputs)
    finally:
        for name, module in modules.items():
            module.train(training[name])
    return values[output]


def _ancestors(graph, output: str) -> set:
    import networkx as nx

    return nx.ancestors(graph.dag, output) | {output}


def _held_out(runner, name: str, batch: int, generator) -> torch.Tensor:
    """A data input at generation time: its test split when the source has one."""
    item = next(i for i in runner.spec.inputs if i.name == name)
    table = reference_table(runner.spec, item)
    index = torch.randint(len(table), (batch,), generator=generator)
    return table.x[index]


def reference_table(spec, item):
    """The held-out data of an input: `split: test` when its source takes a split."""
    import inspect

    from .inputs import source_fn

    if "split" in inspect.signature(source_fn(spec, item)).parameters:
        return load_table(spec, item, split="test")
    return load_table(spec, item)
