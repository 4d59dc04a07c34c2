"""Build a graph spec in Python, section by section; the result is the same Spec a YAML file
gives (it goes through the same parser and checks)."""
from __future__ import annotations

import copy

from composer.spec.schema import Spec, parse


class GraphBuilder:
    """g = GraphBuilder("dcgan"); g.data_input("real", "digits", size=16); g.noise("z", shape=[32])
    g.module("G", "DCGANGenerator", image_size=16, ...); g.flow("fake", "G", "z"); ...; g.spec()"""

    def __init__(self, name: str):
        self.data: dict = {"name": name}

    def _put(self, section: str, name: str, value) -> "GraphBuilder":
        self.data.setdefault(section, {})[name] = value
        return self

    def data_input(self, name: str, source: str, *, batch: int | None = None, **args) -> "GraphBuilder":
        return self._put("inputs", name, {"source": source, **args, **({"batch": batch} if batch else {})})

    def noise(self, name: str, kind: str = "normal", **args) -> "GraphBuilder":
        return self._put("inputs", name, {"noise": kind, **args})

    def module(self, name: str, block: str | list, **args) -> "GraphBuilder":
        return self._put("modules", name, block if isinstance(block, list) else {"block": block, **args})

    def flow(self, name: str, target: str, *inputs: str, **args) -> "GraphBuilder":
        """`name: target(inputs..., key=value...)`: a module call or a flow op; inputs may be
        dotted (`real.y`, `post.z`)."""
        parts = list(inputs) + [f"{key}={value!r}" for key, value in args.items()]
        return self._put("flow", name, f"{target}({', '.join(parts)})")

    def phase(self, name: str, **values) -> "GraphBuilder":
        return self._put("phases", name, values)

    def plugins(self, *names: str) -> "GraphBuilder":
        self.data["plugins"] = list(names)
        return self

    def objective(self, name: str, recipe: str, **args) -> "GraphBuilder":
        return self._put("objectives", name, {"recipe": recipe, **args})

    def optimizer(self, name: str, params: list[str], **args) -> "GraphBuilder":
        return self._put("optimizers", name, {"params": list(params), **args})

    def section(self, section: str, **values) -> "GraphBuilder":
        self.data.setdefault(section, {}).update(values)
        return self

    def schedule(self, **values) -> "GraphBuilder":
        return self.section("schedule", **values)

    def train(self, **values) -> "GraphBuilder":
        return self.section("train", **values)

    def sample(self, **values) -> "GraphBuilder":
        return self.section("sample", **values)

    def eval(self, **values) -> "GraphBuilder":
        return self.section("eval", **values)

    def spec(self, overrides=()) -> Spec:
        return parse(copy.deepcopy(self.data), None, f"<builder {self.data['name']}>", overrides)
