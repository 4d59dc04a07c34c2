import pytest
import torch
from torch import nn

from composer.blocks import BLOCKS

G, D = BLOCKS["DCGANGenerator"], BLOCKS["DCGANDiscriminator"]


def _count(module):
    return sum(p.numel() for p in module.parameters())


@pytest.mark.parametrize("channels, g_params, d_params", [(3, 3_576_704, 2_765_568), (1, 3_574_656, 2_763_520)])
def test_parameter_counts_match_pytorch_examples_dcgan(channels, g_params, d_params):
    with torch.device("meta"):
        g = G(image_size=64, channels=channels, latent=100, width=64)
        d = D(image_size=64, channels=channels, width=64)
    assert _count(g) == g_params
    assert _count(d) == d_params


def test_widths_at_64_are_the_reference_ones():
    with torch.device("meta"):
        g = G(image_size=64, channels=3, latent=100, width=64)
        d = D(image_size=64, channels=3, width=64)
    g_convs = [(m.in_channels, m.out_channels) for m in g.modules() if isinstance(m, nn.ConvTranspose2d)]
    d_convs = [(m.in_channels, m.out_channels) for m in d.modules() if isinstance(m, nn.Conv2d)]
    assert g_convs == [(100, 512), (512, 256), (256, 128), (128, 64), (64, 3)]
    assert d_convs == [(3, 64), (64, 128), (128, 256), (256, 512), (512, 1)]
    assert all(m.bias is None for m in g.modules() if isinstance(m, nn.ConvTranspose2d))
    assert not isinstance(d.net[1], nn.BatchNorm2d)  # no BN after the first D conv


def test_init_follows_weights_init():
    torch.manual_seed(0)
    g = G(image_size=64, channels=3, latent=100, width=64)
    convs = [m.weight for m in g.modules() if isinstance(m, nn.ConvTranspose2d)]
    norms = [m for m in g.modules() if isinstance(m, nn.BatchNorm2d)]
    assert abs(torch.cat([w.flatten() for w in convs]).std().item() - 0.02) < 5e-4
    assert abs(torch.cat([w.flatten() for w in convs]).mean().item()) < 5e-4
    bn_weights = torch.cat([m.weight for m in norms])
    assert abs(bn_weights.mean().item() - 1.0) < 3e-3 and abs(bn_weights.std().item() - 0.02) < 3e-3
    assert all(torch.count_nonzero(m.bias) == 0 for m in norms)


@pytest.mark.parametrize("image_size", [8, 16])
def test_small_image_shapes(image_size):
    torch.manual_seed(0)
    g = G(image_size=image_size, channels=1, latent=16, width=8)
    d = D(image_size=image_size, channels=1, width=8)
    x = g(torch.randn(4, 16))
    assert x.shape == (4, 1, image_size, image_size)
    assert x.abs().max() <= 1
    assert d(x).shape == (4,)


@pytest.mark.parametrize("image_size", [4, 12, 48])
def test_image_size_must_be_a_power_of_two_from_8(image_size):
    msg = rf"image_size={image_size}; expected a power of two >= 8 \(8, 16, 32, 64, 128, 256, ...\)"
    with pytest.raises(ValueError, match=msg):
        G(image_size=image_size, channels=1, latent=4)
    with pytest.raises(ValueError, match=msg):
        D(image_size=image_size, channels=1)


def test_auxiliary_head_shares_the_trunk():
    d = D(image_size=16, channels=1, width=8, aux_classes=10)
    x = torch.randn(3, 1, 16, 16)
    logits, aux_logits = d(x)
    assert logits.shape == (3,) and aux_logits.shape == (3, 10)
    plain = D(image_size=16, channels=1, width=8)
    plain.load_state_dict({k: v for k, v in d.state_dict().items() if not k.startswith("aux.")})
    assert torch.equal(plain(x), logits)            # same logits, same keys as the one-head critic
    (grad,) = torch.autograd.grad(aux_logits.sum(), d.net[0].weight)
    assert grad.abs().sum() > 0                     # the head reads the shared trunk


def test_auxiliary_classes_must_not_be_negative():
    with pytest.raises(ValueError, match=r"aux_classes=-1; expected 0 \(no auxiliary head\) or a number of classes"):
        D(image_size=16, channels=1, aux_classes=-1)


def test_critic_without_norm_scores_each_image_on_its_own():
    torch.manual_seed(0)
    d = D(image_size=16, channels=1, width=8, norm="none").train()
    assert not any(isinstance(m, nn.BatchNorm2d) for m in d.modules())
    assert all(m.bias is not None for m in d.modules() if isinstance(m, nn.Conv2d))  # no norm shift: own bias
    x = torch.randn(6, 1, 16, 16)
    assert torch.allclose(d(x)[:2], d(x[:2]), atol=1e-6)       # a row's logit ignores the rest of the batch
    batch_norm = D(image_size=16, channels=1, width=8).train()
    assert not torch.allclose(batch_norm(x)[:2], batch_norm(x[:2]), atol=1e-3)
    assert _count(d) == _count(batch_norm) - 2 * 16 + 8 + 16 + 1  # BN's affine pair traded for conv biases


def test_critic_norm_must_be_known():
    with pytest.raises(ValueError, match=r"norm='layer'; expected one of \('batch', 'instance', 'group', 'none'\)"):
        D(image_size=16, channels=1, norm="layer")
