"""The names a plugin uses, in one documented module.

A plugin is an installed package whose entry point (group `composer.plugins`) names one
`register(r)` function; `r` has one `Registry` per kind (`r.blocks`, `r.recipes`, `r.ops`,
`r.sources`, `r.noise`, `r.samplers`, `r.metrics`, ...: `composer list` shows them all). What the
entries are:

    block      an nn.Module class with keyword arguments (YAML maps them one-to-one)
    recipe     `fn(name, /, **args) -> Expansion` of `Node`s: ordinary graph nodes plus loss terms
               (`Node(kind="term", op=Loss(per_sample_fn, label), trains=(...))`); a recipe that
               generates returns a `Generator` in its Expansion
    op         a `FlowOp` subclass: `__call__(ctx, *tensors)`, printed as `name[k=v]` in the plan
    source     `Source(load, fields)`: `load(**args) -> Table`, `fields(args)` the per-sample
               layout without reading data (`image_fields`, `point_fields`)
    metric     `fn(samples, table, **options) -> {name: float}`, or `fn(*, runner, **options)` for
               a metric that runs the flow itself (`runner` is a `composer.run.evaluate.Evaluation`)
    callback   a `Callback` subclass (hooks: composer/run/callbacks.py), made with no arguments when
               a graph names it in `train.callbacks`

`Tensor` / `Tensors` annotate arguments that name graph tensors (checked like flow references).
Errors for the user are `ComposerError`s. Nothing else of composer's internals is promised to
plugins; these names stay importable from here across versions.
"""
from composer.data.source import Source, image_fields, point_fields
from composer.data.table import Table
from composer.errors import ComposerError
from composer.graph.nodes import Expansion, FlowOp, Generator, Loss, Node, Op, OptionError, Tensor, Tensors
from composer.registry import Registry
from composer.run.callbacks import Callback

__all__ = ["Callback", "ComposerError", "Expansion", "FlowOp", "Generator", "Loss", "Node", "Op", "OptionError", "Registry",
           "Source", "Table", "Tensor", "Tensors", "image_fields", "point_fields"]
