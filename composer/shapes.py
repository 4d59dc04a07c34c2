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
            except (ValueError, TypeError, AssertionError) as err:
                raise spec.error(f"cannot build block: {err}", "modules", module.name) from None
    return built


def count_parameters(spec: Spec) -> dict[str, int]:
    return {name: sum(p.numel() for p in m.parameters()) for name, m in build_modules(spec, "meta").items()}


def infer_shapes(graph) -> dict[str, tuple]:
    """Run the whole graph on meta tensors; report the YAML line of the first failing node."""
    from .inputs import data_shape
    from .runtime_ops import OpContext, noise_like

    spec = graph.spec
    modules = build_modules(spec, "meta")
    ctx = OpContext(modules=modules, generator=None, state={}, device=torch.device("meta"))
    values: dict[str, torch.Tensor] = {}
    for name, node in graph.nodes.items():
        inputs = [values[i] for i in node.inputs]
        try:
            if node.kind == "data":
                shape = data_shape(spec, spec.input(name))
                values[name] = torch.empty((spec.batch_of(name),) + shape, device="meta")
            elif node.kind == "noise":
                values[name] = noise_like(node, inputs, spec.batch_of(name), None, torch.device("meta"))
            elif node.kind == "call":
                values[name] = modules[node.target](*inputs)
            elif node.kind == "fn":
                values[name] = node.op(ctx, *inputs)
            else:
                values[name] = _check_term(node, node.op(*inputs), inputs)
        except SpecError:
            raise
        except Exception as err:  # noqa: BLE001 -- any failure of user blocks is reported at its YAML line
            shapes = ", ".join(f"{i} {list(values[i].shape)}" for i in node.inputs)
            where = ""
            if node.kind == "call":
                err = _real_error(spec, node.target, inputs) or err
                where = f" (module {node.target} is defined at {spec.loc('modules', node.target)})"
            raise SpecError(f"{node.describe()} failed on inputs {shapes or '(none)'}: "
                            f"{_first_line(err)}{where}", node.key, node.loc) from None
    return {name: tuple(v.shape[1:]) for name, v in values.items() if isinstance(v, torch.Tensor)}


def _real_error(spec: Spec, name: str, inputs) -> Exception | None:
    """Meta kernels give terse messages; rerun the failing block on a one-sample CPU batch."""
    module = next(m for m in spec.modules if m.name == name)
    try:
        block = instantiate(module)
        block(*(torch.zeros((1,) + tuple(x.shape[1:]), dtype=x.dtype) for x in inputs))
    except Exception as err:  # noqa: BLE001
        return err
    return None



def _check_term(node, value, inputs) -> torch.Tensor:
    if value.dim() != 1:
        raise ValueError(f"loss term must return one value per sample, got shape {list(value.shape)}")
    return value


def _first_line(err: Exception) -> str:
    text = str(err).strip().splitlines()
    return text[0] if text else type(err).__name__
