"""Build modules from their specs, and infer every node's shape on the `meta` device."""
from __future__ import annotations

import torch
from torch import nn

from .errors import SpecError
from .spec import ModuleSpec, Spec

META_BATCH = 2


def instantiate(module: ModuleSpec) -> nn.Module:
    """The block (or inline Sequential of blocks) a ModuleSpec names."""
    from composer.blocks import BLOCKS

    if module.layers:
        return nn.Sequential(*(instantiate(layer) for layer in module.layers))
    return BLOCKS[module.block](**module.args)


def build_modules(spec: Spec, device: str | torch.device = "cpu") -> dict[str, nn.Module]:
    built = {}
    for module in spec.modules:
        with torch.device(device):
            try:
                built[module.name] = instantiate(module)
            except Exception as err:  # noqa: BLE001 -- a block's own argument checks
                raise spec.error(f"cannot build block: {err}", "modules", module.name) from None
    return built


def count_parameters(spec: Spec) -> dict[str, int]:
    return {name: sum(p.numel() for p in m.parameters()) for name, m in build_modules(spec, "meta").items()}


def infer_shapes(graph) -> dict[str, tuple | list]:
    """Run the whole graph on meta tensors through the shared evaluator; report the YAML line of
    the first failing node. A node's entry is its per-sample shape, or a list of them for a
    multi-output value (a module returning a tuple, `chunk`)."""
    from .evaluator import Context, evaluate
    from .inputs import fields

    spec = graph.spec
    layout = {i.name: fields(spec, i) for i in spec.inputs if i.kind == "data"}

    def draw(name):
        return {f: torch.empty((spec.batch_of(name),) + tuple(shape), dtype=dtype, device="meta")
                for f, (shape, dtype) in layout[name].items()}

    ctx = Context(build_modules(spec, "meta"), None, torch.device("meta"), draw, spec.batch_of)
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
                            f"{_first_line(err)}{where}", node.key, node.loc) from None
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


def _first_line(err: Exception) -> str:
    text = str(err).strip().splitlines()
    return text[0] if text else type(err).__name__
