"""Fast modes, opt-in from `train:` (YAML or `train.KEY=...` on the command line).

    train.compile: true | {mode: max-autotune, dynamic: false, ...}   torch.compile each module
    train.compile: phase | {scope: phase, mode: ...}                  each phase's forward + loss
                                                                       as one region (phase_compile.py)
    train.channels_last: true                                          NHWC weights for conv graphs
    train.precision: bf16                                              autocast (Accelerate)
    optimizers.NAME.fused: true  (or foreach: true)                    torch's fused/foreach optimizers

`apply(runner)` is called once at the end of `Runner.__init__`: it puts the data streams on the
training device (tables up to DEVICE_TABLE_BYTES: every built-in one) and applies the opt-in modes to the training modules in place, so that
state dicts, checkpoints, EMA copies and DDP wrappers see the same module objects as in eager mode.

Compiled modules keep an eager path (`CompiledForward`): calls without autograd (generation,
evaluation) and calls on inputs that are leaves requiring grad -- the gradient penalties' pattern,
`x.detach().requires_grad_(True)` then `autograd.grad(..., create_graph=True)` -- run the
module's own forward, since AOTAutograd has no double backward ("torch.compile with aot_autograd
does not currently support double backward", torch 2.x).
"""
from __future__ import annotations

import torch

from composer.run import partition
from composer.run.phase_compile import PhaseTraining


DEVICE_TABLE_BYTES = 512 * 2**20   # tables up to this size live on the training device


def compile_options(value) -> dict | None:
    """`train.compile` as keyword arguments of torch.compile, or None when off (null/false)."""
    if value is None or value is False:
        return None
    if value is True or isinstance(value, str):
        return {}
    return {k: v for k, v in value.items() if k != "scope"}


def compile_scope(value) -> str | None:
    """`train.compile`'s scope: "module", "phase", or None when off."""
    if value is None or value is False:
        return None
    if isinstance(value, str):
        return value
    return value.get("scope", "module") if isinstance(value, dict) else "module"


class CompiledForward:
    """A module's forward, compiled for training calls, eager where compiling cannot or need not
    serve (see the module docstring). `signatures` counts the distinct call signatures met (each
    compiles once; dynamo may also recompile on guards it keeps itself). The compile time shows
    in the first steps' wall time: AOTAutograd compiles the backward at the first backward call."""

    def __init__(self, eager, options: dict):
        self.eager, self.compiled = eager, torch.compile(eager, **options)
        self.seen: set = set()

    @property
    def signatures(self) -> int:
        return len(self.seen)

    def __call__(self, *args, **kwargs):
        if torch.compiler.is_compiling():   # inside a phase's region: traced as part of it
            return self.eager(*args, **kwargs)
        if not torch.is_grad_enabled() or any(_grad_leaf(a) for a in (*args, *kwargs.values())):
            return self.eager(*args, **kwargs)
        self.seen.add(_signature(args, kwargs))
        return self.compiled(*args, **kwargs)


def _grad_leaf(value) -> bool:
    return isinstance(value, torch.Tensor) and value.requires_grad and value.is_leaf


def _signature(args, kwargs) -> tuple:
    """What may make dynamo compile anew: shapes, dtypes, autocast, which params train."""
    tensors = [a for a in (*args, *kwargs.values()) if isinstance(a, torch.Tensor)]
    return (tuple((tuple(t.shape), t.dtype, t.requires_grad) for t in tensors),
            torch.is_autocast_enabled("cpu"), torch.is_autocast_enabled("cuda"))


def compile_module(module: torch.nn.Module, options: dict) -> CompiledForward:
    """Compile `module`'s forward in place (an instance attribute), keeping the module object."""
    forward = CompiledForward(module.forward, options)
    module.forward = forward
    return forward


def to_channels_last(module: torch.nn.Module) -> bool:
    """NHWC weights for a module with 2-d convolutions (its convolutions then give NHWC outputs);
    False, untouched, for a module without. Other 4-d tensors keep their layout."""
    if not any(isinstance(m, torch.nn.Conv2d | torch.nn.ConvTranspose2d) for m in module.modules()):
        return False
    module.to(memory_format=torch.channels_last)
    return True


def apply(runner) -> None:
    """Streams on the training device; channels-last and compile of the trained modules when
    `train.channels_last` / `train.compile` ask for them. Compiled forwards are kept in
    `runner.compiled` (name -> CompiledForward); `train.compile: phase` also puts each phase's
    region in one compiled function (`runner.interpreter.splits` says what each phase compiled),
    the per-module forwards serving what stays outside the regions (gradient penalties)."""
    train = runner.spec.train
    for stream in runner.streams.values():   # built-in tables are a few MiB; a bigger in-memory
        if stream.lazy or stream.nbytes <= DEVICE_TABLE_BYTES:   # one stays on the host; a lazy
            stream.to(runner.device)   # folder's batches (DataLoader, pinned on CUDA) are sent there
    if train.channels_last:
        for module in runner.raw.values():
            to_channels_last(module)
    options = compile_options(train.compile)
    runner.compiled = {}
    if options is not None:
        options = partition.for_device(options, runner.device)
        for name, module in runner.raw.items():
            if name in runner.graph.owner:     # trained modules; fixed ones stay eager
                runner.compiled[name] = compile_module(module, options)
    if compile_scope(train.compile) == "phase":
        runner.interpreter = PhaseTraining(runner.ctx, runner.forward_calls, options)

