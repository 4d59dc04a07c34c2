import pytest
import torch
from torch import nn

from composer.blocks import BLOCKS
from composer.blocks.basic import activation, conv_bias, gan_init_, norm_2d


def test_batch_norm_normalizes_vectors_and_feature_maps():
    torch.manual_seed(0)
    bn = BLOCKS["BatchNorm"](num_features=3)
    for shape in [(64, 3), (16, 3, 4, 4)]:
        x = 5 + 3 * torch.randn(shape)
        y = bn(x)
        dims = [d for d in range(x.dim()) if d != 1]
        assert torch.allclose(y.mean(dims), torch.zeros(3), atol=1e-5)
        assert torch.allclose(y.var(dims, unbiased=False), torch.ones(3), atol=1e-3)


def test_batch_norm_state_dict_matches_torch():
    bn = BLOCKS["BatchNorm"](num_features=3)
    assert bn.state_dict().keys() == nn.BatchNorm2d(3).state_dict().keys()


def test_batch_norm_rejects_a_vector_without_channels():
    with pytest.raises(ValueError, match=r"BatchNorm expects \[B, C, ...\] input, got shape \(4,\)"):
        BLOCKS["BatchNorm"](num_features=4)(torch.randn(4))


def test_instance_norm_defaults_have_no_parameters_or_buffers():
    norm = BLOCKS["InstanceNorm"](num_features=4)
    assert list(norm.parameters()) == [] and list(norm.buffers()) == []


def test_reshape_keeps_the_batch_axis():
    x = torch.arange(2 * 64.0).reshape(2, 64)
    y = BLOCKS["Reshape"](shape=[1, 8, -1])(x)
    assert y.shape == (2, 1, 8, 8)
    assert torch.equal(y.flatten(1), x)


def test_rearrange_with_axes():
    block = BLOCKS["Rearrange"](pattern="b (c h w) -> b c h w", axes={"c": 1, "h": 4, "w": 4})
    assert block(torch.randn(3, 16)).shape == (3, 1, 4, 4)


def test_leaky_relu_default_slope():
    y = BLOCKS["LeakyReLU"]()(torch.tensor([-1.0, 2.0]))
    assert torch.allclose(y, torch.tensor([-0.2, 2.0]))


def test_activation_helper_rejects_unknown_names():
    assert isinstance(activation("silu"), nn.SiLU)
    with pytest.raises(ValueError, match=r"activation='gelu'; expected one of \('relu', 'leaky_relu'"):
        activation("gelu")


def test_norm_helpers():
    assert isinstance(norm_2d("group", 12), nn.GroupNorm) and norm_2d("group", 12).num_groups == 4
    assert isinstance(norm_2d("none", 3), nn.Identity)
    assert conv_bias("instance") and conv_bias("none") and not conv_bias("batch")
    with pytest.raises(ValueError, match=r"norm='layer'; expected one of \('batch', 'instance', 'group', 'none'\)"):
        norm_2d("layer", 4)


def test_gan_init_statistics():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(64, 64, 3), nn.BatchNorm2d(4096), nn.Linear(512, 256))
    gan_init_(net)
    assert abs(net[0].weight.std().item() - 0.02) < 1e-3
    assert abs(net[1].weight.mean().item() - 1.0) < 2e-3
    assert torch.count_nonzero(net[0].bias) == 0 and torch.count_nonzero(net[2].bias) == 0
