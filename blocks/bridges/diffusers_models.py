"""diffusers models as blocks: `{block: diffusers.UNet2DModel, sample_size: 16, ...}`.

`diffusers.X` resolves to the class `X` of the diffusers package when it is a `ModelMixin`
subclass (nothing else is importable from YAML). Its YAML keywords are its `register_to_config`
`__init__` keywords, checked with "did you mean"; `pretrained:` loads a save_pretrained folder
(its config.json, then the YAML keywords as overrides) or a .safetensors file. One adapter per
family says how diffusers' conventions map to composer's:

| diffusers                              | composer                                                  |
|----------------------------------------|-----------------------------------------------------------|
| `timestep` (0 .. 1000 for DDPM models) | t in [0, 1]: timestep = t * timestep_scale + timestep_shift |
| `class_labels` (int64 [B])             | an int64 input after t (y); -1 -> `null_label` when set    |
| `encoder_hidden_states` ([B, L, D])    | a float input after t (a text encoder's output)           |
| output objects (`.sample`)             | plain tensors (`return_dict=False`, first output)         |
| AutoencoderKL `encode(x).latent_dist`  | `vae.encode(x)` -> (mean, logvar); `vae.decode(z)` -> image |
| AutoencoderKL `config.scaling_factor`  | `vae.scaling_factor` attribute (latents are not scaled)   |
| pipelines' `latents * scaling_factor`  | `vae.scale_latents(z)`; `vae.decode_latents(z)` divides, then decodes |

Timesteps: `timestep_scale: 1000` (default) puts t in the range diffusers' sinusoidal timestep
embeddings were designed for, so a model trained in composer sees what a diffusers model sees.
A DDPM model trained by diffusers saw the integer i, which composer's samplers place at
t = (i + 1) / 1000 (docs: NOTES "Samplers against the exact score"): `timestep_shift: -1` gives
i exactly; the default 0 differs by one step out of 1000, which a smooth embedding barely sees.
"""
from __future__ import annotations

import inspect

from torch import nn

from composer.blocks.bridges.common import BRIDGE_KEYWORDS, Bridged, ClassNamespace, config_parameters, first_paragraph, library_values, on_meta

P = inspect.Parameter
DENOISER_KEYWORDS = [
    P("timestep_scale", P.KEYWORD_ONLY, default=1000.0, annotation="float"),
    P("timestep_shift", P.KEYWORD_ONLY, default=0.0, annotation="float"),
    P("null_label", P.KEYWORD_ONLY, default=None, annotation="int | None"),
]
SKIPPED = ("self",)


class DiffusersDenoiser(nn.Module):
    """A diffusers denoiser (UNet2DModel, UNet2DConditionModel, DiTTransformer2DModel, ...) as a
    composer denoiser: forward(x, t[, y or context]) -> the model's prediction tensor."""

    meta_shapes = True   # measured: builds and runs on the meta device (see the bridges' report)

    def __init__(self, model: nn.Module, *, timestep_scale: float = 1000.0, timestep_shift: float = 0.0,
                 null_label: int | None = None):
        super().__init__()
        self.model = model
        self.timestep_scale, self.timestep_shift, self.null_label = float(timestep_scale), float(timestep_shift), null_label

    def forward(self, x, t, *conditions):
        options = {}
        for c in conditions:
            if c.is_floating_point():
                options["encoder_hidden_states"] = c
            else:
                options["class_labels"] = c if self.null_label is None else c.where(c >= 0, self.null_label)
        timestep = t.reshape(-1).expand(x.shape[0]) * self.timestep_scale + self.timestep_shift
        return self.model(x, timestep, **options, return_dict=False)[0]


