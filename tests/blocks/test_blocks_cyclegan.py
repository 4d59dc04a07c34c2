import torch
from torch import nn

from composer.blocks import BLOCKS

G, D = BLOCKS["ResnetGenerator"], BLOCKS["PatchDiscriminator"]


def _count(module):
    return sum(p.numel() for p in module.parameters())


def test_parameter_counts_match_the_reference_resnet_9blocks_and_basic_patchgan():
    with torch.device("meta"):
        g = G(in_channels=3, out_channels=3, width=64, n_blocks=9)
        d = D(in_channels=3, width=64, n_layers=3, norm="instance")
    assert _count(g) == 11_378_179
    assert _count(d) == 2_764_737


def test_reference_patchgan_map_is_30x30_on_256x256():
    with torch.device("meta"):
        d = D(in_channels=3)
        assert d(torch.empty(1, 3, 256, 256)).shape == (1, 1, 30, 30)


def test_batch_norm_variant_drops_conv_biases():
    with torch.device("meta"):
        g = G(in_channels=3, out_channels=3, width=8, n_blocks=1, norm="batch")
    convs = [m for m in g.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))]
    assert [m.bias is not None for m in convs] == [False] * (len(convs) - 1) + [True]


def test_small_generator_and_discriminator_on_16x16():
    torch.manual_seed(0)
    g = G(in_channels=1, out_channels=1, width=16, n_blocks=2)
    d = D(in_channels=1, width=16, n_layers=2)
    x = torch.rand(2, 1, 16, 16) * 2 - 1
    y = g(x)
    assert y.shape == x.shape and y.abs().max() <= 1
    assert d(y).shape == (2, 1, 2, 2)


def test_init_is_normal_002_with_zero_biases():
    torch.manual_seed(0)
    g = G(in_channels=3, out_channels=3, width=16, n_blocks=2)
    convs = [m for m in g.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))]
    weights = torch.cat([m.weight.flatten() for m in convs])
    assert abs(weights.std().item() - 0.02) < 1e-3
    assert all(torch.count_nonzero(m.bias) == 0 for m in convs)
