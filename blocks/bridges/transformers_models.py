"""transformers models as blocks: `{block: transformers.CLIPTextModel, vocab_size: 1000, ...}`.

`transformers.X` resolves to the class `X` of the transformers package when it is a
`PreTrainedModel` subclass; its YAML keywords are the fields of its config class
(`X.config_class`, e.g. CLIPTextConfig), checked with "did you mean", and the block is built as
`X(ConfigClass(**keywords))`. `pretrained:` loads a save_pretrained folder (config.json, then the
YAML keywords as overrides) or a .safetensors file. Never `trust_remote_code`.

| transformers                                | composer                                          |
|---------------------------------------------|---------------------------------------------------|
| `model(input_ids, attention_mask, ...)`     | forward(*tensors), positional in the model's order |
| `ModelOutput.last_hidden_state` (or logits) | forward returns the output's first field, a tensor |
| `ModelOutput.pooler_output`                 | `enc.pooled(input_ids)` method                    |
| frozen text encoder                         | no optimizer lists it -> the runner freezes it     |
| tied weights left out by save_pretrained    | allowed missing from the file, tied after loading  |
"""
from __future__ import annotations

from torch import nn

from composer.blocks.bridges.common import BRIDGE_KEYWORDS, Bridged, ClassNamespace, config_parameters, first_paragraph, library_values, on_meta

CONFIG_SKIPPED = ("self", "transformers_version", "architectures", "return_dict", "dtype", "torch_dtype")


class TransformersModel(nn.Module):
    """A transformers model (a text encoder such as CLIPTextModel, ...): forward(*tensors) -> the
    output's first field (last_hidden_state of a base model); pooled(*tensors) -> pooler_output."""

    meta_shapes = True   # measured for CLIPTextModel: builds and runs on the meta device
    flow_methods = ("pooled",)   # the pooled output: pooled: text_encoder.pooled(ids)

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, *inputs):
        return self.model(*inputs, return_dict=True).to_tuple()[0]

    def pooled(self, *inputs):
        return self.model(*inputs, return_dict=True).pooler_output


class TransformersNamespace(ClassNamespace):
    library = extra = "transformers"
    shown = "transformers.<ModelClass>"
    example = ("{block: transformers.CLIPTextModel, vocab_size: 1000, hidden_size: 64, num_hidden_layers: 2, "
               "num_attention_heads: 2, intermediate_size: 128}")
    doc = ("any transformers model class (a PreTrainedModel) from its config class's keywords; forward "
           "returns last_hidden_state (pooled(...) the pooled output); pretrained: a local save_pretrained "
           "folder or .safetensors file, never remote code")

    def base(self, lib) -> type:
        return lib.PreTrainedModel

    def usable(self, cls) -> bool:
        return getattr(cls, "config_class", None) is not None

    def names(self) -> list[str]:
        lib = self.load()
        return [n for n in dir(lib) if n[:1].isupper() and (n.endswith("Model") or "For" in n)
                and "PreTrained" not in n and not n.startswith("TF") and not n.startswith("Flax")]

    def _bridged(self, cls) -> Bridged:
        params = config_parameters(cls.config_class.__init__, CONFIG_SKIPPED)
        doc = f"transformers.{cls.__name__} ({cls.config_class.__name__} keywords): {first_paragraph(TransformersModel)}"
        build = lambda **kwargs: build_block(cls, params, **kwargs)  # noqa: E731
        return Bridged(f"transformers.{cls.__name__}", build, [*BRIDGE_KEYWORDS, *params], doc,
                       TransformersModel)


def build_block(cls, params, *, pretrained=None, allow_download=False, **values) -> nn.Module:
    from composer.blocks.bridges.pretrained import load_weights, locate

    by_name = {p.name: p for p in params}
    source = locate(pretrained, allow_download, meta=on_meta()) if pretrained else None
    config = {}
    if source is not None and source.config is not None:
        saved, wanted = source.config.get("model_type"), cls.config_class.model_type
        if saved not in (None, wanted):
            raise ValueError(f"pretrained: {source.where} holds a '{saved}' model, not '{wanted}' ({cls.__name__})")
        config = {k: v for k, v in source.config.items() if k in by_name}
    config.update(values)
    model = cls(cls.config_class(**library_values(config, by_name, f"transformers.{cls.__name__}")))
    if source is not None:
        load_weights(model, source, optional=_tied(model))
    return TransformersModel(model)


def _tied(model) -> frozenset:
    """Keys save_pretrained leaves out because they share storage with another (tied weights)."""
    tied = getattr(model, "all_tied_weights_keys", None) or getattr(model, "_tied_weights_keys", None) or {}
    return frozenset(tied)
