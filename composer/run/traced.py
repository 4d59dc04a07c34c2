"""What composer export traces: the generating flow between its inputs and outputs as one
nn.Module (`FlowModule`, evaluated by the shared evaluator), or one module alone, with the inputs'
and outputs' values on a check batch computed by composer's own evaluation (generate.forward).

The exported graph's inputs are the noise inputs the output depends on (class labels of
categorical noise included), the fields of data inputs it reads (`real.y`) and the data inputs it
reads (a translation's `real_A`). Refused: a generating recipe (diffusion's sampler), flow ops that
draw random numbers, and tensors a recipe computes inside an objective.
"""
from __future__ import annotations

import copy
import re
from dataclasses import dataclass

import torch
from torch import nn

from composer.errors import ComposerError, did_you_mean
from composer.graph.interpreter import Context, Interpreter
from composer.graph.spectral import is_spectral, plain_copy

CHECK_BATCH = 5      # samples the values are computed for (the traced graph is checked on them)
TOLERANCE = 1e-4     # largest difference from composer's evaluation accepted

INPUT_KINDS = ("noise", "data", "field")
RANDOM_OPS = ("reparameterize", "drop_condition", "diffaugment")


@dataclass
class Port:
    """One input or output of the exported graph."""

    name: str          # its name in the file (the graph tensor's name, sanitised)
    tensor: str        # the graph tensor it is
    value: torch.Tensor   # its value on the check batch
    meaning: str


@dataclass
class Traceable:
    module: nn.Module
    inputs: list
    outputs: list
    weights: dict      # module name -> "ema" or "trained"


class FlowModule(nn.Module):
    """The flow nodes between the given input tensors and the outputs, evaluated in topological
    order by the shared evaluator (module calls and flow ops; no RNG, no data)."""

    def __init__(self, nodes: list, inputs: list[str], outputs: list[str], modules: dict):
        super().__init__()
        self.nodes, self.input_names, self.output_names = nodes, inputs, outputs
        self.parts = nn.ModuleDict(modules)
        self.interpreter = Interpreter(Context({}, None, torch.device("cpu"), _no_draw, _no_draw))

    def forward(self, *tensors):
        self.interpreter.ctx.modules = dict(self.parts.items())
        values = self.interpreter.run(self.nodes, dict(zip(self.input_names, tensors)))
        return tuple(t for name in self.output_names for t in _flat(values[name]))


class ModuleAlone(nn.Module):
    """One module, its outputs flattened to a tuple of tensors."""

    def __init__(self, module: nn.Module):
        super().__init__()
        self.inner = module

    def forward(self, *tensors):
        return tuple(_flat(self.inner(*tensors)))


def _no_draw(name):
    raise ComposerError(f"'{name}' is an input of the exported graph and must be given")


def _flat(value) -> list:
    return [t for v in value for t in _flat(v)] if isinstance(value, (tuple, list)) else [value]


def traceable(runner, node: str | None = None, module: str | None = None, ema: bool = True) -> Traceable:
    """The nn.Module to trace, its inputs and outputs with their values on a check batch: the flow
    up to `sample.output` (or `node`), or `module` alone; EMA weights where kept unless `ema` is False."""
    if module is not None:
        return _module_alone(runner, module, ema)
    return _flow(runner, node, ema)


def _flow(runner, node: str | None, ema: bool) -> Traceable:
    from composer.run.generate import forward

    graph = runner.graph
    outputs = _outputs(runner, node)
    inputs, steps = _subgraph(graph, outputs)
    for name in steps:
        _check_step(graph, graph.nodes[name])
    used = sorted({graph.nodes[s].target for s in steps if graph.nodes[s].kind == "call"})
    modules = {m: _cpu_copy(runner.unwrapped(m, ema=ema)) for m in used}
    values = forward(runner, inputs + outputs, CHECK_BATCH, {}, _generator(runner))
    values = [[t.detach().cpu() for t in _flat(v)] for v in values]
    flow = FlowModule([graph.nodes[s] for s in steps], inputs, outputs, modules).eval()
    ins = [Port(_sanitise(n), n, v[0], input_meaning(runner, n, v[0])) for n, v in zip(inputs, values)]
    outs = _output_ports(graph, outputs, values[len(inputs):])
    same = ema or not any(m in runner.ema for m in used)   # composer evaluated the same weights
    if same and runner.device.type == "cpu":   # (on a GPU, TF32 convolutions differ from the CPU's by more)
        _compare(flow, ins, outs, "the flow module")
    return Traceable(flow, ins, _recompute(flow, ins, outs), _weights(runner, used, ema))


