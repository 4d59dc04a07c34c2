import pytest
import torch
from torch import nn

from composer.blocks import BLOCKS

Embedding, Pair, Pix2Pix = BLOCKS["ClassEmbedding"], BLOCKS["PairDiscriminator"], BLOCKS["UNetGenerator"]
G, D = BLOCKS["ConditionalDCGANGenerator"], BLOCKS["ConditionalDCGANDiscriminator"]


def _count(module):
    return sum(p.numel() for p in module.parameters())


def _randomize_(module):
    """Leave the zero-initialized output layers of the diffusion U-Net (its output starts at 0)."""
    for p in module.parameters():
        nn.init.normal_(p, 0.0, 0.1)


# --- ClassEmbedding ---------------------------------------------------------------------------
def test_class_embedding_rows_and_null_row():
    torch.manual_seed(0)
    emb = Embedding(num_classes=10, dim=4, null=True)
    assert emb.embed.weight.shape == (11, 4)
    out = emb(torch.tensor([3, -1, 9]))
    assert out.shape == (3, 4)
    assert torch.equal(out[0], emb.embed.weight[3])
    assert torch.equal(out[1], emb.embed.weight[10])  # y = -1 reads the extra (null) row
    assert not torch.equal(out[0], out[1])
    assert Embedding(num_classes=10, dim=4).embed.weight.shape == (10, 4)


def test_class_embedding_rejects_no_classes():
    with pytest.raises(ValueError, match=r"num_classes=0; expected >= 1"):
        Embedding(num_classes=0, dim=4)


# --- class-conditional DCGAN ------------------------------------------------------------------
@pytest.mark.parametrize("embed_dim", [None, 6])
def test_conditional_generator_shapes_and_label_dependence(embed_dim):
    torch.manual_seed(0)
    g = G(image_size=16, channels=1, latent=8, num_classes=10, width=8, embed_dim=embed_dim)
    z = torch.randn(4, 8)
    x = g(z, torch.tensor([0, 1, 2, 3]))
    assert x.shape == (4, 1, 16, 16) and x.abs().max() <= 1
    assert not torch.allclose(x, g(z, torch.tensor([4, 5, 6, 7])))


def test_conditional_generator_is_a_dcgan_generator_on_z_and_label():
    with torch.device("meta"):
        one_hot = G(image_size=64, channels=3, latent=100, num_classes=10)
        embedded = G(image_size=64, channels=3, latent=100, num_classes=10, embed_dim=50)
        plain = BLOCKS["DCGANGenerator"](image_size=64, channels=3, latent=110)
    assert _count(one_hot) == _count(plain)
    assert _count(embedded) == _count(plain) + 40 * 512 * 16 + 10 * 50  # 150 inputs, not 110
    assert one_hot.generator.net[0].in_channels == 110 and embedded.generator.net[0].in_channels == 150


@pytest.mark.parametrize("conditioning", ["concat", "projection"])
def test_conditional_discriminator_shapes_and_label_dependence(conditioning):
    torch.manual_seed(0)
    d = D(image_size=16, channels=1, num_classes=10, width=8, conditioning=conditioning)
    x = torch.randn(4, 1, 16, 16)
    logits = d(x, torch.tensor([0, 1, 2, 3]))
    assert logits.shape == (4,)
    assert not torch.allclose(logits, d(x, torch.tensor([4, 5, 6, 7])))


def test_concat_discriminator_reads_one_hot_label_maps():
    with torch.device("meta"):
        d = D(image_size=16, channels=3, num_classes=10, width=8, conditioning="concat")
    assert d.discriminator.net[0].in_channels == 13


def test_projection_discriminator_is_psi_plus_inner_product():
    """Miyato & Koyama 2018: logit(x, y) = psi(phi(x)) + <embed(y), phi(x)>."""
    torch.manual_seed(0)
    d = D(image_size=16, channels=1, num_classes=10, width=8).eval()
    x, y = torch.randn(3, 1, 16, 16), torch.tensor([0, 4, 9])
    phi = d.trunk(x).sum(dim=(2, 3))
    assert phi.shape == (3, 16)
    expected = d.psi(phi)[:, 0] + (d.embed.embed.weight[y] * phi).sum(dim=1)
    assert torch.allclose(d(x, y), expected, atol=1e-5)
    assert abs(d.embed.embed.weight.std().item() - 0.02) < 5e-3  # gan_init_ like psi


def test_conditional_discriminator_rejects_unknown_conditioning():
    with pytest.raises(ValueError, match=r"conditioning='hinge'; expected one of \('concat', 'projection'\)"):
        D(image_size=16, channels=1, num_classes=10, conditioning="hinge")


