"""`pretrained:` of a bridged block: where its configuration and weights come from, and loading
them strictly.

A value is, in this order:
  * a local folder written by `save_pretrained` (config.json + *.safetensors, the diffusers,
    transformers or timm layout; a sharded model's *.safetensors.index.json is followed);
  * a local .safetensors file: the YAML keywords build the model, the file's tensors load into it;
  * a hub id `org/name` (or `org/name/subfolder`): only from the local Hugging Face cache, unless
    the block says `allow_download: true` and HF_HUB_OFFLINE is not set; then only *.json and
    *.safetensors files are fetched.
A .safetensors file that composer exported (`composer export RUN --format safetensors --module M`)
holds the module's keys as composer named them, under the bridge adapter's attribute `model.`;
that prefix is read away, so a stage-1 run's exported module is a stage-2 graph's `pretrained:`.
Relative paths are relative to the graph file's folder (the spec layer resolves them, as for
`weights:`), else to the working directory. Pickled weights (.bin, .pt, .pth, .ckpt) are refused:
loading them can execute code. No `trust_remote_code` anywhere.

On the meta device (`composer validate`, the shape check) nothing is read but the files'
headers: key names and shapes are checked against the model, so a mismatch shows before a run.
"""
from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

import torch

PICKLED = (".bin", ".pt", ".pth", ".ckpt", ".pkl")
ADAPTER_PREFIX = "model."   # every bridge adapter holds the library model as `self.model`
HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+(/[\w.-]+)*$")


@dataclass(frozen=True)
class Source:
    where: str                   # as written, for messages
    config: dict | None          # the folder's config.json, when it has one
    files: tuple[Path, ...]      # safetensors files, in order; empty: config only (meta check)


def locate(pretrained: str, allow_download: bool = False, meta: bool = False) -> Source:
    """The config and weight files `pretrained` names (see the module docstring)."""
    if not isinstance(pretrained, str) or not pretrained:
        raise ValueError(f"pretrained: takes a path or a hub id, got {pretrained!r}")
    if not isinstance(allow_download, bool):
        raise ValueError(f"allow_download: takes true or false, got {allow_download!r}")
    path = Path(pretrained).expanduser()
    if path.exists():
        return _local(pretrained, path)
    if path.is_absolute() or pretrained.startswith(".") or path.suffix in (".safetensors", *PICKLED) \
            or not HUB_ID.match(pretrained):
        raise ValueError(f"pretrained: {pretrained} not found (relative paths are read from the graph "
                         f"file's folder, else from the working directory {os.getcwd()})")
    return _local(pretrained, _from_hub(pretrained, allow_download, meta))


def _local(where: str, path: Path) -> Source:
    if path.is_file():
        _refuse_pickle(path)
        if path.suffix != ".safetensors":
            raise ValueError(f"pretrained: {where} is not a .safetensors file or a save_pretrained folder")
        return Source(where, None, (path,))
    config_file = path / "config.json"
    config = json.loads(config_file.read_text()) if config_file.is_file() else None
    files = _weight_files(path)
    if not files:
        pickled = sorted(p.name for p in path.iterdir() if p.suffix in PICKLED)
        if pickled:
            _refuse_pickle(path / pickled[0])
        if config is None:
            raise ValueError(f"pretrained: {where} holds neither config.json nor *.safetensors files")
    return Source(where, config, files)


def _refuse_pickle(path: Path) -> None:
    if path.suffix in PICKLED:
        raise ValueError(f"pretrained: {path} holds pickled weights ({path.suffix}); composer reads "
                         "safetensors only, as unpickling can run code. Convert it once where you trust "
                         "the file: safetensors.torch.save_file(torch.load(path), 'model.safetensors')")


def _weight_files(folder: Path) -> tuple[Path, ...]:
    """The folder's safetensors: those its index names, else the one file without a variant
    (`diffusion_pytorch_model.fp16.safetensors` is a variant), else all of them."""
    indexes = sorted(folder.glob("*.safetensors.index.json"))
    if indexes:
        shards = json.loads(indexes[0].read_text()).get("weight_map", {}).values()
        return tuple(folder / name for name in sorted(set(shards)))
    files = sorted(folder.glob("*.safetensors"))
    plain = [f for f in files if f.name.count(".") == 1]
    return tuple(plain if len(plain) == 1 else files)