def _module_alone(runner, name: str, ema: bool) -> Traceable:
    from composer.run.generate import forward

    graph = runner.graph
    if name not in graph.param_counts:
        raise ComposerError(f"--module {name}: the graph has no module of that name"
                            f"{did_you_mean(name, graph.param_counts)}")
    calls = [n for n in graph.nodes.values() if n.kind == "call" and n.target == name]
    if not calls:
        raise ComposerError(f"--module {name}: the graph applies it only inside a recipe's op, so its inputs "
                            "are not graph tensors; export its weights with --format safetensors")
    call = calls[0]
    values = forward(runner, list(call.inputs) + [call.name], CHECK_BATCH, {}, _generator(runner))
    values = [v.detach().cpu() if isinstance(v, torch.Tensor) else v for v in values]
    module = ModuleAlone(_cpu_copy(runner.unwrapped(name, ema=ema))).eval()
    names = _argument_names(module.inner, call.inputs)
    ins = [Port(a, t, v, f"{input_meaning(runner, t, v)}; in the graph: {call.describe()}")
           for a, t, v in zip(names, call.inputs, values)]
    flat = _flat(values[-1])
    outs = [Port("output" if len(flat) == 1 else f"output_{i}", call.name, t.detach().cpu(), f"{call.describe()}")
            for i, t in enumerate(flat)]
    return Traceable(module, ins, _recompute(module, ins, outs), _weights(runner, [name], ema))


def _outputs(runner, node: str | None) -> list[str]:
    spec, graph = runner.spec, runner.graph
    if node is not None:
        if node not in graph.nodes:
            raise ComposerError(f"--node {node}: the graph has no tensor of that name{did_you_mean(node, graph.nodes)}")
        if graph.nodes[node].kind in INPUT_KINDS:
            raise ComposerError(f"--node {node}: it is an input of the graph ({graph.nodes[node].kind}), "
                                "nothing computes it; name a tensor the flow computes")
        return [node]
    if spec.sample.objective:
        model = _denoiser_hint(runner)
        decode = spec.sample.options.get("decode")
        also = f" (and its decoder with --module {decode.split('.')[0]})" if decode else ""   # `vae.decode`: vae
        raise ComposerError(
            f"this graph generates with the '{spec.sample.objective}' objective's sampler, a loop over its "
            f"denoiser with noise drawn at every step, which is not one traced graph: export the denoiser "
            f"alone with --module {model}{also} (onnx, torchscript, safetensors) and run a sampler around "
            "it, or use --format diffusers (a run whose denoiser is a diffusers.* block)")
    wanted = [spec.sample.output] if isinstance(spec.sample.output, str) else list(spec.sample.output or [])
    computed = [o for o in wanted if graph.nodes[o].kind not in INPUT_KINDS]
    if not computed:
        raise ComposerError("sample.output names no tensor the flow computes: choose one with --node")
    return computed


def _denoiser_hint(runner) -> str:
    """The module the generating objective calls (its denoiser), else the last module called."""
    calls = [n for n in runner.graph.nodes.values() if n.kind == "call"]
    own = [n.target for n in calls if n.objective == runner.spec.sample.objective]
    return (own or [n.target for n in calls] or ["NAME"])[-1]


def _subgraph(graph, outputs: list[str]) -> tuple[list, list]:
    """The exported graph's inputs and computed nodes, in topological order: walking back from
    the outputs, noise, data inputs and their fields end the walk (they become inputs)."""
    needed, stack = set(), list(outputs)
    while stack:
        name = stack.pop()
        if name not in needed:
            needed.add(name)
            if graph.nodes[name].kind not in INPUT_KINDS:
                stack.extend(graph.nodes[name].inputs)
    order = [n for n in graph.nodes if n in needed]
    inputs = [n for n in order if graph.nodes[n].kind in INPUT_KINDS]
    return inputs, [n for n in order if n not in inputs]


