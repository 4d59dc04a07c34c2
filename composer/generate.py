"""Generation from a trained Runner: a forward pass of the flow that produces `sample.output`
(GANs, translation) or the objective's sampler (diffusion). EMA weights when there are any.

`sample.output` may name several flow tensors of one shape, e.g. `[real_A, fake_B, rec_A]`:
they are computed from the same inputs and stacked as `[n, k, ...]`, and a sample grid shows one
sample per row: input | translation | reconstruction in its columns."""
from __future__ import annotations

import networkx as nx
import torch

from .errors import ComposerError
from .inputs import load_table
from .runtime_ops import OpContext, noise_like

CHUNK = 500


@torch.no_grad()
def generate(runner, n: int, *, output: str | list | None = None, inputs: dict | None = None,
             generator: torch.Generator | None = None, **options) -> torch.Tensor:
    """`n` samples in data space, `[n, ...]` on the CPU; `[n, k, ...]` for a list of k outputs."""
    spec = runner.spec
    generator = generator or torch.Generator().manual_seed(spec.train.seed + 12345)
    objective = spec.sample.objective
    if objective and output is None:
        from composer.recipes import GENERATORS

        recipe = next(o.recipe for o in spec.objectives if o.name == objective)
        return GENERATORS[recipe](runner, objective, n, generator=generator, **options)
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


def computable(graph, names: list, given: set) -> list:
    """With inputs fed (`composer sample --input real_A=...`), the listed outputs that need no
    other data input; all of them when nothing is fed."""
    if not given:
        return names
    kept = [o for o in names if data_needed(graph, o) <= given]
    return kept or names


def data_needed(graph, output: str) -> set:
    """The data inputs a node is computed from."""
    return {n for n in _ancestors(graph, output) if graph.nodes[n].kind == "data"}


def run_flow(runner, n: int, outputs: list, inputs: dict | None, generator) -> list:
    """The flow tensors `outputs` for `n` samples (fewer if the fed `inputs` are shorter), each
    `[n, ...]` float on the CPU, computed in chunks from the same inputs and noise."""
    for name in outputs:
        if name not in runner.graph.nodes:
            raise ComposerError(f"sample.output: '{name}' is not a tensor of the graph")
    given = dict(inputs or {})
    if given:
        n = min(n, *(len(v) for v in given.values()))
    chunks = []
    for start in range(0, n, CHUNK):
        size = min(CHUNK, n - start)
        feed = {k: v[start:start + size] for k, v in given.items()}
        chunks.append([v.float().cpu() for v in forward(runner, outputs, size, feed, generator)])
    return [torch.cat(parts) for parts in zip(*chunks)]


def forward(runner, output: str | list, batch: int, feed: dict, generator):
    """Evaluate one node (or a list of nodes, sharing their ancestors) with the modules in eval
    mode (EMA copies where kept)."""
    graph = runner.graph
    wanted = [output] if isinstance(output, str) else list(output)
    needed = set().union(*(_ancestors(graph, o) for o in wanted))
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
    return values[output] if isinstance(output, str) else [values[o] for o in wanted]


def _ancestors(graph, output: str) -> set:
    return nx.ancestors(graph.dag, output) | {output}


def _held_out(runner, name: str, batch: int, generator) -> torch.Tensor:
    """A data input at generation time: its test split when the source has one."""
    item = runner.spec.input(name)
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