def _from_hub(ref: str, allow_download: bool, meta: bool) -> Path:
    """A hub id's folder in the local cache; fetched (json and safetensors only) when allowed."""
    from huggingface_hub import snapshot_download

    parts = ref.split("/")
    repo, sub = "/".join(parts[:2]), "/".join(parts[2:])
    offline = os.environ.get("HF_HUB_OFFLINE", "").strip().upper() in ("1", "ON", "YES", "TRUE")
    local_only = offline or not allow_download
    kinds = ("*.json",) if meta else ("*.json", "*.safetensors")   # validate fetches configs only
    patterns = [f"{sub}/{k}" if sub else k for k in kinds]
    try:
        folder = snapshot_download(repo, local_files_only=local_only, allow_patterns=patterns)
    except Exception as err:  # noqa: BLE001 -- the hub's errors are many; the message says what to do
        why = ("HF_HUB_OFFLINE is set" if offline else "allow_download is false") if local_only else str(err)
        raise ValueError(f"pretrained: '{ref}' is not a local path and is not in the local Hugging Face "
                         f"cache ({why}); download it yourself, or set `allow_download: true` on the block "
                         "(with HF_HUB_OFFLINE unset) to fetch its config and safetensors files") from None
    return Path(folder) / sub


# ------------------------------------------------------------------------------ loading
def load_weights(model: torch.nn.Module, source: Source, *, optional=frozenset(), drop=None) -> None:
    """Load the source's tensors into `model`, strictly: every key present with its shape, none
    left over. `optional`: keys the file may lack (tied weights); `drop(key)`: file keys to ignore
    (a classifier the block does not have). On the meta device only the headers are checked."""
    if not source.files:
        return
    shapes = _file_shapes(source.files)
    own = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    prefix = ADAPTER_PREFIX if _exported(shapes, own) else ""
    shapes = {k[len(prefix):]: s for k, s in shapes.items()}
    if drop is not None:
        shapes = {k: s for k, s in shapes.items() if not drop(k)}
    _check_keys(source.where, own, shapes, optional)
    if any(p.is_meta for p in model.parameters()):
        return
    from safetensors.torch import load_file

    tensors = {}
    for file in source.files:
        tensors.update({k[len(prefix):]: v for k, v in load_file(file).items() if k[len(prefix):] in own})
    model.load_state_dict(tensors, strict=not optional)
    if optional and hasattr(model, "tie_weights"):
        model.tie_weights()


def _exported(found: dict, own: dict) -> bool:
    """Whether the file's keys are composer's names of the adapter block (`model.` + the
    library's keys), as `composer export --module` writes them, rather than the library's own."""
    return bool(found) and all(k.startswith(ADAPTER_PREFIX) for k in found) \
        and any(k[len(ADAPTER_PREFIX):] in own for k in found) and not any(k in own for k in found)


def _file_shapes(files) -> dict[str, tuple]:
    from safetensors import safe_open

    shapes = {}
    for file in files:
        with safe_open(file, framework="pt") as f:
            shapes.update({k: tuple(f.get_slice(k).get_shape()) for k in f.keys()})
    return shapes


def _check_keys(where: str, own: dict, found: dict, optional) -> None:
    missing = sorted(k for k in own if k not in found and k not in optional)
    unexpected = sorted(k for k in found if k not in own)
    wrong = sorted(f"{k} {list(found[k])} (the block's is {list(own[k])})"
                   for k in own if k in found and tuple(found[k]) != own[k])
    problems = [f"{what} {_few(keys)}" for what, keys in (("missing keys", missing),
                ("unexpected keys", unexpected), ("shape mismatches", wrong)) if keys]
    if problems:
        raise ValueError(f"pretrained: {where} does not match the block's weights: " + "; ".join(problems)
                         + " (the config keywords in YAML must describe the saved model)")


def _few(keys: list, n: int = 6) -> str:
    return ", ".join(keys[:n]) + (f" and {len(keys) - n} more" if len(keys) > n else "")
