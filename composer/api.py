"""The Python API: the same stages as the CLI (load/parse -> build -> compile -> run/step)."""
from __future__ import annotations

from pathlib import Path

import yaml

from . import spec as spec_module
from .builder import GraphBuilder
from .graph import Graph, build
from .plan import Plan, compile
from .plan_view import format_table, to_json
from .runtime import Runner
from .spec import Spec


def load(path: str | Path, overrides=()) -> Spec:
    """Read a graph file (with optional `key=value` overrides) into a Spec."""
    return spec_module.load(path, overrides)


def from_dict(data: dict, overrides=(), name: str = "<python>") -> Spec:
    """A Spec from a plain dict, exactly as if it had been read from YAML."""
    return spec_module.parse(data, None, name, overrides)


def to_yaml(spec: Spec) -> str:
    """The YAML text of a Spec (round trip: from_dict(yaml.safe_load(to_yaml(s))) == s)."""
    return yaml.safe_dump(spec.data, sort_keys=False)


def plan(source: Spec | str | Path, overrides=()) -> Plan:
    spec = source if isinstance(source, Spec) else load(source, overrides)
    return compile(build(spec))


def runner(source: Spec | Plan | str | Path, overrides=(), cpu: bool | None = None) -> Runner:
    """A Runner ready for `step(feed)` or training."""
    compiled = source if isinstance(source, Plan) else plan(source, overrides)
    return Runner(compiled, cpu=cpu)


def train(source, out: str | Path, overrides=(), resume: bool = False, quiet: bool = False) -> dict:
    from .train import Trainer

    run = runner(source, overrides)
    return Trainer(run, out, resume=resume, quiet=quiet).run()


__all__ = ["Graph", "GraphBuilder", "Plan", "Runner", "Spec", "build", "compile", "format_table", "from_dict",
           "load", "plan", "runner", "to_json", "to_yaml", "train"]
