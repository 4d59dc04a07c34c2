"""Basic blocks: thin keyword-only wrappers over torch layers, plus the shared helpers
(`activation`, `norm_2d`, `conv_bias`, `gan_init_`) the larger blocks are built from.

Layers that are plain torch layers subclass them only to fix the signature to explicit
keyword-only arguments (YAML args map onto them one to one); their parameters, buffers and
state-dict keys are exactly torch's.
"""
from __future__ import annotations

import math

import einops
import torch
from torch import nn

from composer.ranges import Count, Fraction, SignedInt

ACTIVATIONS = ("relu", "leaky_relu", "silu", "tanh", "sigmoid")
NORMS_2D = ("batch", "instance", "group", "none")


# ---------------------------------------------------------------------------------------------
# Layers with parameters
# ---------------------------------------------------------------------------------------------
class Linear(nn.Linear):
    """y = x Wᵀ + b on the last axis."""

    def __init__(self, *, in_features: int, out_features: int, bias: bool = True):
        super().__init__(in_features, out_features, bias=bias)


class Conv2d(nn.Conv2d):
    """2-D convolution, [B, in_channels, H, W] → [B, out_channels, H', W']."""

    def __init__(
        self,
        *,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        stride: int = 1,
        padding: Count = 0,
        dilation: int = 1,
        groups: int = 1,
        bias: bool = True,
        padding_mode: str = "zeros",
    ):
        super().__init__(
            in_channels, out_channels, kernel_size, stride=stride, padding=padding,
            dilation=dilation, groups=groups, bias=bias, padding_mode=padding_mode,
        )


class ConvTranspose2d(nn.ConvTranspose2d):
    """Transposed 2-D convolution (fractionally strided), the usual learned upsampling.

    Example: `{block: ConvTranspose2d, in_channels: 64, out_channels: 32, kernel_size: 4, stride: 2, padding: 1}`
    """

    def __init__(
        self,
        *,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        stride: int = 1,
        padding: Count = 0,
        output_padding: Count = 0,
        bias: bool = True,
    ):
        super().__init__(
            in_channels, out_channels, kernel_size, stride=stride, padding=padding,
            output_padding=output_padding, bias=bias,
        )


class BatchNorm(nn.BatchNorm1d):
    """Batch normalization (Ioffe & Szegedy 2015) over axis 1 of [B, C] or [B, C, *spatial].

    One block for vectors and feature maps: `F.batch_norm` normalizes per channel over every
    other axis whatever the rank; only torch's rank check is relaxed. The state dict is that of
    `nn.BatchNorm1d`/`nn.BatchNorm2d`.
    """

    def __init__(
        self,
        *,
        num_features: int,
        eps: float = 1e-5,
        momentum: float = 0.1,
        affine: bool = True,
        track_running_stats: bool = True,
    ):
        super().__init__(
            num_features, eps=eps, momentum=momentum, affine=affine,
            track_running_stats=track_running_stats,
        )

    def _check_input_dim(self, input: torch.Tensor) -> None:
        if input.dim() < 2:
            raise ValueError(f"BatchNorm expects [B, C, ...] input, got shape {tuple(input.shape)}")


class InstanceNorm(nn.InstanceNorm2d):
    """Instance normalization (Ulyanov et al. 2016) of [B, C, H, W] feature maps.

    Defaults follow CycleGAN's generators: no affine parameters, no running statistics.

    Example: `{block: InstanceNorm, num_features: 64}`
    """

    def __init__(
        self,
        *,
        num_features: int,
        eps: float = 1e-5,
        momentum: float = 0.1,
        affine: bool = False,
        track_running_stats: bool = False,
    ):
        super().__init__(
            num_features, eps=eps, momentum=momentum, affine=affine,
            track_running_stats=track_running_stats,
        )


class GroupNorm(nn.GroupNorm):
    """Group normalization (Wu & He 2018): channels split into `num_groups` groups.

    Example: `{block: GroupNorm, num_groups: 8, num_channels: 64}`
    """

    def __init__(self, *, num_groups: int, num_channels: int, eps: float = 1e-5, affine: bool = True):
        super().__init__(num_groups, num_channels, eps=eps, affine=affine)


# ---------------------------------------------------------------------------------------------
# Parameter-free layers
# ---------------------------------------------------------------------------------------------
class ReLU(nn.ReLU):
    """max(x, 0). Never in place: a graph may read the input tensor again.

    Example: `D: [{block: Linear, in_features: 2, out_features: 64}, {block: ReLU}]`
    """

    def __init__(self):
        super().__init__()


class LeakyReLU(nn.LeakyReLU):
    """max(x, 0) + negative_slope · min(x, 0); 0.2 as in DCGAN/PatchGAN discriminators."""

    def __init__(self, *, negative_slope: float = 0.2):
        super().__init__(negative_slope)


