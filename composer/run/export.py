"""Export a trained run for use without composer: one function per format in `FORMATS`.

    onnx         the generating flow (or one module, `module=`) as an ONNX graph, batch axis dynamic
    torchscript  the same through torch.jit.trace
    safetensors  one module's weights plus its block description (composer/run/module_file.py)
    diffusers    a diffusers pipeline: needs a run whose denoiser is a `diffusers.*` block (the bridge)

onnx and torchscript write `PATH` and a sidecar `PATH.json`: the inputs (name, the graph tensor,
shape with `B` for the batch, dtype, meaning such as `normal noise N(0, 1)` or `int64 labels 0..9`),
the outputs, the weights used (EMA or trained) and the check made after writing: the exported file
evaluated on a batch of another size than the traced one against composer's own evaluation.

What becomes an input of the exported graph: every noise input the output depends on (class labels
of categorical noise included), every field of a data input it reads (`real.y`) and every data
input it reads (a translation's `real_A`: an image-to-image graph takes its images as inputs). What
is refused: a generating recipe (diffusion's sampler loops over its denoiser with noise drawn at each
step: export the denoiser with `module=`, or the diffusers format), flow ops that draw random numbers
(reparameterize, drop_condition, diffaugment: an exported graph has no RNG) and tensors a recipe
computes inside an objective (loss terms, penalties, the forward marginal).
"""
from __future__ import annotations

import copy
import re
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from composer.errors import ComposerError, did_you_mean
from composer.graph.interpreter import Context, evaluate
from composer.run.module_file import describe, write_module

TRACE_BATCH = 2      # samples the graph is traced with
CHECK_BATCH = 5      # samples the written file is checked on (another size: the batch axis is dynamic)
TOLERANCE = 1e-4     # largest difference from composer's evaluation accepted after writing
INPUT_KINDS = ("noise", "data", "field")
RANDOM_OPS = ("reparameterize", "drop_condition", "diffaugment")


@dataclass(frozen=True)
class Request:
    runner: object
    out: Path
    node: str | None = None
    module: str | None = None
    ema: bool = True


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


def export(runner, format: str, out, *, node: str | None = None, module: str | None = None,
           ema: bool = True) -> list[Path]:
    """Write `runner`'s export in `format` to `out`; returns the files written."""
    if format not in FORMATS:
        raise ComposerError(f"unknown export format '{format}'{did_you_mean(format, FORMATS)}")
    if node is not None and module is not None:
        raise ComposerError("--node and --module exclude each other: --node exports the flow up to a "
                            "tensor, --module one module alone")
    out = Path(out)
    if out.is_dir():
        raise ComposerError(f"{out} is a folder: give the file to write, e.g. {out / ('model.' + format)}")
    out.parent.mkdir(parents=True, exist_ok=True)
    return FORMATS[format](Request(runner, out, node, module, ema))


# ------------------------------------------------------------------ what is traced
class FlowModule(nn.Module):
    """The flow nodes between the given input tensors and the outputs, evaluated in topological
    order by the shared evaluator (module calls and flow ops; no RNG, no data)."""

    def __init__(self, nodes: list, inputs: list[str], outputs: list[str], modules: dict):
        super().__init__()
        self.nodes, self.input_names, self.output_names = nodes, inputs, outputs
        self.parts = nn.ModuleDict(modules)
        self.ctx = Context({}, None, torch.device("cpu"), _no_draw, _no_draw)

    def forward(self, *tensors):
        self.ctx.modules = dict(self.parts.items())
        values = dict(zip(self.input_names, tensors))
        for node in self.nodes:
            values[node.name] = evaluate(node, [values[i] for i in node.inputs], self.ctx)
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


def traceable(request: Request) -> Traceable:
    """The nn.Module to trace, its inputs and outputs with their values on a check batch."""
    if request.module is not None:
        return _module_alone(request)
    return _flow(request)