def _check_step(graph, node) -> None:
    from composer.ops import OPS

    if node.kind == "term":
        raise ComposerError(f"'{node.name}' is a loss term ({node.describe()}), not a generated tensor")
    if node.kind != "fn":
        return
    name = getattr(node.op, "name", type(node.op).__name__)
    if name in RANDOM_OPS:
        raise ComposerError(
            f"'{node.name}' ({node.describe()}) draws random numbers inside the flow, and an exported graph "
            "has no RNG: export a tensor before it with --node, or the module after it with --module")
    if node.objective or node.modules or type(node.op) not in set(OPS.values()):
        owner = f"the '{node.objective}' objective's recipe" if node.objective else "an op that is not a flow op"
        raise ComposerError(f"'{node.name}' ({node.describe()}) is computed by {owner}, not by the flow: "
                            "export a flow tensor with --node or one module with --module")


def _output_ports(graph, outputs: list, values: list) -> list:
    ports = []
    for name, parts in zip(outputs, values):
        for i, value in enumerate(parts):
            label = name if len(parts) == 1 else f"{name}_{i}"
            ports.append(Port(_sanitise(label), name, value, f"{graph.nodes[name].describe()}"
                              + ("" if len(parts) == 1 else f", output {i}")))
    return ports


def _recompute(module: nn.Module, ins: list, outs: list) -> list:
    """The outputs as the eager module gives them on the check batch (the reference for the file)."""
    with torch.no_grad():
        got = module(*(p.value for p in ins))
    return [Port(o.name, o.tensor, g, o.meaning) for o, g in zip(outs, got)]


def _compare(module: nn.Module, ins: list, outs: list, what: str) -> None:
    with torch.no_grad():
        got = module(*(p.value for p in ins))
    diff = max(float((g.float() - o.value.float()).abs().max()) for g, o in zip(got, outs))
    if diff > TOLERANCE:
        raise ComposerError(f"export check failed: {what} differs from composer's evaluation by {diff:.3g}; "
                            "please report this with the graph file")


def _weights(runner, modules: list, ema: bool) -> dict:
    return {m: "ema" if ema and m in runner.ema else "trained" for m in modules}


def _cpu_copy(module: nn.Module) -> nn.Module:
    """A copy to trace; spectral norms folded into plain weights (composer/graph/spectral.py)."""
    duplicate = plain_copy(module) if is_spectral(module) else copy.deepcopy(module)
    return duplicate.cpu().eval().requires_grad_(False)


def _generator(runner) -> torch.Generator:
    return torch.Generator().manual_seed(runner.spec.train.seed + 4242)


def _argument_names(module: nn.Module, tensors) -> list[str]:
    import inspect

    try:
        params = [p.name for p in inspect.signature(module.forward).parameters.values()
                  if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    except (TypeError, ValueError):
        params = []
    names = params[:len(tensors)] if len(params) >= len(tensors) else [_sanitise(t) for t in tensors]
    return _unique(names)


def _sanitise(name: str) -> str:
    clean = re.sub(r"\W", "_", name)
    return clean if clean[:1].isalpha() or clean[:1] == "_" else f"t_{clean}"


def _unique(names: list[str]) -> list[str]:
    seen: dict = {}
    out = []
    for name in names:
        seen[name] = seen.get(name, 0) + 1
        out.append(name if seen[name] == 1 else f"{name}_{seen[name]}")
    return out


def input_meaning(runner, name: str, value: torch.Tensor) -> str:
    """What a user feeds for an input: `normal noise N(0, 1)`, `int64 labels 0..9`, ..."""
    node = runner.graph.nodes.get(name)
    kind = node.kind if node is not None else ""
    options = {k: v for k, v in node.args.items() if k not in ("shape", "like")} if node is not None else {}
    if kind == "noise" and node.target == "categorical":
        return f"int64 labels 0..{options['classes'] - 1} (categorical noise)"
    if kind == "noise" and node.target == "normal":
        return f"normal noise N(0, {options.get('scale', 1.0):g}^2)"
    if kind == "noise" and node.target == "uniform":
        return f"uniform noise U({options.get('low', 0.0):g}, {options.get('high', 1.0):g})"
    if kind == "noise":
        return f"{node.target} noise {options}"
    if kind == "data":
        space = ", images in [-1, 1]" if value.dim() == 4 else ""
        return f"a batch of data input '{name}' (source {node.target}){space}"
    if kind == "field":
        labels = "" if value.is_floating_point() else f" ({str(value.dtype).replace('torch.', '')} labels)"
        return f"field '{node.target}' of data input '{node.inputs[0]}'{labels}"
    return f"the graph's tensor '{name}'"
