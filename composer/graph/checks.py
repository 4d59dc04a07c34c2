"""The settings a graph is checked against once it is built: what `sample:` generates, the
`eval.metrics` and their options, and the training settings (optimizers, LR schedules, callbacks,
EMA, model size). Every one fails before training, at its YAML line."""
from __future__ import annotations

import inspect

from composer.errors import did_you_mean
from composer.graph.lower import bind_args, check_tensor_args, flow_methods
from composer.graph.nodes import Node, OptionError
from composer.spec.schema import Spec

def check_sample(spec: Spec, table: dict[str, Node], generators: dict) -> None:
    """`sample.output`: one node name, or a list of them shown side by side; `sample.objective`:
    an objective whose recipe generates, with the options that recipe's generator accepts."""
    output = spec.sample.output
    if output is not None:
        names = [output] if isinstance(output, str) else output
        if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
            raise spec.error(f"expected a tensor name or a list of them, got {output!r}", "sample", "output")
        for i, name in enumerate(names):
            if name not in table:
                path = ("sample", "output") if isinstance(output, str) else ("sample", "output", i)
                raise spec.error(f"'{name}' is not a tensor of the graph{did_you_mean(name, table)}", *path)
    objective = spec.sample.objective
    if objective is None:
        return
    recipes = {o.name: o.recipe for o in spec.objectives}
    if objective not in recipes:
        raise spec.error(f"unknown objective '{objective}'{did_you_mean(str(objective), recipes)}",
                         "sample", "objective")
    if objective not in generators:
        makers = [o.name for o in spec.objectives if o.name in generators]
        raise spec.error(f"objective '{objective}' (recipe {recipes[objective]}) does not generate; "
                         + (f"objectives that do: {', '.join(makers)}" if makers else
                            "to sample a flow tensor, set sample.output instead"), "sample", "objective")
    generator = generators[objective]
    bind_args(spec, generator.__call__, spec.sample.options, ("sample",),
              f"the generator of recipe {recipes[objective]}", supplied=("gen", "n"))
    try:
        generator.check(spec.sample.options, callables(spec))
    except OptionError as err:
        raise spec.error(err.message, "sample", err.key) from None


def callables(spec: Spec) -> set[str]:
    """What a generator may call by name: every module, and `M.method` for each flow method its
    block offers (a latent diffusion model decodes with `decode: vae.decode`)."""
    names = {m.name for m in spec.modules}
    return names | {f"{m}.{method}" for m in names for method in flow_methods(spec, m)}


def check_metrics(spec: Spec, table: dict[str, Node]) -> None:
    """`eval.metrics`: known names and options, checked before training rather than after it."""
    from composer.metrics import METRICS
    from composer.spec.paths import check_spec_path

    for name, options in (spec.eval.metrics or {}).items():
        path = ("eval", "metrics", name)
        if name not in METRICS:
            raise spec.error(METRICS.unknown(name), *path)
        if options is not None and not isinstance(options, dict):
            raise spec.error(f"expected a mapping of metric options, got {options!r}", *path)
        metric = METRICS[name]
        bind_args(spec, metric, options or {}, path, f"metric {name}", supplied=METRICS.supplied)
        check_tensor_args(spec, metric, options or {}, path, f"metric {name}")
        for key, value in (options or {}).items():
            if key in _tensor_options(metric) and value not in table:
                raise spec.error(f"'{value}' is not a tensor of the graph{did_you_mean(str(value), table)}",
                                 *path, key)
            if key == "weights" and isinstance(value, str) and value:     # a local network's file (inception)
                check_spec_path(spec, value, *path, key)
        if "samples" in inspect.signature(metric).parameters and isinstance(spec.sample.output, list):
            raise spec.error(f"metric {name} scores generated samples: sample.output must name one tensor, "
                             "not a list", *path)


def _tensor_options(fn) -> set:
    from composer.graph.lower import annotated_kinds
    from composer.graph.nodes import Tensor

    return {key for key, kinds in annotated_kinds(fn).items() if Tensor in kinds}


def check_sample_shapes(spec: Spec, graph) -> None:
    """The sample grids a run writes take images [C, H, W] (C = 1 or 3), several of one shape side
    by side, or one tensor of 2-D points [2] (a scatter): anything else would fail at the end of
    training, so it is refused here."""
    output = spec.sample.output
    if isinstance(output, list) and len({graph.shapes.get(n) for n in output}) > 1:
        shapes = ", ".join(f"{n} {list(graph.shapes.get(n, ()))}" for n in output)
        raise spec.error(f"tensors shown side by side need one shape, got {shapes}", "sample", "output")
    name = output[0] if isinstance(output, list) and output else output
    shape = graph.shapes.get(name) if isinstance(name, str) else None
    if not isinstance(shape, tuple) or not all(isinstance(d, int) for d in shape):
        return                                   # nothing named, or a multi-output value
    image = len(shape) == 3 and shape[0] in (1, 3)
    points = shape == (2,) and not isinstance(output, list)
    if not (image or points):
        raise spec.error(f"'{name}' has shape {list(shape)} per sample, but the sample grids a run writes "
                         "take images [C, H, W] with C = 1 or 3 (several of one shape side by side) or 2-D "
                         "points [2]: name such a tensor here, and write any other tensor raw with "
                         f"`composer sample RUN --node {name} -o {name.replace('.', '_')}.npy`",
                         "sample", "output")


def check_training(spec: Spec, graph) -> None:
    """Optimizer arguments, LR schedules, EMA modules and model size: every training setting is
    checked before training starts."""
    from composer.spec.values import check_optimizer

    for opt in spec.optimizers:
        check_optimizer(spec, opt, spec.train.steps)
    if spec.train.callbacks:   # only then: the run layer's table is read through the registry
        from composer import registry

        known = registry.get("callbacks")
        for k, name in enumerate(spec.train.callbacks):
            if name not in known:
                raise spec.error(known.unknown(name), "train", "callbacks", k)
    for module in spec.train.ema:
        if module not in graph.param_counts:
            raise spec.error(f"unknown module '{module}'{did_you_mean(str(module), graph.param_counts)}",
                             "train", "ema", module)
    for name, count in graph.param_counts.items():
        if count > MAX_PARAMETERS:
            raise spec.error(f"module '{name}' would have {count:,} parameters (more than {MAX_PARAMETERS:,}): "
                             "check its sizes", "modules", name)


MAX_PARAMETERS = 20_000_000_000