def _flow(request: Request) -> Traceable:
    from composer.run.generate import forward

    runner = request.runner
    graph = runner.graph
    outputs = _outputs(runner, request.node)
    inputs, steps = _subgraph(graph, outputs)
    for name in steps:
        _check_step(graph, graph.nodes[name])
    used = sorted({graph.nodes[s].target for s in steps if graph.nodes[s].kind == "call"})
    modules = {m: _cpu_copy(runner.unwrapped(m, ema=request.ema)) for m in used}
    values = forward(runner, inputs + outputs, CHECK_BATCH, {}, _generator(runner))
    values = [[t.detach().cpu() for t in _flat(v)] for v in values]
    flow = FlowModule([graph.nodes[s] for s in steps], inputs, outputs, modules).eval()
    ins = [Port(_sanitise(n), n, v[0], input_meaning(runner, n, v[0])) for n, v in zip(inputs, values)]
    outs = _output_ports(graph, outputs, values[len(inputs):])
    if request.ema or not any(m in runner.ema for m in used):   # composer evaluated the same weights
        _compare(flow, ins, outs, "the flow module")
    return Traceable(flow, ins, _recompute(flow, ins, outs), _weights(runner, used, request.ema))


def _module_alone(request: Request) -> Traceable:
    from composer.run.generate import forward

    runner, name = request.runner, request.module
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
    module = ModuleAlone(_cpu_copy(runner.unwrapped(name, ema=request.ema))).eval()
    names = _argument_names(module.inner, call.inputs)
    ins = [Port(a, t, v, f"{input_meaning(runner, t, v)}; in the graph: {call.describe()}")
           for a, t, v in zip(names, call.inputs, values)]
    flat = _flat(values[-1])
    outs = [Port("output" if len(flat) == 1 else f"output_{i}", call.name, t.detach().cpu(), f"{call.describe()}")
            for i, t in enumerate(flat)]
    return Traceable(module, ins, _recompute(module, ins, outs), _weights(runner, [name], request.ema))


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
        raise ComposerError(
            f"this graph generates with the '{spec.sample.objective}' objective's sampler, a loop over its "
            f"denoiser with noise drawn at every step, which is not one traced graph: export the denoiser "
            f"alone with --module {model} (onnx, torchscript, safetensors) and run a sampler around it, "
            f"or use --format diffusers (a run whose denoiser is a diffusers.* block)")
    wanted = [spec.sample.output] if isinstance(spec.sample.output, str) else list(spec.sample.output or [])
    computed = [o for o in wanted if graph.nodes[o].kind not in INPUT_KINDS]
    if not computed:
        raise ComposerError("sample.output names no tensor the flow computes: choose one with --node")
    return computed


def _denoiser_hint(runner) -> str:
    calls = [n.target for n in runner.graph.nodes.values() if n.kind == "call"]
    return calls[-1] if calls else "NAME"


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
    return copy.deepcopy(module).cpu().eval().requires_grad_(False)


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


# ------------------------------------------------------------------ formats
def export_onnx(request: Request) -> list[Path]:
    traced = traceable(request)
    names_in, names_out = [p.name for p in traced.inputs], [p.name for p in traced.outputs]
    examples = tuple(p.value[:TRACE_BATCH] for p in traced.inputs)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")   # tracer and exporter chatter about constants
        try:
            torch.onnx.export(traced.module, examples, str(request.out), dynamo=False, input_names=names_in,
                              output_names=names_out, dynamic_axes={n: {0: "batch"} for n in names_in + names_out})
        except ImportError as err:
            raise ComposerError(f"--format onnx needs the onnx package: pip install onnx ({err})") from None
    check = _check_onnx(request.out, traced)
    return [request.out, _write_sidecar(request, traced, "onnx", check)]


def _check_onnx(path: Path, traced: Traceable) -> dict:
    try:
        import onnxruntime
    except ImportError:
        return {"checked": False, "why": "onnxruntime is not installed"}
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = session.run(None, {p.name: p.value.numpy() for p in traced.inputs})
    return _verdict([torch.from_numpy(g) for g in got], traced, f"onnxruntime {onnxruntime.__version__}")


