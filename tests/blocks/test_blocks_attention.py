"""SelfAttention2d (SAGAN, Zhang et al. 2019) and `attention: RES` on the DCGAN blocks."""
import pytest
import torch
from torch import nn

from composer.blocks import BLOCKS

Attention, G, D = BLOCKS["SelfAttention2d"], BLOCKS["DCGANGenerator"], BLOCKS["DCGANDiscriminator"]


def test_gamma_starts_at_zero_so_the_block_starts_as_the_identity():
    torch.manual_seed(0)
    block = Attention(channels=16)
    x = torch.randn(2, 16, 4, 4)
    assert block.gamma.item() == 0
    assert torch.equal(block(x), x)
    assert block.query.out_channels == block.key.out_channels == block.value.out_channels == 2  # C/8


def test_every_position_attends_to_every_other():
    """A change at one position moves the output at all positions once gamma is non-zero."""
    torch.manual_seed(0)
    block = Attention(channels=8)
    with torch.no_grad():
        block.gamma.fill_(1.0)
    x = torch.randn(1, 8, 4, 4)
    y = x.clone()
    y[0, :, 0, 0] += 1.0
    moved = (block(y) - block(x) - (y - x)).abs().sum(1)[0]
    assert (moved > 0).all()


def test_attention_goes_after_the_stage_of_that_resolution():
    g = G(image_size=16, channels=1, latent=8, width=8, attention=8)
    d = D(image_size=16, channels=1, width=8, norm="none", attention=8)
    g_at = [i for i, m in enumerate(g.net) if isinstance(m, Attention)]
    d_at = [i for i, m in enumerate(d.net) if isinstance(m, Attention)]
    assert g_at == [6] and isinstance(g.net[5], nn.ReLU) and g.net[g_at[0]].query.in_channels == 8
    assert d_at == [2] and isinstance(d.net[1], nn.LeakyReLU) and d.net[d_at[0]].query.in_channels == 8
    x = g(torch.randn(3, 8))
    assert x.shape == (3, 1, 16, 16) and d(x).shape == (3,)


@pytest.mark.parametrize("block, kwargs, sides", [
    (G, {"latent": 8}, "4, 8"),
    (D, {}, "4, 8"),
])
def test_a_resolution_without_a_stage_is_refused(block, kwargs, sides):
    with pytest.raises(ValueError, match=rf"attention=16; expected 0 \(none\) or the side of an inner feature map: {sides}"):
        block(image_size=16, channels=1, width=8, attention=16, **kwargs)
