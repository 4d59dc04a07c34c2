"""Conditioning blocks: class labels for GANs and diffusion, paired critics, image-to-image.

Labels are int64 tensors y of shape [B] with values in [0, num_classes). Blocks that support
classifier-free guidance (Ho & Salimans 2022) read y < 0 (by convention −1) as the null
condition and embed it with one extra learned row; the choice is made with `torch.where`,
so every block builds and runs on the `meta` device.
"""
from __future__ import annotations

import einops
import torch
import torch.nn.functional as F
from torch import nn

from composer.ranges import Fraction
from composer.blocks.basic import conv_bias, gan_init_, norm_2d
from composer.blocks.dcgan import DCGANDiscriminator, DCGANGenerator, dcgan_stages, discriminator_trunk, trunk_width

CONDITIONINGS = ("concat", "projection")


class ClassEmbedding(nn.Module):
    """y [B] int64 → [B, dim], a learned row per class (init N(0, 1), torch's default).

    With `null` set there is one extra row, index `num_classes`, used wherever y < 0: the
    learned null condition of classifier-free guidance (Ho & Salimans 2022). Without it,
    labels must lie in [0, num_classes).

    Example: `{block: ClassEmbedding, num_classes: 10, dim: 32, "null": true}` (quoted: a bare null is YAML's None)
    """

    def __init__(self, *, num_classes: int, dim: int, null: bool = False):
        super().__init__()
        if num_classes < 1:
            raise ValueError(f"num_classes={num_classes}; expected >= 1")
        self.num_classes, self.null = num_classes, null
        self.embed = nn.Embedding(num_classes + int(null), dim)

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        if self.null:
            y = torch.where(y < 0, torch.full_like(y, self.num_classes), y)
        return self.embed(y)

    def extra_repr(self) -> str:
        return f"num_classes={self.num_classes}, null={self.null}"


def optional_class_embedding(num_classes: int | None, dim: int) -> ClassEmbedding | None:
    """A guidance-ready `ClassEmbedding` (with a null row), or None when num_classes is None."""
    return None if num_classes is None else ClassEmbedding(num_classes=num_classes, dim=dim, null=True)


def add_class_embedding(emb: torch.Tensor, class_embed: ClassEmbedding | None, y: torch.Tensor | None,
                        block: str) -> torch.Tensor:
    """emb + class_embed(y) for a denoiser's [B, dim] time embedding, y None meaning the null
    label for the whole batch; emb unchanged when the block has no class embedding."""
    if class_embed is None:
        if y is not None:
            raise ValueError(f"{block} got labels y but was built without num_classes; "
                             f"set num_classes to condition on classes")
        return emb
    if y is None:
        y = torch.full(emb.shape[:1], -1, dtype=torch.long, device=emb.device)
    return emb + class_embed(y)


