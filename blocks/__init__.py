"""The module library: every block a graph's `modules:` section can name, one line each.

A block is a small final `nn.Module` whose `__init__` takes explicit keyword-only arguments
(the YAML args of a module, checked with `inspect.signature(cls).bind(**args)`) and whose
`forward` takes positional tensors; time-conditioned denoisers take `(x, t)` with t [B] in [0, 1]
(and `(x, t, y)` when class-conditional); class labels y are int64 [B], −1 the null condition
where a block supports classifier-free guidance.
Every block builds and runs on the `meta` device.

Models of diffusers, timm and transformers are blocks too, through the namespaces registered at
the end (`diffusers.<ModelClass>`, `transformers.<ModelClass>`, `timm`; composer/blocks/bridges/):
their libraries are imported only when a graph names one of their blocks.
"""
from __future__ import annotations

from composer.registry import Registry

from composer.blocks.bridges import NAMESPACES
from composer.blocks.attention import SelfAttention2d
from composer.blocks.autoencoder import ConvDecoder, ConvEncoder
from composer.blocks.basic import BatchNorm, Conv2d, ConvTranspose2d, Dropout, Flatten, GroupNorm, InstanceNorm, LeakyReLU, Linear, Rearrange, ReLU, Reshape, Sigmoid, SiLU, Tanh
from composer.blocks.conditional import ClassEmbedding, ConditionalDCGANDiscriminator, ConditionalDCGANGenerator, PairDiscriminator, UNetGenerator
from composer.blocks.cyclegan import PatchDiscriminator, ResnetGenerator
from composer.blocks.dcgan import DCGANDiscriminator, DCGANGenerator
from composer.blocks.diffusion import FourierTimeEmbedding, SinusoidalTimeEmbedding, TimeMLP
from composer.blocks.quantizer import VectorQuantizer
from composer.blocks.residual import MLP, ResidualConv, ResidualMLP
from composer.blocks.unet import UNet

BLOCKS = Registry("block", {
    # basic
    "Linear": Linear,
    "ReLU": ReLU,
    "LeakyReLU": LeakyReLU,
    "Tanh": Tanh,
    "Sigmoid": Sigmoid,
    "SiLU": SiLU,
    "Conv2d": Conv2d,
    "ConvTranspose2d": ConvTranspose2d,
    "BatchNorm": BatchNorm,
    "InstanceNorm": InstanceNorm,
    "GroupNorm": GroupNorm,
    "Dropout": Dropout,
    "Flatten": Flatten,
    "Reshape": Reshape,
    "Rearrange": Rearrange,
    # residual
    "MLP": MLP,
    "ResidualMLP": ResidualMLP,
    "ResidualConv": ResidualConv,
    # attention
    "SelfAttention2d": SelfAttention2d,
    # dcgan
    "DCGANGenerator": DCGANGenerator,
    "DCGANDiscriminator": DCGANDiscriminator,
    # cyclegan
    "ResnetGenerator": ResnetGenerator,
    "PatchDiscriminator": PatchDiscriminator,
    # diffusion
    "SinusoidalTimeEmbedding": SinusoidalTimeEmbedding,
    "FourierTimeEmbedding": FourierTimeEmbedding,
    "TimeMLP": TimeMLP,
    "UNet": UNet,
    # autoencoder
    "ConvEncoder": ConvEncoder,
    "ConvDecoder": ConvDecoder,
    # quantizer
    "VectorQuantizer": VectorQuantizer,
    # conditional
    "ClassEmbedding": ClassEmbedding,
    "ConditionalDCGANGenerator": ConditionalDCGANGenerator,
    "ConditionalDCGANDiscriminator": ConditionalDCGANDiscriminator,
    "PairDiscriminator": PairDiscriminator,
    "UNetGenerator": UNetGenerator,
})

for _prefix, _resolver in NAMESPACES.items():
    BLOCKS.namespace(_prefix, _resolver)

REGISTRIES = {"blocks": BLOCKS}   # what this package declares (composer.registry.get)

__all__ = ["BLOCKS", *BLOCKS]
