"""A Spec back to plain data: the graph file as composer reads it, with `extends:` applied,
`${...}` references resolved and every default filled in from the spec dataclasses. This is what
`composer validate FILE --print` prints; parsing it back gives an equal Spec
(`from_dict(yaml.safe_load(text)) == spec`).
"""
from __future__ import annotations

import dataclasses

import yaml

from composer.spec.flowexpr import Call, FlowSyntaxError
from composer.spec.flowexpr import parse as parse_call
from composer.spec.references import escape_literals
from composer.spec.schema import FlowSpec, InputSpec, ModuleSpec, ObjectiveSpec, OptimizerSpec, PhaseSpec, Spec


def to_data(spec: Spec) -> dict:
    """The Spec as the mapping of sections a graph file holds, defaults written out."""
    modules = {m.name for m in spec.modules}
    data = {"name": spec.name, "plugins": list(spec.plugins),
            "inputs": {i.name: _input(i) for i in spec.inputs},
            "modules": {m.name: _module(m) for m in spec.modules},
            "flow": {f.name: _flow(f, modules) for f in spec.flow},
            "objectives": {o.name: _objective(o) for o in spec.objectives},
            "optimizers": {o.name: _optimizer(o) for o in spec.optimizers}}
    if spec.phases:
        data["phases"] = {p.name: _phase(p) for p in spec.phases}
    data["schedule"] = _fields(spec.schedule)
    data["train"] = _fields(spec.train)
    sample = _fields(spec.sample)
    data["sample"] = {**{k: v for k, v in sample.items() if k != "options"}, **sample["options"]}
    data["eval"] = _fields(spec.eval)
    return escape_literals(data)       # tuples as lists; a literal '${' as '$${', so the text reads back


def to_yaml(spec: Spec) -> str:
    """`to_data` as YAML text: sections in the order of a graph file, leaf lists inline."""
    return yaml.dump(to_data(spec), Dumper=_Dumper, sort_keys=False, width=100, allow_unicode=True)


class _Dumper(yaml.SafeDumper):
    """Mappings as blocks, lists of scalars inline (`shape: [1, 8, 8]`), as graph files are written."""

    def represent_list(self, data):
        inline = all(not isinstance(item, (dict, list)) for item in data)
        return self.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=inline)

    def represent_dict(self, data):
        return self.represent_mapping("tag:yaml.org,2002:map", data, flow_style=not data)


_Dumper.add_representer(list, _Dumper.represent_list)
_Dumper.add_representer(dict, _Dumper.represent_dict)


def _input(item: InputSpec) -> dict:
    return {"source" if item.kind == "data" else "noise": item.target, **item.args, "batch": item.batch}


def _module(module: ModuleSpec):
    if module.layers:
        return [_module(layer) for layer in module.layers]
    spectral = {"spectral_norm": True} if module.spectral_norm else {}   # printed only where set
    return {"block": module.block, **module.args, "weights": module.weights, **spectral}


def _flow(flow: FlowSpec, modules: set) -> str | dict:
    """The string form (`G(z)`, `cat(x, y, dim=1)`) when it reads back the same, else the mapping form."""
    args = [f"{value!r}" if key == "value" else f"{key}={value!r}" for key, value in flow.args.items()]
    texts = [f"{flow.target}({', '.join([*flow.inputs, *args])})"]
    if flow.target == "index" and len(flow.inputs) == 1 and set(flow.args) == {"i"}:
        texts.insert(0, f"{flow.inputs[0]}[{flow.args['i']!r}]")
    for text in texts:
        try:
            if parse_call(text) == Call(flow.target, flow.inputs, flow.args):
                return text
        except FlowSyntaxError:
            pass
    if flow.target in modules and not flow.args:
        return {"module": flow.target, "inputs": list(flow.inputs)}
    return {"op": flow.target, "inputs": list(flow.inputs), **flow.args}


def _objective(objective: ObjectiveSpec) -> dict:
    return {"recipe": objective.recipe, **objective.args, "weight": objective.weight,
            "every": objective.every, "trains": list(objective.trains) if objective.trains is not None else None,
            "terms": objective.terms}


def _optimizer(optimizer: OptimizerSpec) -> dict:
    return {"params": optimizer.params, "type": optimizer.type, "lr": optimizer.lr, **optimizer.args,
            "lr_schedule": optimizer.lr_schedule}


def _phase(phase: PhaseSpec) -> dict:
    body = {"terms": phase.terms, "optimizers": phase.optimizers, "redraw": phase.redraw}
    return {k: v for k, v in body.items() if v is not None}       # absent: derived from the phase's name


def _fields(section) -> dict:
    """A section dataclass's keys and values (not its location)."""
    return {f.name: getattr(section, f.name) for f in dataclasses.fields(section) if f.name != "loc"}