class ConditionalDCGANGenerator(nn.Module):
    """(z [B, latent], y [B]) → image [B, channels, image_size, image_size] in tanh range.

    The conditional GAN of Mirza & Osindero 2014 in DCGAN form (the usual cDCGAN): the label,
    one-hot (`embed_dim` None) or a learned `embed_dim`-vector (init N(0, 1), the scale of z),
    is concatenated to z and fed to a `DCGANGenerator` of latent size latent + label width.
    The DCGAN part keeps its N(0, 0.02) init.
    """

    def __init__(self, *, image_size: int, channels: int, latent: int, num_classes: int,
                 width: int = 64, embed_dim: int | None = None):
        super().__init__()
        self.num_classes = num_classes
        self.embed = None if embed_dim is None else ClassEmbedding(num_classes=num_classes, dim=embed_dim)
        label_width = num_classes if embed_dim is None else embed_dim
        self.generator = DCGANGenerator(image_size=image_size, channels=channels,
                                        latent=latent + label_width, width=width)

    def forward(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if self.embed is None:
            label = F.one_hot(y, self.num_classes).to(z.dtype)
        else:
            label = self.embed(y)
        return self.generator(torch.cat([z, label], dim=1))


class ConditionalDCGANDiscriminator(nn.Module):
    """(image [B, channels, image_size, image_size], y [B]) → logits [B].

    conditioning "concat": the one-hot label as `num_classes` constant maps concatenated to
    the image channels, then a `DCGANDiscriminator` (Mirza & Osindero 2014; the usual cDCGAN).
    conditioning "projection": the projection discriminator of Miyato & Koyama 2018,
    logit = ψ(φ(x)) + ⟨embed(y), φ(x)⟩, with φ the DCGAN conv trunk summed over its 4×4 core
    (global sum pooling, as in pfnet-research/sngan_projection) and ψ a Linear. `norm` is the
    trunk's (`discriminator_trunk`: "batch" as DCGAN, "none" for gradient penalties). Init
    N(0, 0.02) everywhere, the class embedding included.
    """

    def __init__(self, *, image_size: int, channels: int, num_classes: int, width: int = 64,
                 conditioning: str = "projection", norm: str = "batch"):
        super().__init__()
        if conditioning not in CONDITIONINGS:
            raise ValueError(f"conditioning={conditioning!r}; expected one of {CONDITIONINGS}")
        self.num_classes, self.conditioning = num_classes, conditioning
        if conditioning == "concat":
            self.discriminator = DCGANDiscriminator(image_size=image_size, channels=channels + num_classes,
                                                    width=width, norm=norm)
        else:
            features = trunk_width(image_size, width)
            self.trunk = nn.Sequential(*discriminator_trunk(image_size=image_size, channels=channels,
                                                            width=width, norm=norm))
            self.psi = nn.Linear(features, 1)
            self.embed = ClassEmbedding(num_classes=num_classes, dim=features)
            gan_init_(self)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if self.conditioning == "concat":
            maps = einops.repeat(F.one_hot(y, self.num_classes).to(x.dtype), "b k -> b k h w",
                                 h=x.shape[2], w=x.shape[3])
            return self.discriminator(torch.cat([x, maps], dim=1))
        phi = self.trunk(x).sum(dim=(2, 3))
        return self.psi(phi).squeeze(1) + (self.embed(y) * phi).sum(dim=1)

    def extra_repr(self) -> str:
        return f"conditioning={self.conditioning!r}"


class PairDiscriminator(nn.Module):
    """(image [B, channels, image_size, image_size], z [B, latent]) → logits [B]: the joint
    critic of BiGAN / ALI (Donahue et al. 2017; Dumoulin et al. 2017).

    x path: the DCGAN conv trunk, then Conv(4×4 core → hidden) + LeakyReLU(0.2). z path:
    2 × (Linear → hidden + LeakyReLU(0.2)). Joint: the two `hidden`-vectors concatenated,
    `joint_depth` × (Linear → joint_width (default hidden) + LeakyReLU(0.2)), Linear(→ 1).
    `dropout` (ALI uses 0.2) follows every LeakyReLU outside the conv trunk. Init N(0, 0.02),
    biases 0. A shallow joint path lets the critic settle on f(x) + g(z), which matches only
    the marginals; ALI's deeper joint path (joint_depth 2, joint_width 2·hidden) keeps x and z
    interacting.
    """

    def __init__(self, *, image_size: int, channels: int, latent: int, width: int = 64,
                 hidden: int = 256, dropout: Fraction = 0.0, joint_depth: int = 1, joint_width: int | None = None):
        super().__init__()
        trunk = discriminator_trunk(image_size=image_size, channels=channels, width=width)
        self.x_path = nn.Sequential(*trunk, nn.Conv2d(trunk_width(image_size, width), hidden, 4, 1, 0),
                                    nn.Flatten(), *_act(dropout))
        self.z_path = nn.Sequential(nn.Linear(latent, hidden), *_act(dropout),
                                    nn.Linear(hidden, hidden), *_act(dropout))
        if joint_depth < 1:
            raise ValueError(f"joint_depth must be >= 1, got {joint_depth}")
        joint_width = joint_width or hidden
        layers, size = [], 2 * hidden
        for _ in range(joint_depth):
            layers += [nn.Linear(size, joint_width), *_act(dropout)]
            size = joint_width
        self.joint = nn.Sequential(*layers, nn.Linear(size, 1))
        gan_init_(self)

    def forward(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        h = torch.cat([self.x_path(x), self.z_path(z)], dim=1)
        return self.joint(h).squeeze(1)


def _act(dropout: float) -> list[nn.Module]:
    """LeakyReLU(0.2), followed by Dropout when dropout > 0."""
    return [nn.LeakyReLU(0.2), *([nn.Dropout(dropout)] if dropout > 0 else [])]


class UNetGenerator(nn.Module):
    """[B, in_channels, S, S] → [B, out_channels, S, S] in tanh range: the pix2pix U-Net
    generator (Isola et al. 2017; junyanz/pytorch-CycleGAN-and-pix2pix `UnetGenerator`),
    for any power-of-two S ≥ 8 with depth n = log2(S) (unet_256 at 256, unet_128 at 128).

    Encoder level i: Conv4×4 s2 to w·min(2^i, 8) + norm (none at the first and the innermost
    level) + LeakyReLU(0.2) (none at the innermost); its output is the skip. Decoder level i:
    ReLU + ConvT4×4 s2 + norm, then concatenated after its skip; the outermost ends in
    ConvT (with bias) + Tanh. Dropout follows the decoder norm at levels 4 … n − 2 as in the
    reference (3 levels at 256, 2 at 128); below 64×64, where that range is empty, at level
    n − 2 only, so dropout still gives pix2pix its noise. Init N(0, 0.02), biases 0.

    Skips are taken after the LeakyReLU, as the reference computes them (its in-place
    LeakyReLU rewrites the tensor it concatenates).
    """

    def __init__(self, *, in_channels: int, out_channels: int, image_size: int, width: int = 64,
                 norm: str = "batch", dropout: Fraction = 0.5):
        super().__init__()
        n = dcgan_stages(image_size) + 2
        bias = conv_bias(norm)
        inner = [width * min(2**i, 8) for i in range(n)]
        outer = [in_channels] + inner[:-1]
        dropout_levels = range(min(4, n - 2), n - 1)
        self.down = nn.ModuleList(
            _down(outer[i], inner[i], "none" if i == 0 else norm, innermost=i == n - 1, bias=bias)
            for i in range(n))
        self.up = nn.ModuleList(
            _up(inner[i] * (1 if i == n - 1 else 2), outer[i], norm, bias=bias,
                dropout=dropout if i in dropout_levels else 0.0)
            for i in range(1, n))
        self.head = nn.Sequential(nn.ReLU(), nn.ConvTranspose2d(2 * width, out_channels, 4, 2, 1),
                                  nn.Tanh())
        gan_init_(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = []
        for down in self.down:
            x = down(x)
            skips.append(x)
        skips.pop()  # the innermost output feeds the decoder directly
        for up in reversed(self.up):
            x = torch.cat([skips.pop(), up(x)], dim=1)
        return self.head(x)


def _down(c_in: int, c_out: int, norm: str, *, innermost: bool, bias: bool) -> nn.Sequential:
    """Conv4×4 s2 + norm + LeakyReLU(0.2); the innermost level is the conv alone."""
    if innermost:
        return nn.Sequential(nn.Conv2d(c_in, c_out, 4, 2, 1, bias=bias))
    return nn.Sequential(nn.Conv2d(c_in, c_out, 4, 2, 1, bias=bias), norm_2d(norm, c_out), nn.LeakyReLU(0.2))


def _up(c_in: int, c_out: int, norm: str, *, bias: bool, dropout: float) -> nn.Sequential:
    """ReLU + ConvT4×4 s2 + norm (+ dropout)."""
    layers = [nn.ReLU(), nn.ConvTranspose2d(c_in, c_out, 4, 2, 1, bias=bias), norm_2d(norm, c_out)]
    return nn.Sequential(*layers, *([nn.Dropout(dropout)] if dropout > 0 else []))