@pytest.mark.parametrize("block, args", [
    (G, {"channels": 1, "latent": 4, "num_classes": 10}),
    (D, {"channels": 1, "num_classes": 10}),
    (Pair, {"channels": 1, "latent": 4}),
    (Pix2Pix, {"in_channels": 1, "out_channels": 1}),
])
@pytest.mark.parametrize("image_size", [4, 12])
def test_image_size_must_be_a_power_of_two_from_8(block, args, image_size):
    with pytest.raises(ValueError, match=rf"image_size={image_size}; expected a power of two >= 8"):
        block(image_size=image_size, **args)


def test_gradients_reach_the_label_embeddings():
    torch.manual_seed(0)
    g = G(image_size=8, channels=1, latent=4, num_classes=10, width=8, embed_dim=6)
    d = D(image_size=8, channels=1, num_classes=10, width=8)
    y = torch.tensor([1, 2])
    d(g(torch.randn(2, 4), y), y).sum().backward()
    for embedding in (g.embed.embed, d.embed.embed):
        grad = embedding.weight.grad
        assert grad[1].abs().sum() > 0 and grad[2].abs().sum() > 0
        assert grad[0].abs().sum() == 0


# --- BiGAN / ALI pair critic ------------------------------------------------------------------
def test_pair_discriminator_depends_on_image_and_code():
    torch.manual_seed(0)
    d = Pair(image_size=16, channels=1, latent=8, width=8, hidden=32)
    x, z = torch.randn(4, 1, 16, 16), torch.randn(4, 8)
    logits = d(x, z)
    assert logits.shape == (4,)
    assert not torch.allclose(logits, d(x, torch.randn(4, 8)))
    assert not torch.allclose(logits, d(torch.randn(4, 1, 16, 16), z))
    assert not any(isinstance(m, nn.Dropout) for m in d.modules())
    assert all(isinstance(m, nn.LeakyReLU) and m.negative_slope == 0.2
               for m in d.modules() if isinstance(m, (nn.ReLU, nn.LeakyReLU)))


def test_pair_discriminator_dropout():
    torch.manual_seed(0)
    d = Pair(image_size=8, channels=1, latent=4, width=8, hidden=16, dropout=0.2)
    assert sum(isinstance(m, nn.Dropout) and m.p == 0.2 for m in d.modules()) == 4
    x, z = torch.randn(2, 1, 8, 8), torch.randn(2, 4)
    d.eval()
    assert torch.equal(d(x, z), d(x, z))


# --- pix2pix U-Net ----------------------------------------------------------------------------
@pytest.mark.parametrize("image_size", [8, 16, 32])
def test_unet_generator_shapes(image_size):
    torch.manual_seed(0)
    g = Pix2Pix(in_channels=1, out_channels=3, image_size=image_size, width=8)
    y = g(torch.randn(2, 1, image_size, image_size))
    assert y.shape == (2, 3, image_size, image_size) and y.abs().max() <= 1


def test_unet_generator_small_digits_config():
    g = Pix2Pix(in_channels=1, out_channels=1, image_size=16, width=32)
    assert len(g.down) == 4
    assert _count(g) == 1_542_465


@pytest.mark.parametrize("image_size, n_dropout", [(256, 3), (128, 2), (64, 1), (32, 1), (16, 1), (8, 1)])
def test_unet_generator_dropout_in_the_innermost_decoder_levels(image_size, n_dropout):
    with torch.device("meta"):
        g = Pix2Pix(in_channels=3, out_channels=3, image_size=image_size)
    dropouts = [i for i, up in enumerate(g.up) if any(isinstance(m, nn.Dropout) for m in up)]
    innermost = len(g.up) - 1
    assert dropouts == list(range(innermost - n_dropout, innermost))
    with torch.device("meta"):
        assert not any(isinstance(m, nn.Dropout)
                       for m in Pix2Pix(in_channels=3, out_channels=3, image_size=64, dropout=0.0).modules())


def test_unet_generator_256_matches_pix2pix_unet_256():
    """junyanz/pytorch-CycleGAN-and-pix2pix unet_256 with ngf 64 and batch norm: 54.414 M."""
    with torch.device("meta"):
        g = Pix2Pix(in_channels=3, out_channels=3, image_size=256)
        assert g(torch.empty(1, 3, 256, 256)).shape == (1, 3, 256, 256)
    assert _count(g) == 54_413_955
    assert g.down[0][0].bias is None and g.head[1].bias is not None


