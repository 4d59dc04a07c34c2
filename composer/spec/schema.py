"""The graph spec: YAML (or a dict built in Python) parsed once into frozen dataclasses.

Every section rejects unknown keys with a "did you mean"; every entry keeps its source location
so later stages (graph build, shape checks, plan) can point back at the YAML.
"""
from __future__ import annotations

import re
from pathlib import Path

from composer.errors import Loc, SpecError, did_you_mean
from composer.spec.flowexpr import FlowSyntaxError
from composer.spec.flowexpr import parse as parse_call
from composer.spec.extends import load_graph
from composer.spec.paths import check_pretrained, project_roots
from composer.spec.references import escape_literals, resolve
from composer.spec.values import check_finite, check_range, check_train, finite, graph_relative, same_kind
from composer.spec.records import (  # noqa: F401  (re-exported: the spec's records)
    InputSpec, ModuleSpec, FlowSpec, ObjectiveSpec, PhaseSpec, OptimizerSpec, ScheduleSpec, TrainSpec, SampleSpec, EvalSpec, Spec, nearest_loc)
from composer.spec.yamlio import Locs, apply_overrides

SECTIONS = ("name", "plugins", "inputs", "modules", "flow", "objectives", "optimizers", "phases",
            "schedule", "train", "sample", "eval")
OBJECTIVE_KEYS = ("recipe", "weight", "every", "trains", "terms")   # keys every objective takes
TERM_KEYS = ("weight", "every", "trains")                           # keys of one term under `terms:`
PHASE_KEYS = ("terms", "optimizers", "redraw")
NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,99}")
def with_overrides(spec: Spec, overrides) -> Spec:
    """The Spec with `key=value` overrides applied (as if they had been given on load)."""
    if not overrides:
        return spec
    return parse(spec.data, spec.locs, spec.file, overrides, spec.allowed)


def load(path: str | Path, overrides=(), allow_paths=()) -> Spec:
    """Read a graph file (and the files it `extends:`), apply `key=value` overrides, resolve
    `${...}` references, parse into a Spec. Files it names (extends, weights, pretrained) may lie
    outside the working directory and its own folder only under `allow_paths` (spec/paths.py)."""
    data, locs = load_graph(path, allow_paths)
    return parse(data, locs, str(path), overrides, allow_paths)


def parse(data: dict, locs: Locs | None = None, file: str = "<spec>", overrides=(), allow_paths=()) -> Spec:
    locs = dict(locs or {})
    data = resolve(apply_overrides(data, locs, overrides), locs)     # overrides first: they flow into references
    allowed = tuple(str(a) for a in allow_paths)
    p = _Parser(data, locs, file, project_roots(file, allowed))
    p.keys((), data, SECTIONS)
    spec = Spec(
        name=p.name(Path(file).stem),
        inputs=p.entries("inputs", p.input), modules=p.entries("modules", p.module),
        flow=p.entries("flow", p.flow), objectives=p.entries("objectives", p.objective),
        optimizers=p.entries("optimizers", p.optimizer), schedule=p.schedule(),
        train=p.simple("train", TrainSpec), sample=p.sample(),
        eval=p.simple("eval", EvalSpec), plugins=p.plugins(), phases=p.entries("phases", p.phase),
        file=file, data=escape_literals(data), locs=locs, allowed=allowed)   # data: references resolved
    check_finite(p, (), data)     # after the sections: their own checks say more where they have one
    return spec


