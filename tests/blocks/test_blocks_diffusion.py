import math

import pytest
import torch

from composer.blocks import BLOCKS


def test_sinusoidal_embedding_matches_ddpm_formula():
    emb = BLOCKS["SinusoidalTimeEmbedding"](dim=6)
    t = torch.tensor([0.0, 0.5])
    freqs = torch.tensor([1.0, 10000 ** -0.5, 1e-4])
    args = 1000 * t[:, None] * freqs
    expected = torch.cat([args.sin(), args.cos()], dim=1)
    assert torch.allclose(emb(t), expected, atol=1e-5)


def test_sinusoidal_embedding_rejects_odd_dim():
    with pytest.raises(ValueError, match=r"dim=5; expected an even number >= 4"):
        BLOCKS["SinusoidalTimeEmbedding"](dim=5)


def test_fourier_embedding_matrix_is_a_buffer():
    torch.manual_seed(0)
    emb = BLOCKS["FourierTimeEmbedding"](dim=256, scale=16.0)
    assert list(emb.parameters()) == []
    assert "W" in emb.state_dict() and emb.W.shape == (128,)
    assert abs(emb.W.std().item() - 16.0) < 3.0
    t = torch.tensor([0.25])
    y = emb(t)
    assert torch.allclose(y[:, :128], torch.sin(2 * math.pi * 0.25 * emb.W))


def test_time_mlp_denoiser_shapes():
    torch.manual_seed(0)
    net = BLOCKS["TimeMLP"](features=2)
    assert net(torch.randn(16, 2), torch.rand(16)).shape == (16, 2)


@pytest.mark.parametrize("size", [8, 16])
@pytest.mark.parametrize("attention_levels", [[], [1]])
def test_unet_on_digits_default_width(size, attention_levels):
    with torch.device("meta"):
        net = BLOCKS["UNet"](channels=1, channel_mults=[1, 2], attention_levels=attention_levels)
        x, t = torch.empty(2, 1, size, size), torch.empty(2)
        assert net(x, t).shape == x.shape


def test_unet_on_16x16_digits_cpu():
    torch.manual_seed(0)
    net = BLOCKS["UNet"](channels=1, width=8, channel_mults=[1, 2], attention_levels=[0, 1])
    x, t = torch.randn(2, 1, 16, 16), torch.rand(2)
    y = net(x, t)
    assert y.shape == x.shape and torch.isfinite(y).all()


def test_unet_depends_on_time_and_input():
    torch.manual_seed(0)
    net = BLOCKS["UNet"](channels=1, width=8, channel_mults=[1, 2], num_res_blocks=1)
    for p in net.parameters():  # leave the zero-initialized layers' identity start
        torch.nn.init.normal_(p, 0.0, 0.1)
    x = torch.randn(1, 1, 8, 8)
    y = net(x, torch.tensor([0.1]))
    assert not torch.allclose(y, net(x, torch.tensor([0.9])))
    assert not torch.allclose(y, net(x + 1, torch.tensor([0.1])))


def test_unet_ddpm_cifar10_config():
    """DDPM CIFAR-10 (width 128, mults [1, 2, 2, 2], 2 res blocks, attention at 16×16, dropout
    0.1): 35,746,307 parameters, Ho et al.'s 35.7M (same as diffusers' google/ddpm-cifar10-32)."""
    with torch.device("meta"):
        net = BLOCKS["UNet"](channels=3, width=128, channel_mults=[1, 2, 2, 2], num_res_blocks=2,
                             attention_levels=[1], groups=32, dropout=0.1)
        y = net(torch.empty(2, 3, 32, 32), torch.empty(2))
    assert y.shape == (2, 3, 32, 32)
    assert sum(p.numel() for p in net.parameters()) == 35_746_307


def test_unet_argument_errors():
    with pytest.raises(ValueError, match=r"attention_levels=\[2\]: \[2\] out of range; .* in \[0, 1\]"):
        BLOCKS["UNet"](channels=1, channel_mults=[1, 2], attention_levels=[2])
    with pytest.raises(ValueError, match=r"width=12 is not divisible by groups=8"):
        BLOCKS["UNet"](channels=1, width=12)
    net = BLOCKS["UNet"](channels=1, width=8, channel_mults=[1, 2, 2], num_res_blocks=1)
    with pytest.raises(ValueError, match=r"UNet input \(1, 1, 6, 6\): H and W must be divisible by 4"):
        net(torch.randn(1, 1, 6, 6), torch.rand(1))