class Tanh(nn.Tanh):
    """tanh(x), range (−1, 1): the image range of the generators.

    Example: `G: [{block: Linear, in_features: 8, out_features: 64}, {block: Tanh}]`
    """

    def __init__(self):
        super().__init__()


class Sigmoid(nn.Sigmoid):
    """1 / (1 + e^{−x}). Losses take logits; use this only for outputs that are probabilities.

    Example: `Q: [{block: Linear, in_features: 16, out_features: 1}, {block: Sigmoid}]`
    """

    def __init__(self):
        super().__init__()


class SiLU(nn.SiLU):
    """x · sigmoid(x) (swish; Ramachandran et al. 2017, Elfwing et al. 2018).

    Example: `h: [{block: Linear, in_features: 2, out_features: 64}, {block: SiLU}]`
    """

    def __init__(self):
        super().__init__()


class Dropout(nn.Dropout):
    """Zeroes each element with probability p during training, scaling the rest by 1/(1−p).

    Example: `D: [{block: Linear, in_features: 64, out_features: 64}, {block: Dropout, p: 0.3}]`
    """

    def __init__(self, *, p: Fraction = 0.5):
        super().__init__(p)


class Flatten(nn.Flatten):
    """Flattens axes start_dim..end_dim; the default keeps the batch axis."""

    def __init__(self, *, start_dim: SignedInt = 1, end_dim: SignedInt = -1):
        super().__init__(start_dim, end_dim)


class Reshape(nn.Module):
    """[B, *in] → [B, *shape]: a per-sample reshape that keeps the batch axis (-1 allowed once)."""

    def __init__(self, *, shape: list[int]):
        super().__init__()
        self.shape = tuple(int(n) for n in shape)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.reshape(x.shape[0], *self.shape)

    def extra_repr(self) -> str:
        return f"shape={list(self.shape)}"


class Rearrange(nn.Module):
    """`einops.rearrange(x, pattern, **axes)`, e.g. pattern "b (c h w) -> b c h w" with
    axes {c: 1, h: 8, w: 8}.

    Example: `{block: Rearrange, pattern: "b (c h w) -> b c h w", axes: {c: 1, h: 8, w: 8}}`
    """

    def __init__(self, *, pattern: str, axes: dict[str, int] | None = None):
        super().__init__()
        self.pattern = pattern
        self.axes = dict(axes or {})

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return einops.rearrange(x, self.pattern, **self.axes)

    def extra_repr(self) -> str:
        return f"pattern={self.pattern!r}, axes={self.axes}"


# ---------------------------------------------------------------------------------------------
# Helpers shared by the larger blocks (not registry entries)
# ---------------------------------------------------------------------------------------------
def activation(name: str) -> nn.Module:
    """The activation layer called `name` (one of ACTIVATIONS)."""
    layers = {"relu": ReLU, "silu": SiLU, "tanh": Tanh, "sigmoid": Sigmoid}
    if name == "leaky_relu":
        return LeakyReLU(negative_slope=0.2)
    if name not in layers:
        raise ValueError(f"activation={name!r}; expected one of {ACTIVATIONS}")
    return layers[name]()


def group_count(channels: int, max_groups: int = 8) -> int:
    """Groups for GroupNorm over `channels`: the largest divisor of `channels` ≤ max_groups."""
    return math.gcd(channels, max_groups)


def norm_2d(kind: str, channels: int) -> nn.Module:
    """Normalization of [B, C, H, W] maps: batch, instance (no affine, no running stats, as in
    CycleGAN), group (gcd(C, 8) groups) or none (identity)."""
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "instance":
        return nn.InstanceNorm2d(channels, affine=False, track_running_stats=False)
    if kind == "group":
        return nn.GroupNorm(group_count(channels), channels)
    if kind == "none":
        return nn.Identity()
    raise ValueError(f"norm={kind!r}; expected one of {NORMS_2D}")


def conv_bias(norm: str) -> bool:
    """Whether a conv followed by `norm` needs its own bias: only when the norm has no learned
    shift (instance without affine, none). CycleGAN: `use_bias = norm_layer == InstanceNorm2d`."""
    if norm not in NORMS_2D:
        raise ValueError(f"norm={norm!r}; expected one of {NORMS_2D}")
    return norm in ("instance", "none")


def gan_init_(module: nn.Module, std: float = 0.02) -> None:
    """DCGAN initialization (Radford et al. 2016; pytorch/examples `weights_init`, CycleGAN
    `init_weights(init_type="normal")`): conv/linear weights N(0, std), batch-norm weights
    N(1, std), biases 0; class embeddings (absent from the references) N(0, std) like the
    linear layers they stand beside. Safe on the meta device."""
    for m in module.modules():
        if isinstance(m, nn.Embedding):
            nn.init.normal_(m.weight, 0.0, std)
        elif isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            nn.init.normal_(m.weight, 0.0, std)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)) and m.affine:
            nn.init.normal_(m.weight, 1.0, std)
            nn.init.zeros_(m.bias)