class _Parser:
    def __init__(self, data: dict, locs: Locs, file: str, roots: tuple[Path, ...] | None):
        self.data, self.locs, self.file, self.roots = data, locs, file, roots

    def loc(self, path: tuple) -> Loc:
        return nearest_loc(self.locs, self.file, path)

    def fail(self, message: str, path: tuple) -> SpecError:
        return SpecError(message, ".".join(str(p) for p in path), self.loc(path))

    def keys(self, path: tuple, mapping: dict, allowed) -> None:
        for key in mapping:
            if key not in allowed:
                raise self.fail(f"unknown key '{key}'{did_you_mean(str(key), allowed)}", path + (key,))

    def mapping(self, path: tuple, value, what: str) -> dict:
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise self.fail(f"expected a mapping ({what}), got {type(value).__name__}", path)
        return value

    def entries(self, section: str, parse_one) -> tuple:
        body = self.mapping((section,), self.data.get(section), f"name: entry")
        return tuple(parse_one((section, str(name)), str(name), value) for name, value in body.items())

    def input(self, path, name, value) -> InputSpec:
        body = dict(self.mapping(path, value, "source: ... or noise: ..."))
        kinds = [k for k in ("source", "noise") if k in body]
        if len(kinds) != 1:
            raise self.fail("an input needs exactly one of 'source' (data) or 'noise'", path)
        kind = kinds[0]
        target = body.pop(kind)
        batch = body.pop("batch", None)
        if batch is not None and (not isinstance(batch, int) or batch < 1):
            raise self.fail(f"batch must be a positive integer, got {batch!r}", path + ("batch",))
        return InputSpec(name, "data" if kind == "source" else "noise", str(target), body, batch, self.loc(path))

    def module(self, path, name, value) -> ModuleSpec:
        if isinstance(value, list):
            layers = tuple(self.module(path + (i,), f"{name}.{i}", v) for i, v in enumerate(value))
            if not layers:
                raise self.fail("an inline module needs at least one layer", path)
            return ModuleSpec(name, None, {}, layers, None, self.loc(path))
        if isinstance(value, str):
            return ModuleSpec(name, value, {}, (), None, self.loc(path))
        body = dict(self.mapping(path, value, "block: ... and its arguments"))
        if "block" not in body:
            raise self.fail("a module needs 'block' (a name from the block registry) or a list of layers", path)
        block, weights = body.pop("block"), body.pop("weights", None)
        spectral = body.pop("spectral_norm", None) or False
        if not isinstance(spectral, bool):
            raise self.fail(f"expected true or false, got {spectral!r}", path + ("spectral_norm",))
        args = check_pretrained(graph_relative(body, self.file), self.roots, path, self.loc(path + ("pretrained",)))
        return ModuleSpec(name, str(block), args, (), weights, self.loc(path), spectral_norm=spectral)

    def flow(self, path, name, value) -> FlowSpec:
        if isinstance(value, str):
            try:
                call = parse_call(value)
            except FlowSyntaxError as err:
                raise self.fail(str(err), path) from None
            return FlowSpec(name, call.target, call.inputs, call.args, self.loc(path))
        body = dict(self.mapping(path, value, "module: ..., inputs: [...] or op: ..., inputs: [...]"))
        kinds = [k for k in ("module", "op") if k in body]
        if len(kinds) != 1:
            raise self.fail("a flow entry needs exactly one of 'module' or 'op'", path)
        target = body.pop(kinds[0])
        if kinds[0] == "module":
            self.keys(path, body, ("inputs",))
        inputs = body.pop("inputs", [])
        inputs = [inputs] if isinstance(inputs, str) else inputs
        if not isinstance(inputs, list) or not all(isinstance(i, str) for i in inputs):
            raise self.fail(f"inputs must be a list of tensor names, got {inputs!r}", path + ("inputs",))
        return FlowSpec(name, str(target), tuple(inputs), body, self.loc(path))

    def objective(self, path, name, value) -> ObjectiveSpec:
        body = dict(self.mapping(path, value, "recipe: ... and its arguments"))
        if "recipe" not in body:
            raise self.fail("an objective needs 'recipe' (a name from the recipe registry)", path)
        recipe = body.pop("recipe")
        weight = body.pop("weight", 1.0)
        self.weight(path + ("weight",), weight)
        every = self.positive_int(path + ("every",), body.pop("every", 1))
        trains = self.modules_moved(path + ("trains",), body.pop("trains", None))
        terms = self.mapping(path + ("terms",), body.pop("terms", None), "term: {weight, every, trains}")
        for term, options in terms.items():
            options = self.mapping(path + ("terms", term), options, "weight, every, trains")
            self.keys(path + ("terms", term), options, TERM_KEYS)
            self.weight(path + ("terms", term, "weight"), options.get("weight", 1.0))
            self.positive_int(path + ("terms", term, "every"), options.get("every", 1))
            self.modules_moved(path + ("terms", term, "trains"), options.get("trains"))
        return ObjectiveSpec(name, str(recipe), body, weight, every, dict(terms), trains, self.loc(path))

    def modules_moved(self, path, value) -> tuple[str, ...] | None:
        """`trains:` a non-empty list of module names (one name alone is accepted), or absent."""
        if value is None:
            return None
        moved = self.names(path, value, "module names")
        if not moved:
            raise self.fail("expected at least one module name (a term that moves nothing is minimised "
                            "by no phase: leave the objective out instead)", path)
        return moved

    def weight(self, path, value) -> None:
        """A weight is a number or a schedule mapping `{type: linear, ...}` (checked at build)."""
        if isinstance(value, dict):
            if "type" not in value:
                raise self.fail("a weight schedule needs 'type' (e.g. linear)", path)
            return
        if not finite(value):
            raise self.fail(f"expected a number or a weight schedule mapping, got {value!r}", path)
        if value < 0:   # a negative weight turns a loss into its opposite: no recipe documents one
            raise self.fail(f"expected a weight >= 0, got {value!r}", path)

    def positive_int(self, path, value) -> int:
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise self.fail(f"expected a positive integer, got {value!r}", path)
        return value

    def names(self, path, value, what: str) -> tuple[str, ...]:
        value = [value] if isinstance(value, str) else value
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self.fail(f"expected a list of {what}, got {value!r}", path)
        return tuple(value)

    def phase(self, path, name, value) -> PhaseSpec:
        body = self.mapping(path, value, "terms, optimizers, redraw")
        self.keys(path, body, PHASE_KEYS)
        terms = self.names(path + ("terms",), body["terms"], "terms") if "terms" in body else None
        opts = self.names(path + ("optimizers",), body["optimizers"], "optimizers") if "optimizers" in body else None
        redraw = self.names(path + ("redraw",), body.get("redraw", []), "inputs")
        return PhaseSpec(name, terms, opts, redraw, self.loc(path))

    def name(self, default: str) -> str:
        """The graph's name, also its default run folder runs/NAME: a plain name, no path."""
        if "name" not in self.data:
            return default if NAME.fullmatch(default) else "graph"
        name = self.data["name"]
        if not isinstance(name, (str, int)) or isinstance(name, bool) or not NAME.fullmatch(str(name)):
            raise self.fail(f"expected a plain name (letters, digits, '_', '-', '.'; no path), got {name!r}",
                            ("name",))
        return str(name)

    def plugins(self) -> tuple[str, ...]:
        return self.names(("plugins",), self.data.get("plugins") or [], "plugin names")

    def sample(self) -> SampleSpec:
        path = ("sample",)
        body = dict(self.mapping(path, self.data.get("sample"), "sample"))
        core = {k: body.pop(k) for k in ("output", "objective", "n", "nrow") if k in body}
        if not isinstance(core.get("objective", ""), (str, type(None))):
            raise self.fail(f"expected an objective name, got {core['objective']!r}", path + ("objective",))
        if body and core.get("objective") is None:
            key = next(iter(body))
            raise self.fail(f"unknown key '{key}'{did_you_mean(str(key), ('output', 'objective', 'n', 'nrow'))}"
                            " (keys such as 'sampler' belong to the generating objective: set sample.objective)",
                            path + (key,))
        for key in ("n", "nrow"):
            if key in core and core[key] is not None:
                self.positive_int(path + (key,), core[key])
        return SampleSpec(**core, options=body, loc=self.loc(path))

    def optimizer(self, path, name, value) -> OptimizerSpec:
        body = dict(self.mapping(path, value, "params: [modules], type, lr, ..."))
        params = body.pop("params", None)
        if params is None:
            raise self.fail("an optimizer needs 'params': the modules it updates", path)
        params = self.names(path + ("params",), params, "module names")
        kind, lr = body.pop("type", "adam"), body.pop("lr", 1e-3)
        if not isinstance(kind, str):
            raise self.fail(f"expected an optimizer type name, got {kind!r}", path + ("type",))
        if not finite(lr) or not 0 < lr:
            raise self.fail(f"lr must be a positive finite number, got {lr!r}", path + ("lr",))
        sched = self.mapping(path + ("lr_schedule",), body.pop("lr_schedule", None), "lr schedule")
        return OptimizerSpec(name, tuple(str(p) for p in params), kind, float(lr), body, dict(sched), self.loc(path))

    def schedule(self) -> ScheduleSpec:
        path = ("schedule",)
        body = self.mapping(path, self.data.get("schedule"), "order, repeat, every")
        self.keys(path, body, ("order", "repeat", "every", "refresh_detached"))
        order = body.get("order", [])
        if not isinstance(order, list):
            raise self.fail("order must be a list of optimizer names", path + ("order",))
        for key in ("repeat", "every"):
            for phase, count in self.mapping(path + (key,), body.get(key), "phase: count").items():
                self.positive_int(path + (key, phase), count)     # `true` is no count
        return ScheduleSpec(tuple(str(o) for o in order), dict(body.get("repeat") or {}),
                            dict(body.get("every") or {}), bool(body.get("refresh_detached", False)),
                            self.loc(path))

    def simple(self, section: str, cls):
        path = (section,)
        body = self.mapping(path, self.data.get(section), section)
        allowed = [f for f in cls.__dataclass_fields__ if f != "loc"]
        self.keys(path, body, allowed)
        defaults = cls()
        for key, value in body.items():
            expected = getattr(defaults, key)
            if expected is not None and not same_kind(expected, value):
                raise self.fail(f"expected {type(expected).__name__}, got {value!r}", path + (key,))
            check_range(self, path + (key,), value)
        if section == "train":
            check_train(self, path, body)
        return cls(**body, loc=self.loc(path))
