"""Build modules from their specs, and infer every node's shape on the `meta` device."""
from __future__ import annotations

import math
from contextlib import nullcontext

import torch
from torch import nn
from torch.overrides import TorchFunctionMode

from composer.errors import SpecError
from composer.spec.schema import ModuleSpec, Spec

META_BATCH = 2


def instantiate(module: ModuleSpec) -> nn.Module:
    """The block (or inline Sequential of blocks) a ModuleSpec names."""
    from composer.blocks import BLOCKS

    if module.layers:
        return nn.Sequential(*(instantiate(layer) for layer in module.layers))
    return BLOCKS[module.block](**module.args)


class _NoMetaFill(TorchFunctionMode):
    """Skips in-place random fills of meta tensors while blocks are built on the meta device:
    their values do not exist there, and torch's meta kernel of `normal_` (DCGAN init,
    embeddings) imports torch._dynamo, which costs seconds of start-up for `composer validate`."""

    FILLS = {torch.Tensor.normal_, torch.Tensor.uniform_, nn.init.normal_, nn.init.uniform_, nn.init.trunc_normal_}

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        target = args[0] if args else kwargs.get("tensor")
        if func in self.FILLS and isinstance(target, torch.Tensor) and target.is_meta:
            return target
        return func(*args, **kwargs)


def build_modules(spec: Spec, device: str | torch.device = "cpu") -> dict[str, nn.Module]:
    built = {}
    meta = torch.device(device).type == "meta"
    for module in spec.modules:
        with torch.device(device), (_NoMetaFill() if meta else nullcontext()):
            try:
                built[module.name] = instantiate(module)
            except Exception as err:  # noqa: BLE001 -- a block's own argument checks
                raise spec.error(f"cannot build block: {err}", "modules", module.name) from None
    return built


CPU_CHECK_BUDGET = (2e8, 4096)
"""Graphs with at most 2e8 parameters x largest batch, whose data samples have at most 4,096
values each, are shape-checked on the CPU with zero inputs on one thread; larger ones on the
meta device. Measured on the 2-core machine under load: every shipped digits and 2-D graph takes
0.06-0.19 s on the CPU and 2.1-3.0 s on meta, because the meta kernels of batch norm and of
normal_ are Python decompositions that import torch._dynamo on first use."""


def count_parameters(modules: dict[str, nn.Module]) -> dict[str, int]:
    return {name: sum(p.numel() for p in m.parameters()) for name, m in modules.items()}


def check_device(spec: Spec, param_counts: dict[str, int]) -> torch.device:
    from composer.data.inputs import fields

    batch = max([spec.batch_of(i.name) for i in spec.inputs] + [spec.train.batch])
    sizes = [math.prod(shape) for i in spec.inputs if i.kind == "data" for shape, _ in fields(spec, i).values()]
    work, values = CPU_CHECK_BUDGET
    small = sum(param_counts.values()) * batch <= work and max(sizes, default=0) <= values
    return torch.device("cpu" if small else "meta")


def infer_shapes(graph, device: torch.device | None = None) -> dict[str, tuple | list]:
    """Run the whole graph through the shared evaluator, on meta tensors or (small graphs) on zero
    CPU tensors with a private RNG; report the YAML line of the first failing node. A node's entry
    is its per-sample shape, or a list of them for a multi-output value (a module returning a
    tuple, `chunk`)."""
    device = device or check_device(graph.spec, graph.param_counts)
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)   # tiny ops: threads only add synchronisation
        with torch.random.fork_rng(devices=[]):
            return _run_shapes(graph, device)
    finally:
        torch.set_num_threads(threads)


def _run_shapes(graph, device: torch.device) -> dict[str, tuple | list]:
    from composer.graph.interpreter import Context, evaluate
    from composer.data.inputs import fields

    spec = graph.spec
    layout = {i.name: fields(spec, i) for i in spec.inputs if i.kind == "data"}

    def draw(name):
        return {f: torch.zeros((spec.batch_of(name),) + tuple(shape), dtype=dtype, device=device)
                for f, (shape, dtype) in layout[name].items()}

    generator = None if device.type == "meta" else torch.Generator().manual_seed(0)
    ctx = Context(build_modules(spec, device), generator, device, draw, spec.batch_of)
    values: dict = {}
    for name, node in graph.nodes.items():
        inputs = [values[i] for i in node.inputs]
        try:
            values[name] = evaluate(node, inputs, ctx)
        except SpecError:
            raise
        except Exception as err:  # noqa: BLE001 -- any failure of user blocks is reported at its YAML line
            shapes = ", ".join(f"{i} {_full_shape(values[i])}" for i in node.inputs)
            where = ""
            if node.kind == "call":
                err = _real_error(spec, node.target, inputs) or err
                where = f" (module {node.target} is defined at {spec.loc('modules', node.target)})"
            raise SpecError(f"{node.describe()} failed on inputs {shapes or '(none)'}: "
                            f"{_first_line(err)}{where}{_tuple_hint(spec, node, values)}", node.key, node.loc) from None
    return {name: _shape(v) for name, v in values.items()}


def _shape(value):
    if isinstance(value, (tuple, list)):
        return [_shape(v) for v in value]
    return tuple(value.shape[1:])


def _full_shape(value) -> str:
    if isinstance(value, (tuple, list)):
        return "(" + ", ".join(_full_shape(v) for v in value) + ")"
    return str(list(value.shape))


def _real_error(spec: Spec, name: str, inputs) -> Exception | None:
    """Meta kernels give terse messages; rerun the failing block on a one-sample CPU batch."""
    module = next(m for m in spec.modules if m.name == name)
    try:
        block = instantiate(module)
        block(*(torch.zeros((1,) + tuple(x.shape[1:]), dtype=x.dtype) for x in inputs))
    except Exception as err:  # noqa: BLE001
        return err
    return None


def _tuple_hint(spec: Spec, node, values) -> str:
    """A hint when a failing node was given a flow tensor that holds several outputs (a module with
    two heads) whole. Values a recipe made itself are left to the recipe's own message (the
    adversarial recipe's names the `critic:` key to edit), as the user cannot index them."""
    written = {entry.name for entry in spec.flow}
    whole = [i for i in node.inputs if i in written and isinstance(values[i], (tuple, list))]
    if not whole or (node.kind == "fn" and node.target == "index"):
        return ""
    name = whole[0]
    return (f"; '{name}' holds {len(values[name])} outputs, not one tensor: "
            f"name the one meant, {name}[0] .. {name}[{len(values[name]) - 1}]")


def _first_line(err: Exception) -> str:
    text = str(err).strip().splitlines()
    return text[0] if text else type(err).__name__
