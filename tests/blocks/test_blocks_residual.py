import pytest
import torch
from torch import nn

from composer.blocks import BLOCKS


def test_residual_mlp_is_linear_relu_linear_plus_skip():
    torch.manual_seed(0)
    block = BLOCKS["ResidualMLP"](features=4, hidden=7)
    x = torch.randn(5, 4)
    expected = x + block.fc2(torch.relu(block.fc1(x)))
    assert torch.equal(block(x), expected)
    assert block.fc1.out_features == 7


def test_mlp_depth_counts_hidden_layers():
    mlp = BLOCKS["MLP"](in_features=2, hidden=32, depth=3, out_features=1, activation="leaky_relu",
                        out_activation="tanh")
    linears = [m for m in mlp.modules() if isinstance(m, nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(2, 32), (32, 32), (32, 32), (32, 1)]
    assert isinstance(mlp.net[-1], nn.Tanh)
    y = mlp(torch.randn(8, 2))
    assert y.shape == (8, 1) and y.abs().max() < 1


def test_mlp_depth_zero_is_one_linear():
    mlp = BLOCKS["MLP"](in_features=2, hidden=32, depth=0, out_features=3)
    assert len(mlp.net) == 1 and mlp.net[0].in_features == 2


def test_mlp_errors_name_the_bad_value():
    with pytest.raises(ValueError, match=r"activation='gelu'; expected one of"):
        BLOCKS["MLP"](in_features=2, hidden=4, depth=1, out_features=1, activation="gelu")
    with pytest.raises(ValueError, match=r"depth=-1; expected a number of hidden layers >= 0"):
        BLOCKS["MLP"](in_features=2, hidden=4, depth=-1, out_features=1)


@pytest.mark.parametrize("norm", ["batch", "instance", "group", "none"])
@pytest.mark.parametrize("padding_mode", ["zeros", "reflect"])
def test_residual_conv_keeps_shape(norm, padding_mode):
    torch.manual_seed(0)
    block = BLOCKS["ResidualConv"](channels=8, norm=norm, padding_mode=padding_mode)
    assert block(torch.randn(2, 8, 6, 6)).shape == (2, 8, 6, 6)
    assert (block.conv1.bias is not None) == (norm in ("instance", "none"))


def test_residual_conv_rejects_unknown_options():
    with pytest.raises(ValueError, match=r"padding_mode='circular'; expected one of \('zeros', 'reflect'\)"):
        BLOCKS["ResidualConv"](channels=4, padding_mode="circular")
    with pytest.raises(ValueError, match=r"norm='layer'; expected one of"):
        BLOCKS["ResidualConv"](channels=4, norm="layer")
