"""Every registry entry: builds on meta and on CPU from keyword args, runs a forward with the
same output shape on both, initializes deterministically, and rejects unknown args."""
import inspect
from dataclasses import dataclass

import pytest
import torch

from composer.blocks import BLOCKS


@dataclass(frozen=True)
class Labels:
    """An input of int64 class labels [batch] in [0, classes)."""

    batch: int
    classes: int


# name -> (valid kwargs, input shapes, output shape); inputs of shape [B] are diffusion times
EXAMPLES = {
    "Linear": ({"in_features": 3, "out_features": 5}, [(4, 3)], (4, 5)),
    "ReLU": ({}, [(4, 3)], (4, 3)),
    "LeakyReLU": ({"negative_slope": 0.1}, [(4, 3)], (4, 3)),
    "Tanh": ({}, [(4, 3)], (4, 3)),
    "Sigmoid": ({}, [(4, 3)], (4, 3)),
    "SiLU": ({}, [(4, 3)], (4, 3)),
    "Conv2d": ({"in_channels": 1, "out_channels": 4, "kernel_size": 3, "padding": 1}, [(2, 1, 8, 8)], (2, 4, 8, 8)),
    "ConvTranspose2d": ({"in_channels": 4, "out_channels": 2, "kernel_size": 4, "stride": 2, "padding": 1},
                        [(2, 4, 4, 4)], (2, 2, 8, 8)),
    "BatchNorm": ({"num_features": 4}, [(2, 4, 3, 3)], (2, 4, 3, 3)),
    "InstanceNorm": ({"num_features": 4}, [(2, 4, 3, 3)], (2, 4, 3, 3)),
    "GroupNorm": ({"num_groups": 2, "num_channels": 4}, [(2, 4, 3, 3)], (2, 4, 3, 3)),
    "Dropout": ({"p": 0.1}, [(4, 3)], (4, 3)),
    "Flatten": ({}, [(2, 1, 8, 8)], (2, 64)),
    "Reshape": ({"shape": [1, 8, 8]}, [(2, 64)], (2, 1, 8, 8)),
    "Rearrange": ({"pattern": "b c h w -> b (h w) c"}, [(2, 3, 4, 5)], (2, 20, 3)),
    "MLP": ({"in_features": 2, "hidden": 16, "depth": 2, "out_features": 1}, [(4, 2)], (4, 1)),
    "ResidualMLP": ({"features": 6}, [(4, 6)], (4, 6)),
    "ResidualConv": ({"channels": 4, "norm": "group"}, [(2, 4, 8, 8)], (2, 4, 8, 8)),
    "DCGANGenerator": ({"image_size": 8, "channels": 1, "latent": 4, "width": 8}, [(2, 4)], (2, 1, 8, 8)),
    "DCGANDiscriminator": ({"image_size": 8, "channels": 1, "width": 8}, [(2, 1, 8, 8)], (2,)),
    "ResnetGenerator": ({"in_channels": 1, "out_channels": 1, "width": 8, "n_blocks": 1}, [(2, 1, 16, 16)],
                        (2, 1, 16, 16)),
    "PatchDiscriminator": ({"in_channels": 1, "width": 8, "n_layers": 2}, [(2, 1, 16, 16)], (2, 1, 2, 2)),
    "SinusoidalTimeEmbedding": ({"dim": 8}, [(3,)], (3, 8)),
    "FourierTimeEmbedding": ({"dim": 8}, [(3,)], (3, 8)),
    "TimeMLP": ({"features": 2, "hidden": 16, "depth": 2, "time_dim": 8}, [(4, 2), (4,)], (4, 2)),
    "UNet": ({"channels": 1, "width": 8, "num_res_blocks": 1, "attention_levels": [1]},
             [(2, 1, 8, 8), (2,)], (2, 1, 8, 8)),
    "ConvEncoder": ({"in_channels": 1, "latent_channels": 2, "width": 8}, [(2, 1, 8, 8)], (2, 2, 4, 4)),
    "ConvDecoder": ({"out_channels": 1, "latent_channels": 2, "width": 8}, [(2, 2, 4, 4)], (2, 1, 8, 8)),
    "ClassEmbedding": ({"num_classes": 10, "dim": 8, "null": True}, [Labels(3, 10)], (3, 8)),
    "ConditionalDCGANGenerator": (
        {"image_size": 8, "channels": 1, "latent": 4, "num_classes": 10, "width": 8},
        [(2, 4), Labels(2, 10)], (2, 1, 8, 8)),
    "ConditionalDCGANDiscriminator": ({"image_size": 8, "channels": 1, "num_classes": 10, "width": 8},
                                      [(2, 1, 8, 8), Labels(2, 10)], (2,)),
    "PairDiscriminator": ({"image_size": 8, "channels": 1, "latent": 4, "width": 8, "hidden": 16},
                          [(2, 1, 8, 8), (2, 4)], (2,)),
    "UNetGenerator": ({"in_channels": 1, "out_channels": 2, "image_size": 8, "width": 8}, [(2, 1, 8, 8)],
                      (2, 2, 8, 8)),
}


def _input(shape, g):
    if isinstance(shape, Labels):
        return torch.randint(shape.classes, (shape.batch,), generator=g)
    return torch.rand(shape, generator=g) if len(shape) == 1 else torch.randn(shape, generator=g)


def _inputs(shapes, device):
    g = torch.Generator().manual_seed(0)
    return [_input(s, g).to(device) for s in shapes]


def test_every_block_has_an_example():
    assert set(EXAMPLES) == set(BLOCKS)


@pytest.mark.parametrize("name", sorted(BLOCKS))
def test_block_builds_and_runs_on_meta(name):
    kwargs, shapes, out_shape = EXAMPLES[name]
    with torch.device("meta"):
        block = BLOCKS[name](**kwargs)
        y = block(*_inputs(shapes, "meta"))
    assert y.device.type == "meta"
    assert tuple(y.shape) == out_shape


@pytest.mark.parametrize("name", sorted(BLOCKS))
def test_block_runs_on_cpu_with_the_meta_shape(name):
    kwargs, shapes, out_shape = EXAMPLES[name]
    torch.manual_seed(0)
    y = BLOCKS[name](**kwargs)(*_inputs(shapes, "cpu"))
    assert tuple(y.shape) == out_shape
    assert torch.isfinite(y).all()


@pytest.mark.parametrize("name", sorted(BLOCKS))
def test_block_init_is_deterministic_given_the_seed(name):
    kwargs = EXAMPLES[name][0]
    torch.manual_seed(1)
    a = BLOCKS[name](**kwargs).state_dict()
    torch.manual_seed(1)
    b = BLOCKS[name](**kwargs).state_dict()
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("name", sorted(BLOCKS))
def test_signature_is_keyword_only_and_rejects_unknown_args(name):
    signature = inspect.signature(BLOCKS[name])
    kwargs = EXAMPLES[name][0]
    signature.bind(**kwargs)
    assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in signature.parameters.values())
    with pytest.raises(TypeError):
        signature.bind(**kwargs, not_an_arg=1)
