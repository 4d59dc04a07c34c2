"""timm models as blocks: `{block: timm, model: resnet18, in_chans: 1, num_classes: 0}`.

The block `timm` builds `timm.create_model(model, pretrained=False, **options)`: `model` is
checked against `timm.list_models()` ("did you mean"), the options are the model class's own
keywords and create_model's (features_only, out_indices, drop_rate, ...); a misspelt option is
reported with the class's keywords. `pretrained:` loads a local folder (timm's hub layout:
config.json + model.safetensors) or a .safetensors file into the model built here; classifier
weights are left out when the block has none (`num_classes: 0`) or another number of classes, and a
feature extractor (`features_only: true`) loads the stages it keeps from a whole classifier's file
(e.g. one composer trained and exported: `composer export RUN --format safetensors --module net`).

| timm                                   | composer                                            |
|----------------------------------------|-----------------------------------------------------|
| `timm.create_model(name, **kwargs)`    | `{block: timm, model: name, **kwargs}`              |
| `pretrained=True` (downloads)          | `pretrained: PATH` (local safetensors only)         |
| output tensor                          | a tensor ([B, num_features] when num_classes: 0)    |
| `features_only=True` -> list of maps   | a tuple: index it in the flow, `h[0]` .. `h[-1]`    |
"""
from __future__ import annotations

import inspect

from torch import nn

from composer.registry import Argument, Namespace

from composer.blocks.bridges.common import BRIDGE_KEYWORDS, Bridged, first_paragraph, on_meta, suggest

P = inspect.Parameter


class TimmModel(nn.Module):
    """A timm model: forward(x) -> its output tensor, or a tuple of feature maps (features_only)."""

    meta_shapes = True   # measured for resnet18 (plain and features_only): meta works

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x):
        out = self.model(x)
        return tuple(out) if isinstance(out, list) else out


class TimmNamespace(Namespace):
    library = extra = "timm"
    shown = "timm"
    example = "{block: timm, model: resnet18, in_chans: 1, num_classes: 0}"
    doc = ("a timm model: timm.create_model(model, pretrained=False, **options); features_only gives a "
           "tuple of feature maps; pretrained: a local folder or .safetensors file")
    arguments = (Argument("model", None, "str"), Argument("pretrained", "None", "str | None"),
                 Argument("allow_download", "False", "bool"), Argument("**options", None, ""))

    def __init__(self):
        self._entry = None

    def entry(self, name):
        self.load()
        if name is not None:
            raise KeyError(name)
        if self._entry is None:
            params = [P("model", P.KEYWORD_ONLY, annotation="str"), *BRIDGE_KEYWORDS, P("options", P.VAR_KEYWORD)]
            self._entry = Bridged("timm", build_block, params, f"timm: {first_paragraph(TimmModel)}",
                                  TimmModel)
        return self._entry

    def names(self) -> list[str]:
        return [""]

    def hint(self, name):
        return f" (a timm model is the block timm with its name under model: {{block: timm, model: {name}}})"


def build_block(*, model: str, pretrained=None, allow_download=False, **options) -> nn.Module:
    import timm

    from composer.blocks.bridges.common import library_values

    if not isinstance(model, str) or not timm.is_model(model):
        raise ValueError(f"unknown timm model {model!r}{suggest(str(model), timm.list_models())}")
    options = library_values(options, {}, f"timm {model}")
    try:
        built = timm.create_model(model, pretrained=False, **options)
    except TypeError as err:
        if "unexpected keyword" not in str(err):
            raise
        raise TypeError(f"timm {model}: {err}{_option_hint(model, options)}") from None
    if pretrained:
        _load(built, pretrained, allow_download, model, features_only=bool(options.get("features_only")))
    return TimmModel(built)


def _option_hint(model: str, options: dict) -> str:
    """"did you mean" over the model class's own keywords, for a misspelt option."""
    import timm

    keywords = [p for p in inspect.signature(type(timm.create_model(model, pretrained=False)).__init__).parameters
                if p not in ("self", "kwargs")]
    keywords += ["features_only", "out_indices", "drop_rate", "drop_path_rate", "global_pool"]
    unknown = [k for k in options if k not in keywords]
    return suggest(unknown[0], keywords) if unknown else ""


def _load(built, pretrained: str, allow_download: bool, model: str, features_only: bool = False) -> None:
    """Strictly, but a feature extractor (features_only) keeps only the stages up to its last
    out_index: the file's later stages and classifier are left out, as timm's own loading does
    (it loads the whole model, then cuts it). Every key the extractor has must be in the file."""
    from composer.blocks.bridges.pretrained import load_weights, locate

    source = locate(pretrained, allow_download, meta=on_meta())
    saved = (source.config or {}).get("architecture")
    if saved not in (None, model):
        raise ValueError(f"pretrained: {source.where} holds a timm '{saved}', not '{model}'")
    from timm.models import get_pretrained_cfg

    classifier = getattr(get_pretrained_cfg(model), "classifier", None)
    own = built.state_dict()
    drop = (lambda k: k.startswith(f"{classifier}.") and k not in own) if classifier else None
    if features_only:
        drop = lambda k: k not in own  # noqa: E731
    load_weights(built, source, drop=drop)
