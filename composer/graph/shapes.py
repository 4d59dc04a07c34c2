"""Infer every node's shape by running the graph through the interpreter, on zero CPU tensors
(small graphs) or on the `meta` device."""
from __future__ import annotations

import math

import torch

from composer.errors import SpecError
from composer.graph.interpreter import Context, Interpreter
from composer.graph.modules import build_modules, instantiate
from composer.spec.schema import Spec

META_BATCH = 2


CPU_CHECK_BUDGET = (2e8, 4096)
"""Graphs with at most 2e8 parameters x largest batch, whose data samples have at most 4,096
values each, are shape-checked on the CPU with zero inputs on one thread; larger ones on the
meta device. Measured on the 2-core machine under load: every shipped digits and 2-D graph takes
0.06-0.19 s on the CPU and 2.1-3.0 s on meta, because the meta kernels of batch norm and of
normal_ are Python decompositions that import torch._dynamo on first use."""


def check_device(spec: Spec, param_counts: dict[str, int]) -> torch.device:
    """The CPU (zero inputs, one forward) for small graphs and for graphs with a block that cannot
    run on meta tensors (its registry entry says `meta_shapes = False`); else the meta device."""
    from composer.data.inputs import fields

    if not all(_meta_capable(m) for m in spec.modules):
        return torch.device("cpu")
    batch = max([spec.batch_of(i.name) for i in spec.inputs] + [spec.train.batch])
    sizes = [math.prod(shape) for i in spec.inputs if i.kind == "data" for shape, _ in fields(spec, i).values()]
    work, values = CPU_CHECK_BUDGET
    small = sum(param_counts.values()) * batch <= work and max(sizes, default=0) <= values
    return torch.device("cpu" if small else "meta")


def _meta_capable(module) -> bool:
    from composer import registry

    if module.layers:
        return all(_meta_capable(layer) for layer in module.layers)
    blocks = registry.get("blocks")
    return module.block not in blocks or getattr(blocks[module.block], "meta_shapes", True)


def infer_shapes(graph, device: torch.device | None = None) -> dict[str, tuple | list]:
    """Run the whole graph through the interpreter, on meta tensors or (small graphs) on zero
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
    from composer.data.inputs import fields

    spec = graph.spec
    layout = {i.name: fields(spec, i) for i in spec.inputs if i.kind == "data"}

    def draw(name):
        return {f: torch.zeros((spec.batch_of(name),) + tuple(shape), dtype=dtype, device=device)
                for f, (shape, dtype) in layout[name].items()}

    generator = None if device.type == "meta" else torch.Generator().manual_seed(0)
    ctx = Context(build_modules(spec, device), generator, device, draw, spec.batch_of)
    values = ShapeProp(ctx, spec).run(graph.nodes.values(), {})
    return {name: _shape(v) for name, v in values.items()}


class ShapeProp(Interpreter):
    """The shape pass: the interpreter on zero or meta inputs, reporting the first failing node
    at its YAML line (with the inputs' shapes, the block's own error and hints)."""

    def __init__(self, ctx: Context, spec: Spec):
        super().__init__(ctx)
        self.spec = spec

    def run_node(self, node, env: dict):
        try:
            return super().run_node(node, env)
        except SpecError:
            raise
        except Exception as err:  # noqa: BLE001 -- any failure of user blocks is reported at its YAML line
            raise self.failure(node, env, err) from None

    def failure(self, node, env: dict, err: Exception) -> SpecError:
        spec = self.spec
        shapes = ", ".join(f"{i} {_full_shape(env[i])}" for i in node.inputs)
        where = ""
        if node.kind == "call":
            err = _real_error(spec, node.target, [env[i] for i in node.inputs]) or err
            where = f" (module {node.target} is defined at {spec.loc('modules', node.target)})"
        return SpecError(f"{node.describe()} failed on inputs {shapes or '(none)'}: "
                         f"{_first_line(err)}{where}{_tuple_hint(spec, node, env)}", node.key, node.loc)


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