# --- class-conditional diffusion denoisers ----------------------------------------------------
def test_unconditional_denoisers_are_unchanged():
    with torch.device("meta"):
        unet = BLOCKS["UNet"](channels=3, width=128, channel_mults=[1, 2, 2, 2], num_res_blocks=2,
                              attention_levels=[1], groups=32, dropout=0.1)
        mlp = BLOCKS["TimeMLP"](features=2)
    assert _count(unet) == 35_746_307 and _count(mlp) == 149_250
    assert not any("class_embed" in k for k in [*unet.state_dict(), *mlp.state_dict()])
    with pytest.raises(ValueError, match=r"UNet got labels y but was built without num_classes"):
        BLOCKS["UNet"](channels=1, width=8)(torch.randn(1, 1, 8, 8), torch.rand(1), torch.tensor([1]))


def test_class_embedding_adds_only_its_rows_and_keeps_the_backbone_init():
    torch.manual_seed(0)
    plain = BLOCKS["UNet"](channels=1, width=8, num_res_blocks=1).state_dict()
    torch.manual_seed(0)
    conditional = BLOCKS["UNet"](channels=1, width=8, num_res_blocks=1, num_classes=10).state_dict()
    assert set(conditional) - set(plain) == {"class_embed.embed.weight"}
    assert conditional["class_embed.embed.weight"].shape == (11, 32)  # 10 classes + null, 4·width
    assert all(torch.equal(plain[k], conditional[k]) for k in plain)
    with torch.device("meta"):
        mlp = BLOCKS["TimeMLP"](features=2, num_classes=10)
    assert _count(mlp) == 149_250 + 11 * 64


@pytest.mark.parametrize("name, args, x_shape", [
    ("UNet", {"channels": 1, "width": 8, "num_res_blocks": 1}, (3, 1, 8, 8)),
    ("TimeMLP", {"features": 2, "hidden": 16, "depth": 2, "time_dim": 8}, (3, 2)),
])
def test_conditional_denoiser_labels_and_null_label(name, args, x_shape):
    torch.manual_seed(0)
    net = BLOCKS[name](num_classes=10, **args)
    _randomize_(net)
    x, t = torch.randn(x_shape), torch.rand(3)
    out = net(x, t, torch.tensor([0, 1, 2]))
    assert out.shape == x_shape
    assert not torch.allclose(out, net(x, t, torch.tensor([3, 4, 5])))
    null = net(x, t, torch.tensor([-1, -1, -1]))
    assert torch.equal(null, net(x, t))  # y None is the null label
    assert not torch.allclose(null, out)
    mixed = net(x, t, torch.tensor([0, -1, 2]))
    assert torch.equal(mixed[1], null[1]) and torch.allclose(mixed[0], out[0])
    out.sum().backward()
    grad = net.class_embed.embed.weight.grad
    assert grad[:3].abs().sum(dim=1).min() > 0 and grad[3:].abs().sum() == 0


@pytest.mark.parametrize("name, args, x_shape", [
    ("UNet", {"channels": 1, "width": 8, "num_res_blocks": 1}, (2, 1, 8, 8)),
    ("TimeMLP", {"features": 2}, (2, 2)),
])
def test_conditional_denoisers_run_on_meta(name, args, x_shape):
    with torch.device("meta"):
        net = BLOCKS[name](num_classes=10, **args)
        x, t, y = torch.empty(x_shape), torch.empty(2), torch.empty(2, dtype=torch.long)
        assert net(x, t, y).shape == x_shape and net(x, t).shape == x_shape


def test_new_blocks_run_on_meta_with_int_labels():
    with torch.device("meta"):
        y, z, x = torch.empty(2, dtype=torch.long), torch.empty(2, 4), torch.empty(2, 1, 8, 8)
        assert Embedding(num_classes=10, dim=8, null=True)(y).shape == (2, 8)
        g = G(image_size=8, channels=1, latent=4, num_classes=10, width=8, embed_dim=5)
        assert g(z, y).shape == x.shape
        for conditioning in ("concat", "projection"):
            d = D(image_size=8, channels=1, num_classes=10, width=8, conditioning=conditioning)
            assert d(x, y).shape == (2,)
        assert Pair(image_size=8, channels=1, latent=4, width=8, dropout=0.1)(x, z).shape == (2,)
        assert Pix2Pix(in_channels=1, out_channels=1, image_size=8, width=8)(x).shape == x.shape


@pytest.mark.parametrize("conditioning", ["projection", "concat"])
def test_conditional_critic_without_norm(conditioning):
    torch.manual_seed(0)
    d = D(image_size=8, channels=1, num_classes=10, width=8, conditioning=conditioning, norm="none").train()
    assert not any(isinstance(m, nn.BatchNorm2d) for m in d.modules())
    x, y = torch.randn(5, 1, 8, 8), torch.arange(5)
    assert torch.allclose(d(x, y)[:2], d(x[:2], y[:2]), atol=1e-6)
