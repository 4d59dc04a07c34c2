"""`spectral_norm: true` on a module: every weight matrix of the block divided by its largest
singular value (Miyato et al. 2018, "Spectral Normalization for Generative Adversarial Networks").

Applied with torch.nn.utils.parametrizations.spectral_norm (the maintained API; the older
torch.nn.utils.spectral_norm hook is deprecated, breaks deepcopy-free state loading and does not
compose with other parametrizations). One power iteration per training forward call, as the
paper. Its state, the vectors `u` and `v`, are buffers of the parametrization, so they live in the
module's state_dict (`LAYER.parametrizations.weight._u`, `._v`, the raw weight under
`LAYER.parametrizations.weight.original`): checkpoints, resume and the EMA copy (which takes buffers
as they are) carry them with no special case.

Which layers: every Conv (1d/2d/3d), ConvTranspose, Linear and Embedding of the block, the final
layer included, as Miyato et al. normalise every layer of the critic; a projection critic's class
embedding too, as Miyato & Koyama 2018 (SNEmbedID). Norm layers (1-D weights) are left alone.
"""
from __future__ import annotations

import copy

import torch
from torch import nn
from torch.nn.utils import parametrize
from torch.nn.utils.parametrizations import spectral_norm

LAYERS = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d,
          nn.Linear, nn.Embedding)


def spectral_layers(module: nn.Module) -> list[nn.Module]:
    """The layers `apply_spectral_norm` normalises, in module order."""
    return [m for m in module.modules() if isinstance(m, LAYERS) and isinstance(m.weight, torch.Tensor)
            and not parametrize.is_parametrized(m, "weight")]


def apply_spectral_norm(module: nn.Module, name: str = "block") -> nn.Module:
    """Wrap every weight of `LAYERS` in `module` with a spectral-norm parametrization (in place).
    A block with none of them is a ValueError: the option would silently do nothing."""
    layers = spectral_layers(module)
    if not layers:
        raise ValueError(f"spectral_norm: {name} has no Conv, ConvTranspose, Linear or Embedding weight "
                         "to normalise")
    for layer in layers:
        spectral_norm(layer)   # dim 1 for ConvTranspose (its output channels), else 0
    return module


def is_spectral(module: nn.Module) -> bool:
    """Whether any layer of `module` carries a spectral-norm parametrization."""
    return any(parametrize.is_parametrized(m, "weight") for m in module.modules())


def folded_state_dict(module: nn.Module) -> dict[str, torch.Tensor]:
    """`module`'s state with each normalised weight stored as its current value W / σ under the
    plain key (`LAYER.weight`) and no `u`, `v`: the state of the same block built without
    `spectral_norm`, for export. Reads σ from the stored `u`, `v` (no power iteration) and leaves
    `module` as it was (folding a deepcopy in place would not: torch's parametrized class is shared
    between copies)."""
    state = {k: v for k, v in module.state_dict().items() if ".parametrizations.weight." not in f".{k}"}
    training = module.training
    module.eval()
    try:
        with torch.no_grad():
            for name, layer in module.named_modules():
                if parametrize.is_parametrized(layer, "weight"):
                    state[f"{name}.weight" if name else "weight"] = layer.weight.detach().clone()
    finally:
        module.train(training)
    return state


def plain_copy(module: nn.Module) -> nn.Module:
    """A deep copy of `module` with each normalised weight folded to its current W / σ (read from
    the stored `u`, `v`), a plain parameter again: what tracing and ONNX export see (ONNX has no
    `vdot` for the parametrization). Each copied layer gets its own parametrized class first:
    torch's is shared with the original, and removing a parametrization edits that class."""
    duplicate = copy.deepcopy(module)
    training = duplicate.training
    duplicate.eval()
    for layer in duplicate.modules():
        if parametrize.is_parametrized(layer, "weight"):
            shared = layer.__class__
            layer.__class__ = type(shared.__name__, shared.__bases__, dict(shared.__dict__))
            parametrize.remove_parametrizations(layer, "weight", leave_parametrized=True)
    return duplicate.train(training)
