"""Export a trained run for use without composer: one function per format in `FORMATS`.

    onnx         the generating flow (or one module, `module=`) as an ONNX graph, batch axis dynamic
    torchscript  the same through torch.jit.trace
    safetensors  one module's weights plus its block description (composer/run/module_file.py)
    diffusers    a DDPMPipeline folder: a run whose denoiser is a `diffusers.UNet2DModel` block
                 (export_diffusers.py: the time and noise-schedule mapping)

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

import warnings
from dataclasses import dataclass
from pathlib import Path

import torch

from composer.errors import ComposerError, did_you_mean
from composer.run.module_file import write_module
from composer.run.traced import CHECK_BATCH, TOLERANCE, Port, Traceable, traceable

TRACE_BATCH = 2      # samples the graph is traced with (checked on CHECK_BATCH: the batch axis is dynamic)


@dataclass(frozen=True)
class Request:
    runner: object
    out: Path
    node: str | None = None
    module: str | None = None
    ema: bool = True


def export(runner, format: str, out, *, node: str | None = None, module: str | None = None,
           ema: bool = True) -> list[Path]:
    """Write `runner`'s export in `format` to `out`; returns the files written."""
    if format not in FORMATS:
        raise ComposerError(f"unknown export format '{format}'{did_you_mean(format, FORMATS)}")
    if node is not None and module is not None:
        raise ComposerError("--node and --module exclude each other: --node exports the flow up to a "
                            "tensor, --module one module alone")
    out = Path(out)
    if format == "diffusers" and out.is_file():
        raise ComposerError(f"{out} is a file: --format diffusers writes a pipeline folder, e.g. {out.with_suffix('')}")
    if format != "diffusers" and out.is_dir():
        raise ComposerError(f"{out} is a folder: give the file to write, e.g. {out / ('model.' + format)}")
    out.parent.mkdir(parents=True, exist_ok=True)
    return FORMATS[format](Request(runner, out, node, module, ema))


# ------------------------------------------------------------------ formats
def export_onnx(request: Request) -> list[Path]:
    traced = traceable(request.runner, request.node, request.module, request.ema)
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
    traced = traceable(request.runner, request.node, request.module, request.ema)
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
    """A diffusers DDPMPipeline folder (composer/run/export_diffusers.py): the run's diffusers.UNet2DModel
    denoiser and a DDPM/DDIM scheduler with the run's noise schedule."""
    from composer.run.export_diffusers import to_pipeline

    if request.node is not None or request.module is not None:
        raise ComposerError("--format diffusers writes the whole pipeline (the sample objective's denoiser and "
                            "schedule): drop --node/--module")
    return to_pipeline(request.runner, request.out, ema=request.ema)


FORMATS = {   # format -> writer(Request) -> files written
    "onnx": export_onnx,
    "torchscript": export_torchscript,
    "safetensors": export_safetensors,
    "diffusers": export_diffusers,
}

__all__ = ["FORMATS", "Request", "export", "sidecar_path"]