def export_torchscript(request: Request) -> list[Path]:
    traced = traceable(request)
    examples = tuple(p.value[:TRACE_BATCH] for p in traced.inputs)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        script = torch.jit.trace(traced.module, examples, check_trace=False)
    script.save(str(request.out))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)   # torch 2.14 deprecates TorchScript for torch.export
        loaded = torch.jit.load(str(request.out))
    with torch.no_grad():
        got = loaded(*(p.value for p in traced.inputs))
    check = _verdict(list(got), traced, f"torch.jit.load (torch {torch.__version__})")
    return [request.out, _write_sidecar(request, traced, "torchscript", check)]


def _verdict(got: list, traced: Traceable, by: str) -> dict:
    diff = max(float((g.float() - o.value.float()).abs().max()) for g, o in zip(got, traced.outputs))
    if diff > TOLERANCE:
        raise ComposerError(
            f"the exported graph differs from composer's evaluation by {diff:.3g} on {CHECK_BATCH} samples "
            f"(traced on {TRACE_BATCH}): a block may fix the batch size or take a data-dependent branch "
            "that tracing cannot follow")
    return {"checked": True, "by": by, "batch": CHECK_BATCH, "traced_batch": TRACE_BATCH, "max_abs_diff": diff}


def _write_sidecar(request: Request, traced: Traceable, format: str, check: dict) -> Path:
    import json

    from composer.run.module_file import header

    runner = request.runner
    record = {**header(runner, format), "weights": traced.weights,
              "summary": [_line(p) for p in traced.inputs] + ["-> " + _line(p) for p in traced.outputs],
              "inputs": [_port(p) for p in traced.inputs], "outputs": [_port(p, True) for p in traced.outputs],
              "check": check}
    path = sidecar_path(request.out)
    path.write_text(json.dumps(record, indent=2) + "\n")
    return path


def sidecar_path(out: Path) -> Path:
    return Path(out).with_name(Path(out).name + ".json")


def _line(port: Port) -> str:
    """`z: float32 [B, 32], normal noise N(0, 1^2)`"""
    shape = ", ".join(["B", *(str(d) for d in port.value.shape[1:])])
    return f"{port.name}: {str(port.value.dtype).replace('torch.', '')} [{shape}], {port.meaning}"


def _port(port: Port, output: bool = False) -> dict:
    record = {"name": port.name, "tensor": port.tensor, "shape": ["B", *port.value.shape[1:]],
              "dtype": str(port.value.dtype).replace("torch.", ""), "meaning": port.meaning}
    if output and port.value.is_floating_point():
        record["range_on_check_batch"] = [float(port.value.min()), float(port.value.max())]
        if port.value.dim() == 4:
            record["data_space"] = "images in [-1, 1]; pixels = (x + 1) * 127.5"
    return record


def export_safetensors(request: Request) -> list[Path]:
    if request.node is not None:
        raise ComposerError("--format safetensors writes one module's weights: give --module NAME, not --node")
    names = list(request.runner.graph.param_counts)
    if request.module is None:
        raise ComposerError(f"--format safetensors writes one module's weights: give --module NAME "
                            f"(one of: {', '.join(names)})")
    return write_module(request.runner, request.module, request.out, request.ema)


def export_diffusers(request: Request) -> list[Path]:
    """A diffusers pipeline folder (save_pretrained): to come with the diffusers bridge, which
    maps a `diffusers.*` denoiser block and composer's schedule to a pipeline and scheduler."""
    blocks = sorted({m.block or "a list of blocks" for m in request.runner.spec.modules})
    raise ComposerError(
        "--format diffusers needs a run whose denoiser is a diffusers.* block (the diffusers bridge, "
        f"not in this version); this run's blocks: {', '.join(blocks)}. Export the denoiser with "
        "--format onnx|torchscript|safetensors --module NAME instead")


FORMATS = {   # format -> writer(Request) -> files written
    "onnx": export_onnx,
    "torchscript": export_torchscript,
    "safetensors": export_safetensors,
    "diffusers": export_diffusers,
}

__all__ = ["FORMATS", "FlowModule", "describe", "export", "input_meaning", "sidecar_path", "traceable"]
