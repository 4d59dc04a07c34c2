"""Bridges: models of diffusers, timm and transformers as composer blocks.

Each library is a namespace of the block registry (`BLOCKS.namespace(...)` in
composer/blocks/__init__.py): `diffusers.<ModelClass>`, `transformers.<ModelClass>` and the
block `timm`. Nothing here imports a library until a graph names one of its blocks, so
`composer validate` of a graph without them starts as fast as before; a library that is not
installed is reported at the `block:` line with its `pip install 'composer-graphs[...]'`.
See each bridge's module for its table of conventions, and bridges/pretrained.py for
`pretrained:`.
"""
from __future__ import annotations

from composer.blocks.bridges.diffusers_models import DiffusersNamespace
from composer.blocks.bridges.timm_models import TimmNamespace
from composer.blocks.bridges.transformers_models import TransformersNamespace

NAMESPACES = {
    "diffusers": DiffusersNamespace(),
    "timm": TimmNamespace(),
    "transformers": TransformersNamespace(),
}

__all__ = ["NAMESPACES"]
