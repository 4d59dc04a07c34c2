"""`weights:` files checked at validate: each is a regular file inside the project
(`composer.spec.paths.weights_file`) whose safetensors header names exactly the module's
parameters and buffers, with their shapes, so a wrong file fails before training, not at run.

Only the header is read (8 bytes of length, then at most `MAX_HEADER` bytes of JSON): no tensor
data, and no message quotes the file's bytes, whatever file a graph names.
"""
from __future__ import annotations

import json
from pathlib import Path

from torch import nn

from composer.spec.paths import weights_file
from composer.spec.schema import Spec

MAX_HEADER = 100 * 2**20     # safetensors' own limit on the JSON header


class NotSafetensors(ValueError):
    """The file is not a safetensors file (the reason names no byte of it)."""


def tensor_shapes(path: Path) -> dict[str, tuple[int, ...]]:
    """name -> shape of every tensor of a safetensors file, from its header alone."""
    size = path.stat().st_size
    with open(path, "rb") as f:
        head = f.read(8)
        length = int.from_bytes(head, "little") if len(head) == 8 else -1
        if length < 2 or length > min(MAX_HEADER, size - 8):
            raise NotSafetensors(f"not a safetensors file ({size:,} bytes, no valid header length)")
        try:
            header = json.loads(f.read(length))
        except ValueError:
            raise NotSafetensors("not a safetensors file (its header is not JSON)") from None
    if not isinstance(header, dict):
        raise NotSafetensors("not a safetensors file (its header is not a JSON object)")
    shapes = {}
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        shape = entry.get("shape") if isinstance(entry, dict) else None
        if not isinstance(shape, list) or not all(isinstance(d, int) and d >= 0 for d in shape):
            raise NotSafetensors("not a safetensors file (a tensor entry has no valid shape)")
        shapes[name] = tuple(shape)
    return shapes


def matching(shapes: dict, name: str, expected: dict) -> dict | None:
    """The tensors of the file meant for module `name`: keys prefixed `ema.NAME.` (preferred, as
    in a run's modules.safetensors), `NAME.`, or bare, whichever names exactly its state."""
    for prefix in (f"ema.{name}.", f"{name}.", ""):
        chosen = {k[len(prefix):]: v for k, v in shapes.items() if k.startswith(prefix)}
        if chosen and set(chosen) == set(expected):
            return chosen
    return None


def check_weight_files(spec: Spec, modules: dict[str, nn.Module]) -> None:
    """Every `weights:` file fits its module (built on the meta device), or a SpecError."""
    for module in spec.modules:
        if not module.weights:
            continue
        path = weights_file(spec, module)
        at = ("modules", module.name, "weights")
        try:
            shapes = tensor_shapes(path)
        except (NotSafetensors, OSError) as err:
            raise spec.error(f"{path}: {err}", *at) from None
        expected = {k: tuple(v.shape) for k, v in modules[module.name].state_dict().items()}
        chosen = matching(shapes, module.name, expected)
        if chosen is None:
            named = {k.removeprefix(f"ema.{module.name}.").removeprefix(f"{module.name}.") for k in shapes}
            missing = sorted(set(expected) - named)
            raise spec.error(f"{path} holds no weights matching module '{module.name}' ({len(shapes)} tensors; "
                             f"missing e.g. {', '.join(missing[:3]) or 'none: it holds others too'})", *at)
        wrong = [k for k in sorted(expected) if chosen[k] != expected[k]]
        if wrong:
            k = wrong[0]
            raise spec.error(f"{path} does not fit module '{module.name}': {k} has shape {list(chosen[k])}, "
                             f"the module's is {list(expected[k])} ({len(wrong)} tensor(s) differ)", *at)
