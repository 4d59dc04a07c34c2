"""Build a graph's modules from their specs (on the CPU, or on the meta device to count
parameters and check shapes before any weight exists)."""
from __future__ import annotations

from contextlib import nullcontext

import torch
from torch import nn
from torch.overrides import TorchFunctionMode

from composer.spec.schema import ModuleSpec, Spec


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
    """Every module of the spec, built on `device`; a block's own argument errors are reported
    at its YAML entry."""
    built = {}
    meta = torch.device(device).type == "meta"
    for module in spec.modules:
        with torch.device(device), (_NoMetaFill() if meta else nullcontext()):
            try:
                built[module.name] = instantiate(module)
            except Exception as err:  # noqa: BLE001 -- a block's own argument checks
                raise spec.error(f"cannot build block: {err}", "modules", module.name) from None
    return built


def count_parameters(modules: dict[str, nn.Module]) -> dict[str, int]:
    """name -> number of parameters."""
    return {name: sum(p.numel() for p in m.parameters()) for name, m in modules.items()}
