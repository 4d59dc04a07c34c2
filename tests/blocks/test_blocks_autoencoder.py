import pytest
import torch

from composer.blocks import BLOCKS


@pytest.mark.parametrize("size, steps", [(8, 1), (16, 2)])
@pytest.mark.parametrize("norm", ["group", "none"])
def test_digits_round_trip_shapes(size, steps, norm):
    torch.manual_seed(0)
    enc = BLOCKS["ConvEncoder"](in_channels=1, latent_channels=4, downsamples=steps, norm=norm)
    dec = BLOCKS["ConvDecoder"](out_channels=1, latent_channels=4, upsamples=steps, norm=norm)
    x = torch.rand(3, 1, size, size) * 2 - 1
    z = enc(x)
    assert z.shape == (3, 4, 4, 4)
    y = dec(z)
    assert y.shape == x.shape and y.abs().max() <= 1


def test_unknown_norm_is_rejected():
    with pytest.raises(ValueError, match=r"norm='batch'; expected one of \('group', 'none'\)"):
        BLOCKS["ConvEncoder"](in_channels=1, latent_channels=4, norm="batch")