class DiffusersAutoencoder(nn.Module):
    """A diffusers autoencoder (AutoencoderKL, ...): forward(x) -> reconstruction; methods
    encode(x) -> (mean, logvar) and decode(z) -> image; `scaling_factor` from its config, applied
    as diffusers' pipelines apply it: scale_latents(z) = z * scaling_factor for the diffusion
    model's data, decode_latents(z) = decode(z / scaling_factor) for its samples."""

    meta_shapes = True
    flow_methods = ("encode", "decode", "scale_latents", "decode_latents")   # h: vae.encode(x); vae.decode(z)

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model
        self.scaling_factor = float(getattr(model.config, "scaling_factor", None) or 1.0)

    def forward(self, x):
        return self.model(x, return_dict=False)[0]

    def encode(self, x):
        out = self.model.encode(x)
        dist = getattr(out, "latent_dist", None)
        if dist is None:              # autoencoders without a distribution (AutoencoderTiny): latents
            return out[0]
        return dist.mean, dist.logvar

    def decode(self, z):
        return self.model.decode(z, return_dict=False)[0]

    def scale_latents(self, z):
        return z * self.scaling_factor

    def decode_latents(self, z):
        return self.decode(z / self.scaling_factor)


class DiffusersModel(nn.Module):
    """Any other diffusers model: forward(*tensors) -> its first output as a tensor."""

    meta_shapes = True

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, *inputs):
        return self.model(*inputs, return_dict=False)[0]


def adapter_of(cls) -> type:
    forward = inspect.signature(cls.forward).parameters
    if "timestep" in forward:
        return DiffusersDenoiser
    if callable(getattr(cls, "encode", None)) and callable(getattr(cls, "decode", None)):
        return DiffusersAutoencoder
    return DiffusersModel


class DiffusersNamespace(ClassNamespace):
    library = extra = "diffusers"
    shown = "diffusers.<ModelClass>"
    example = ("{block: diffusers.UNet2DModel, sample_size: 16, in_channels: 1, out_channels: 1, "
               "block_out_channels: [32, 64], layers_per_block: 1, norm_num_groups: 8}")
    doc = ("any diffusers model class (a ModelMixin) from its config keywords; denoisers take (x, t[, y]) "
           "with timestep = t * timestep_scale (1000), autoencoders return the reconstruction and offer "
           "encode/decode; pretrained: a local save_pretrained folder or .safetensors file")

    def base(self, lib) -> type:
        return lib.ModelMixin

    def names(self) -> list[str]:
        lib = self.load()
        kinds = ("Model", "Autoencoder", "UNet", "Transformer", "ControlNet", "VQ", "Prior", "Adapter")
        words = ("Pipeline", "Scheduler", "Mixin", "Config", "Output", "Processor", "Guider", "Loader")
        return [n for n in dir(lib) if n[:1].isupper() and any(k in n for k in kinds)
                and not any(w in n for w in words)]

    def _bridged(self, cls) -> Bridged:
        adapter = adapter_of(cls)
        params = config_parameters(cls.__init__, SKIPPED)
        own = DENOISER_KEYWORDS if adapter is DiffusersDenoiser else []
        doc = f"diffusers.{cls.__name__} through {adapter.__name__}: {first_paragraph(adapter)}"
        build = lambda **kwargs: build_block(cls, adapter, params, **kwargs)  # noqa: E731
        return Bridged(f"diffusers.{cls.__name__}", build, [*BRIDGE_KEYWORDS, *own, *params], doc, adapter)


def build_block(cls, adapter, params, *, pretrained=None, allow_download=False, **kwargs) -> nn.Module:
    own = {k: kwargs.pop(k) for k in [p.name for p in DENOISER_KEYWORDS] if k in kwargs}
    return adapter(build_model(cls, params, kwargs, pretrained, allow_download), **own)


def build_model(cls, params, values: dict, pretrained, allow_download: bool) -> nn.Module:
    from composer.blocks.bridges.pretrained import load_weights, locate

    by_name = {p.name: p for p in params}
    source = locate(pretrained, allow_download, meta=on_meta()) if pretrained else None
    config = {}
    if source is not None and source.config is not None:
        saved = source.config.get("_class_name")
        if saved not in (None, cls.__name__):
            raise ValueError(f"pretrained: {source.where} holds a {saved}, not a {cls.__name__}")
        config = {k: v for k, v in source.config.items() if k in by_name}
    config.update(values)
    model = cls(**library_values(config, by_name, f"diffusers.{cls.__name__}"))
    if source is not None:
        load_weights(model, source)
    return model
