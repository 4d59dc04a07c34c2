"""One module as a file: its weights in safetensors and its block description in JSON.

    G.safetensors        the module's state dict (EMA copy where kept, with its batch-norm
                         statistics re-estimated as for sampling), no prefix
    G.safetensors.json   {"format": "composer.module", "version": 1, "composer": "0.1.0",
                          "module": "G", "block": "DCGANGenerator", "args": {...}, ...}
                         (a list of blocks: "layers": [{"block": ..., "args": ...}, ...])

The description is also stored in the safetensors header (`__metadata__["composer.module"]`), so
the weights file alone suffices. `load_module` builds the block through the blocks registry with
exactly those keyword arguments and loads the weights strictly: nothing is unpickled or imported
by name from the file.
"""
from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from composer.errors import ComposerError, did_you_mean
from composer.graph.spectral import folded_state_dict, is_spectral

FORMAT, VERSION = "composer.module", 1
METADATA_KEY = "composer.module"


def version() -> str:
    from importlib.metadata import PackageNotFoundError, version as installed

    try:
        return installed("composer-graphs")
    except PackageNotFoundError:
        return "unknown"


def header(runner, format: str) -> dict:
    """What every export records: its format, composer's version, the run's graph and step."""
    return {"format": format, "version": VERSION, "composer": version(), "graph": runner.spec.name,
            "step": runner.step_count, "plugins": list(runner.spec.plugins)}


def describe(spec, name: str) -> dict:
    """The block description of module `name`: {"block", "args"} or {"layers": [...]}."""
    module = _module_spec(spec, name)
    return _description(module)


def _description(module) -> dict:
    if module.layers:
        return {"layers": [_description(layer) for layer in module.layers]}
    return {"block": module.block, "args": json.loads(json.dumps(module.args))}


def _module_spec(spec, name: str):
    found = {m.name: m for m in spec.modules}
    if name not in found:
        raise ComposerError(f"module '{name}': the graph '{spec.name}' has no module of that name"
                            f"{did_you_mean(name, found)}")
    return found[name]


def module_record(runner, name: str, ema: bool = True) -> tuple[dict, dict]:
    """(description, tensors) of one module of a Runner: the weights generation uses (EMA where
    kept, unless `ema` is False)."""
    description = {**header(runner, FORMAT), "module": name, **describe(runner.spec, name)}
    module = runner.unwrapped(name, ema=ema)
    description["weights"] = "ema" if ema and name in runner.ema else "trained"
    state = module.state_dict()
    if is_spectral(module):   # the plain block's weights, W / σ: load_module builds it without SN
        state = folded_state_dict(module)
        description["spectral_norm"] = "folded into the weights"
    tensors = {k: v.detach().cpu().contiguous() for k, v in state.items()}
    description["parameters"] = sum(p.numel() for p in module.parameters())
    return description, tensors


def write_module(runner, name: str, out: Path, ema: bool = True) -> list[Path]:
    description, tensors = module_record(runner, name, ema)
    if not tensors:
        raise ComposerError(f"module '{name}' has no weights to export")
    save_file(tensors, str(out), metadata={METADATA_KEY: json.dumps(description)})
    sidecar = out.with_name(out.name + ".json")
    sidecar.write_text(json.dumps(description, indent=2) + "\n")
    return [out, sidecar]


def build(description: dict, plugins=()) -> torch.nn.Module:
    """The block (or list of blocks) a description names, built through the blocks registry."""
    from composer import plugins as plugin_loader
    from composer import registry

    for plugin in plugins:
        plugin_loader.load(plugin)
    if "layers" in description:
        return torch.nn.Sequential(*(build(layer) for layer in description["layers"]))
    blocks = registry.get("blocks")
    block = description.get("block")
    if block not in blocks:
        raise ComposerError(blocks.unknown(block))
    try:
        return blocks[block](**description.get("args", {}))
    except Exception as err:  # noqa: BLE001 -- a block's own argument checks
        raise ComposerError(f"cannot build block {block}: {err}") from None


def load_module(source, name: str | None = None, ema: bool = True) -> torch.nn.Module:
    """A plain nn.Module in eval mode from a Runner and a module name, or from an exported
    .safetensors file (its description beside it or in its header)."""
    if not isinstance(source, (str, Path)):
        return _from_record(*module_record(source, _named(source, name), ema))
    path = Path(source)
    if not path.is_file():
        raise ComposerError(f"{path}: no such module file")
    return _from_file(path, name)


def _named(runner, name: str | None) -> str:
    modules = [m.name for m in runner.spec.modules]
    if name is None or name not in modules:
        given = "no module name given" if name is None else f"no module '{name}'"
        hint = did_you_mean(name, modules) if name is not None else f" (one of: {', '.join(modules)})"
        raise ComposerError(f"{given} in the run of graph '{runner.spec.name}'{hint}")
    return name


def _from_file(path: Path, name: str | None) -> torch.nn.Module:
    description = read_description(path)
    if name is not None and name != description.get("module"):
        raise ComposerError(f"{path} holds module '{description.get('module')}', not '{name}'"
                            f"{did_you_mean(name, [description.get('module')])}")
    try:
        tensors = load_file(str(path))
    except Exception as err:  # noqa: BLE001
        raise ComposerError(f"{path}: not a readable safetensors file ({err})") from None
    return _from_record(description, tensors)


def read_description(path: Path) -> dict:
    """The JSON description of an exported module: PATH.json, else the safetensors header."""
    sidecar = path.with_name(path.name + ".json")
    if sidecar.is_file():
        description = json.loads(sidecar.read_text())
    else:
        try:
            with safe_open(str(path), framework="pt") as f:
                text = (f.metadata() or {}).get(METADATA_KEY)
        except Exception as err:  # noqa: BLE001
            raise ComposerError(f"{path}: not a readable safetensors file ({err})") from None
        if text is None:
            raise ComposerError(f"{path} has no block description: neither {sidecar.name} beside it nor "
                                f"'{METADATA_KEY}' in its header (export it with composer export --format safetensors)")
        description = json.loads(text)
    if description.get("format") != FORMAT:
        raise ComposerError(f"{path}: its description is not a composer module (format {description.get('format')!r})")
    return description


def _from_record(description: dict, tensors: dict) -> torch.nn.Module:
    module = build(description, description.get("plugins", ()))
    try:
        module.load_state_dict(tensors, strict=True)
    except RuntimeError as err:
        raise ComposerError(f"the weights do not fit block {description.get('block', 'list')}: "
                            f"{str(err).splitlines()[0]}") from None
    return module.eval()
