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

    from composer.graph.spectral import apply_spectral_norm

    if module.layers:
        return nn.Sequential(*(instantiate(layer) for layer in module.layers))
    block = BLOCKS[module.block](**module.args)
    return apply_spectral_norm(block, module.block) if module.spectral_norm else block


class _NoMetaFill(TorchFunctionMode):
    """Skips in-place random fills of meta tensors while blocks are built on the meta device:
    their values do not exist there, and torch's meta kernel of `normal_` (DCGAN init,
    embeddings) imports torch._dynamo, which costs seconds of start-up for `composer validate`."""

    FILLS = {torch.Tensor.normal_, torch.Tensor.uniform_, nn.init.normal_, nn.init.uniform_, nn.init.trunc_normal_,
             nn.init.kaiming_uniform_, nn.init.kaiming_normal_, nn.init.xavier_uniform_, nn.init.xavier_normal_}

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        target = args[0] if args else kwargs.get("tensor")
        if func in self.FILLS and isinstance(target, torch.Tensor) and target.is_meta:
            return target
        return func(*args, **kwargs)


MAX_PARAMETERS = 20_000_000_000
MAX_TENSORS = 4096
MAX_MODULES = 8192
"""Caps on one module of a graph, enforced while it is built, so that `depth: 1000000` fails in
about a second instead of building for minutes: its parameters (counted as each is registered),
its parameter tensors and its registered submodules (the largest shipped graph has 266
submodules; a Stable Diffusion 1.5 UNet has 686 parameter tensors, an SDXL UNet about 1,700)."""


class OverBudget(Exception):
    """A module being built passed MAX_PARAMETERS or MAX_MODULES."""


class _Budget:
    """Counts the parameters and submodules registered while a block is built (torch's global
    registration hooks, so every block and bridge is covered) and stops the build past a cap."""

    def __init__(self, name: str):
        self.name, self.parameters, self.tensors, self.modules = name, 0, 0, 0

    def __enter__(self):
        from torch.nn.modules import module as torch_module

        self.handles = (torch_module.register_module_parameter_registration_hook(self._parameter),
                        torch_module.register_module_module_registration_hook(self._module))
        return self

    def __exit__(self, *exc):
        for handle in self.handles:
            handle.remove()
        return False

    def _parameter(self, module, name, param):
        self.parameters += param.numel() if param is not None else 0
        self.tensors += 1
        if self.tensors > MAX_TENSORS:   # a leaf layer is registered in its container only once built
            raise OverBudget(f"module '{self.name}' would have more than {MAX_TENSORS:,} parameter tensors "
                             "(weights and biases of its layers): check its depth and repeat counts")
        if self.parameters > MAX_PARAMETERS:
            raise OverBudget(f"module '{self.name}' would have more than {MAX_PARAMETERS:,} parameters: "
                             "check its sizes")

    def _module(self, module, name, submodule):
        self.modules += 1
        if self.modules > MAX_MODULES:
            raise OverBudget(f"module '{self.name}' would have more than {MAX_MODULES:,} layers and "
                             "submodules: check its depth and repeat counts")


def build_modules(spec: Spec, device: str | torch.device = "cpu") -> dict[str, nn.Module]:
    """Every module of the spec, built on `device` within the caps above; a block's own argument
    errors are reported at its YAML entry."""
    built = {}
    meta = torch.device(device).type == "meta"
    for module in spec.modules:
        with torch.device(device), (_NoMetaFill() if meta else nullcontext()), _Budget(module.name):
            try:
                built[module.name] = instantiate(module)
            except OverBudget as err:
                raise spec.error(str(err), "modules", module.name) from None
            except Exception as err:  # noqa: BLE001 -- a block's own argument checks
                raise spec.error(f"cannot build block: {err}", "modules", module.name) from None
    return built


def count_parameters(modules: dict[str, nn.Module]) -> dict[str, int]:
    """name -> number of parameters."""
    return {name: sum(p.numel() for p in m.parameters()) for name, m in modules.items()}
