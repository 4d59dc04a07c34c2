"""Contracts every registry entry keeps, whoever registered it (composer or a plugin), instead of
frozen lists of names: a new entry is checked as soon as it is registered, and a new block or op
needs an example here (its test fails until it has one).

For every kind: a one-line doc of its own, an example (a shipped graph file or a YAML snippet of
README.md or docs/tutorial.md uses the entry, or it carries an example of its own), "unknown
<kind> 'x'" messages, a JSON listing, YAML arguments that do not shadow the section's own keys. Per kind: blocks build and run on meta and
CPU; sources yield the fields they declare; ops run on meta and CPU; metrics take `samples,
table` or `runner`; and the smaller kinds are called once on an example.
"""
import inspect
import json
import re
from dataclasses import dataclass
from functools import cache

import pytest
import torch
import yaml

from composer import registry
from composer.spec import flowexpr
from conftest import GRAPHS, ROOT
from composer.graph.interpreter import Context
from composer.data.inputs import INPUT_KEYS
from composer.data.noise import NOISE_KEYS
from composer.data.source import Source
from composer.recipes.adversarial import GANLoss
from composer.recipes.schedules import Schedule
from composer.spec.schema import OBJECTIVE_KEYS


def _entries(kind):
    return [(kind, name) for name in sorted(registry.get(kind))]


ALL = [pair for kind in registry.KINDS for pair in _entries(kind)]


def _known_gaps(pairs, gaps: dict):
    """(kind, name) params, ids "kind:name"; entries with a known core gap run as strict xfails:
    fixing the gap fails the test until the entry is taken off the list."""
    def marks(pair):
        return [pytest.mark.xfail(strict=True, reason=gaps[pair])] if pair in gaps else []

    return [pytest.param(*p, id=":".join(p), marks=marks(p)) for p in pairs]


# ===================================================================== every kind
@pytest.mark.parametrize("kind", registry.KINDS)
def test_get_returns_a_registry_with_a_json_listing(kind):
    entries = registry.get(kind)
    assert isinstance(entries, registry.Registry) and len(entries) > 0
    listing = json.loads(json.dumps(entries.describe()))
    namespaces = [n.shown for _, n in sorted(entries.namespaces.items())]     # one line per namespace, last
    assert [item["name"] for item in listing] == sorted(entries) + namespaces
    assert all(set(item) >= {"name", "doc", "origin", "arguments"} for item in listing)


@pytest.mark.parametrize("kind", registry.KINDS)
def test_unknown_names_the_kind_and_the_name(kind):
    entries = registry.get(kind)
    assert entries.unknown("x").startswith(f"unknown {entries.kind} 'x'")


def test_accepts_reads_the_keyword_signature_minus_supplied_arguments_and_honours_catch_alls():
    def fixed(x, *, eta: float = 0.0, steps: int = 1):
        """fixed keywords"""

    def open_ended(x, *, steps: int = 1, **options):
        """any keyword"""

    entries = registry.Registry("thing", {"fixed": fixed, "open": open_ended}, supplied=("steps",))
    assert entries.accepts("fixed", "eta") and not entries.accepts("fixed", "etaa")
    assert not entries.accepts("fixed", "steps")                 # composer supplies it
    assert entries.accepts("open", "eta") and entries.accepts("open", "anything")
    assert not entries.accepts("open", "steps")                  # supplied, even beside **options
    assert registry.get("samplers").accepts("ddim", "eta") and not registry.get("samplers").accepts("heun", "eta")


def test_an_unknown_kind():
    with pytest.raises(registry.ComposerError, match=r"unknown registry 'block' \(did you mean 'blocks'\?\)"):
        registry.get("block")


@pytest.mark.parametrize("kind, name", _known_gaps(ALL, {}))
def test_every_entry_has_a_one_line_doc_of_its_own(kind, name):
    entries = registry.get(kind)
    doc, entry = entries.doc(name), entries[name]
    assert doc.strip() and "\n" not in doc, f"{kind} '{name}' has no doc"
    if isinstance(entry, type) and not entry.__dict__.get("__doc__"):   # not a base class's doc
        assert doc != (inspect.getdoc(entry) or "").strip().splitlines()[0], f"{kind} '{name}' inherits its doc"


# ===================================================================== examples
# What counts as an example of an entry: a graph file under graphs/ that uses it, a YAML snippet
# of README.md or docs/tutorial.md that uses it (a ```yaml block, an inline `{...}` mapping, a
# `key.path=value` override, or for an op an inline flow string such as `sub(x, 1.0)`), or an
# example of its own: `Registry.example(name)`, the `Example:` line of its docstring or the
# `example=` it was registered with. "Uses" is read the way a graph file reads it:
ENTRY_KEYS = {"blocks": "block", "recipes": "recipe", "sources": "source", "noise": "noise",
              "losses": "loss", "penalties": "penalty", "weightings": "weighting", "samplers": "sampler"}
DOCS = (ROOT / "README.md", ROOT / "docs" / "tutorial.md")


def _nested(data):
    """`{eval.metrics: {digits: {}}}` -> `{eval: {metrics: {digits: {}}}}`, as an override reads."""
    if isinstance(data, list):
        return [_nested(v) for v in data]
    if not isinstance(data, dict):
        return data
    out = {}
    for key, value in data.items():
        value = _nested(value)
        if isinstance(key, str) and "." in key.strip("."):
            head, *rest = key.split(".")
            for part in reversed(rest):
                value = {part: value}
            key = head
        out[key] = value
    return out


def _flow_target(text):
    try:
        return flowexpr.parse(re.sub(r"\$\{[^}]*\}", "0", text)).target
    except (flowexpr.FlowSyntaxError, ValueError):
        return None


def _used(kind, mapping, key, value) -> set:
    """The names of `kind` that `key: value` (inside `mapping`) uses."""
    if kind in ENTRY_KEYS:
        return {value} if key == ENTRY_KEYS[kind] and isinstance(value, str) else set()
    if kind == "noise_schedules":            # a denoising objective's `schedule: vp`
        return {value} if key == "schedule" and isinstance(value, str) else set()
    if kind == "optimizers":
        return {value} if key == "type" and "params" in mapping and isinstance(value, str) else set()
    if kind == "callbacks":                  # train: {callbacks: [name, ...]}
        return {v for v in value if isinstance(v, str)} if key == "callbacks" and isinstance(value, list) else set()
    section = {"lr_schedules": "lr_schedule", "weight_schedules": "weight", "metrics": "metrics",
               "ops": "flow"}[kind]
    if key != section or not isinstance(value, dict):
        return set()
    if kind == "metrics":
        return set(value)
    if kind == "ops":
        return {_flow_target(text) for text in value.values() if isinstance(text, str)}
    return {value.get("type")}


def uses(kind, data) -> set:
    """Every name of `kind` that the YAML data `data` uses."""
    found, stack = set(), [_nested(data)]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            for key, value in node.items():
                found |= _used(kind, node, key, value)
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return found


# kinds whose entry is named inside the mapping of its own arguments: key naming it, keys that
# belong to the section rather than to the entry
OWN_MAPPING = {"blocks": ("block", {"weights", "spectral_norm"}), "sources": ("source", set(INPUT_KEYS)),
               "noise": ("noise", {*INPUT_KEYS, *NOISE_KEYS})}


def arguments_given(kind, data) -> list[tuple[str, str]]:
    """(entry, argument) for every argument `data` gives an entry of `kind` (blocks, sources,
    noise, LR and weight schedules), to check against the entry's keyword signature."""
    out, stack = [], [_nested(data)]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            if kind in OWN_MAPPING and isinstance(node.get(OWN_MAPPING[kind][0]), str):
                key, section = OWN_MAPPING[kind]
                out += [(node[key], k) for k in node if k != key and k not in section]
            for section in {"lr_schedules": ("lr_schedule",), "weight_schedules": ("weight",)}.get(kind, ()):
                value = node.get(section)
                if isinstance(value, dict) and isinstance(value.get("type"), str):
                    out += [(value["type"], k) for k in value if k != "type"]
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return out


def _snippet_data(text):
    """The YAML data of one snippet: the snippet itself, its `key.path=value` overrides, or a
    flow string."""
    try:
        data = yaml.safe_load(text)
        if isinstance(data, dict):
            yield data
    except yaml.YAMLError:
        pass
    for key, value in re.findall(r"(?<![\w.=-])([A-Za-z_]\w*(?:\.\w+)+)=([^\s']+)", text):
        yield {key: yaml.safe_load(value) if value[:1] not in "{[" else value}
    if _flow_target(text):
        yield {"flow": {"_": text}}


def snippet_data(text):
    """YAML data of every ```yaml block and inline `code` span of a markdown page."""
    for block in re.findall(r"```ya?ml\n(.*?)```", text, re.S):
        yield from _snippet_data(block)
    for span in re.findall(r"`([^`\n]+)`", text):
        yield from _snippet_data(span)


@cache
def shipped_uses(kind) -> frozenset:
    """Names of `kind` used by a shipped graph file or a snippet of the README or the tutorial."""
    found = set()
    for path in sorted(GRAPHS.glob("*.yaml")):
        found |= uses(kind, yaml.safe_load(path.read_text()))
    for page in DOCS:
        for data in snippet_data(page.read_text()):
            found |= uses(kind, data)
    return frozenset(found)


def example_problem(kind, name, entries) -> str | None:
    """Why entry `name` of `entries` (a registry of `kind`) has no usable example; None if it has."""
    example, key = entries.example(name), ENTRY_KEYS.get(kind, "type")
    if not example:
        if name in shipped_uses(kind):
            return None
        return (f"{kind} '{name}' has no example: use it in a graph file under graphs/ or in a YAML snippet "
                f"of README.md or docs/tutorial.md, or give it one: an `Example: ...` line in its docstring "
                f"(YAML that names it, e.g. `{{{key}: {name}, ...}}`) or `example=` where it is registered")
    data = next(_snippet_data(example), None)
    if data is None or name not in uses(kind, data):
        return (f"{kind} '{name}': its example {example!r} does not use it (expected YAML such as "
                f"`{{{key}: {name}, ...}}`, or for an op a flow string)")
    wrong = [arg for entry, arg in arguments_given(kind, data) if entry == name and not entries.accepts(name, arg)]
    return f"{kind} '{name}': its example {example!r} gives unknown argument(s) {wrong}" if wrong else None


@pytest.mark.parametrize("kind, name", _known_gaps(ALL, {}))
def test_every_entry_has_an_example(kind, name):
    problem = example_problem(kind, name, registry.get(kind))
    assert problem is None, problem


def test_an_entry_without_a_usable_example_is_named_with_the_fix():
    def bare(x):
        """Doubles x."""

    def wrong(x):
        """Doubles x.

        Example: `{block: Other}`
        """

    def typo(*, width: int = 1):
        """Doubles x.

        Example: `{block: Typo, widht: 3}`
        """

    entries = registry.Registry("block", {"Bare": bare, "Wrong": wrong, "Typo": typo,
                                          "Given": bare}, examples={"Given": "{block: Given}"})
    assert example_problem("blocks", "Bare", entries).startswith(
        "blocks 'Bare' has no example: use it in a graph file under graphs/")
    assert "`{block: Bare, ...}`" in example_problem("blocks", "Bare", entries)
    assert example_problem("blocks", "Wrong", entries) == (
        "blocks 'Wrong': its example '{block: Other}' does not use it (expected YAML such as "
        "`{block: Wrong, ...}`, or for an op a flow string)")
    assert example_problem("blocks", "Typo", entries).endswith("gives unknown argument(s) ['widht']")
    assert example_problem("blocks", "Given", entries) is None
    assert {e["name"]: e["example"] for e in entries.describe()}["Given"] == "{block: Given}"


@pytest.mark.parametrize("page", DOCS, ids=lambda p: p.name)
def test_doc_snippets_give_entries_only_arguments_they_take(page):
    wrong = {(kind, entry, key) for data in snippet_data(page.read_text()) for kind in OWN_MAPPING | {
        "lr_schedules": 0, "weight_schedules": 0} for entry, key in arguments_given(kind, data)
        if entry in registry.get(kind) and not registry.get(kind).accepts(entry, key)}
    assert not wrong, f"{page.name}: snippets give arguments their entries do not take: {sorted(wrong)}"


def test_the_example_finder_reads_graph_files_overrides_and_flow_strings():
    assert uses("blocks", {"modules": {"D": [{"block": "Linear"}, {"block": "ReLU"}]}}) == {"Linear", "ReLU"}
    assert uses("metrics", yaml.safe_load("eval.metrics: {digits: {}}")) == {"digits"}
    assert uses("samplers", next(_snippet_data("composer sample R sample.sampler=ddim"))) == {"ddim"}
    assert uses("ops", next(_snippet_data("sub(x, 1.0)"))) == {"sub"}
    assert uses("lr_schedules", {"optimizers": {"G": {"params": ["G"], "lr_schedule": {"type": "step"}}}}) == {"step"}
    assert uses("optimizers", {"train": {"type": "sgd"}}) == set()


# keys each section reads itself: an argument with one of these names cannot be given in YAML
RESERVED = {
    "blocks": ("block", "weights", "spectral_norm"),
    "recipes": OBJECTIVE_KEYS,
    "sources": ("source", "noise", *INPUT_KEYS),
    "noise": ("source", "noise", *INPUT_KEYS, *NOISE_KEYS),
    "ops": ("module", "op", "inputs"),
    "lr_schedules": ("type",),
    "weight_schedules": ("type",),
}


@pytest.mark.parametrize("kind, name", _known_gaps([p for p in ALL if p[0] in RESERVED], {}))
def test_yaml_arguments_do_not_shadow_the_section_keys(kind, name):
    arguments = {a.name for a in registry.get(kind).arguments(name)}
    assert not arguments & set(RESERVED[kind]), f"{kind} '{name}' takes {sorted(arguments & set(RESERVED[kind]))}"


# ===================================================================== blocks
@dataclass(frozen=True)
class Labels:
    """An input of int64 class labels [batch] in [0, classes)."""

    batch: int
    classes: int


# name -> (valid kwargs, input shapes, output shape); inputs of shape [B] are diffusion times
BLOCK_EXAMPLES = {
    "Linear": ({"in_features": 3, "out_features": 5}, [(4, 3)], (4, 5)),
    "ReLU": ({}, [(4, 3)], (4, 3)),
    "LeakyReLU": ({"negative_slope": 0.1}, [(4, 3)], (4, 3)),
    "Tanh": ({}, [(4, 3)], (4, 3)),
    "Sigmoid": ({}, [(4, 3)], (4, 3)),
    "SiLU": ({}, [(4, 3)], (4, 3)),
    "Conv2d": ({"in_channels": 1, "out_channels": 4, "kernel_size": 3, "padding": 1}, [(2, 1, 8, 8)], (2, 4, 8, 8)),
    "ConvTranspose2d": ({"in_channels": 4, "out_channels": 2, "kernel_size": 4, "stride": 2, "padding": 1},
                        [(2, 4, 4, 4)], (2, 2, 8, 8)),
    "BatchNorm": ({"num_features": 4}, [(2, 4, 3, 3)], (2, 4, 3, 3)),
    "InstanceNorm": ({"num_features": 4}, [(2, 4, 3, 3)], (2, 4, 3, 3)),
    "GroupNorm": ({"num_groups": 2, "num_channels": 4}, [(2, 4, 3, 3)], (2, 4, 3, 3)),
    "Dropout": ({"p": 0.1}, [(4, 3)], (4, 3)),
    "Flatten": ({}, [(2, 1, 8, 8)], (2, 64)),
    "Reshape": ({"shape": [1, 8, 8]}, [(2, 64)], (2, 1, 8, 8)),
    "Rearrange": ({"pattern": "b c h w -> b (h w) c"}, [(2, 3, 4, 5)], (2, 20, 3)),
    "MLP": ({"in_features": 2, "hidden": 16, "depth": 2, "out_features": 1}, [(4, 2)], (4, 1)),
    "ResidualMLP": ({"features": 6}, [(4, 6)], (4, 6)),
    "ResidualConv": ({"channels": 4, "norm": "group"}, [(2, 4, 8, 8)], (2, 4, 8, 8)),
    "DCGANGenerator": ({"image_size": 8, "channels": 1, "latent": 4, "width": 8}, [(2, 4)], (2, 1, 8, 8)),
    "DCGANDiscriminator": ({"image_size": 8, "channels": 1, "width": 8}, [(2, 1, 8, 8)], (2,)),
    "SelfAttention2d": ({"channels": 8}, [(2, 8, 4, 4)], (2, 8, 4, 4)),
    "ResnetGenerator": ({"in_channels": 1, "out_channels": 1, "width": 8, "n_blocks": 1}, [(2, 1, 16, 16)],
                        (2, 1, 16, 16)),
    "PatchDiscriminator": ({"in_channels": 1, "width": 8, "n_layers": 2}, [(2, 1, 16, 16)], (2, 1, 2, 2)),
    "SinusoidalTimeEmbedding": ({"dim": 8}, [(3,)], (3, 8)),
    "FourierTimeEmbedding": ({"dim": 8}, [(3,)], (3, 8)),
    "TimeMLP": ({"features": 2, "hidden": 16, "depth": 2, "time_dim": 8}, [(4, 2), (4,)], (4, 2)),
    "UNet": ({"channels": 1, "width": 8, "num_res_blocks": 1, "attention_levels": [1]},
             [(2, 1, 8, 8), (2,)], (2, 1, 8, 8)),
    "ConvEncoder": ({"in_channels": 1, "latent_channels": 2, "width": 8}, [(2, 1, 8, 8)], (2, 2, 4, 4)),
    "ConvDecoder": ({"out_channels": 1, "latent_channels": 2, "width": 8}, [(2, 2, 4, 4)], (2, 1, 8, 8)),
    "VectorQuantizer": ({"codes": 8, "dim": 2}, [(2, 2, 4, 4)], ((2, 2, 4, 4), (2, 4, 4), (2,))),
    "ClassEmbedding": ({"num_classes": 10, "dim": 8, "null": True}, [Labels(3, 10)], (3, 8)),
    "ConditionalDCGANGenerator": (
        {"image_size": 8, "channels": 1, "latent": 4, "num_classes": 10, "width": 8},
        [(2, 4), Labels(2, 10)], (2, 1, 8, 8)),
    "ConditionalDCGANDiscriminator": ({"image_size": 8, "channels": 1, "num_classes": 10, "width": 8},
                                      [(2, 1, 8, 8), Labels(2, 10)], (2,)),
    "PairDiscriminator": ({"image_size": 8, "channels": 1, "latent": 4, "width": 8, "hidden": 16},
                          [(2, 1, 8, 8), (2, 4)], (2,)),
    "UNetGenerator": ({"in_channels": 1, "out_channels": 2, "image_size": 8, "width": 8}, [(2, 1, 8, 8)],
                      (2, 2, 8, 8)),
}
BLOCKS = sorted(registry.get("blocks"))


def _block_example(name):
    if name not in BLOCK_EXAMPLES:
        pytest.fail(f"block '{name}' has no example: add (kwargs, input shapes, output shape) to "
                    f"BLOCK_EXAMPLES in tests/test_registries.py")
    return BLOCK_EXAMPLES[name]


def _input(shape, g):
    if isinstance(shape, Labels):
        return torch.randint(shape.classes, (shape.batch,), generator=g)
    return torch.rand(shape, generator=g) if len(shape) == 1 else torch.randn(shape, generator=g)


def _inputs(shapes, device):
    g = torch.Generator().manual_seed(0)
    return [_input(s, g).to(device) for s in shapes]


@pytest.mark.parametrize("name", BLOCKS)
def test_block_builds_and_runs_on_meta(name):
    kwargs, shapes, out_shape = _block_example(name)
    with torch.device("meta"):
        block = registry.get("blocks")[name](**kwargs)
        y = block(*_inputs(shapes, "meta"))
    assert all(v.device.type == "meta" for v in (y if isinstance(y, tuple) else (y,)))
    assert _shapes(y) == out_shape     # a tuple of shapes for a block with several outputs


@pytest.mark.parametrize("name", BLOCKS)
def test_block_runs_on_cpu_with_the_meta_shape(name):
    kwargs, shapes, out_shape = _block_example(name)
    torch.manual_seed(0)
    y = registry.get("blocks")[name](**kwargs)(*_inputs(shapes, "cpu"))
    assert _shapes(y) == out_shape
    assert all(torch.isfinite(v).all() for v in (y if isinstance(y, tuple) else (y,)))


@pytest.mark.parametrize("name", BLOCKS)
def test_block_init_is_deterministic_given_the_seed(name):
    kwargs, block = _block_example(name)[0], registry.get("blocks")[name]
    torch.manual_seed(1)
    a = block(**kwargs).state_dict()
    torch.manual_seed(1)
    b = block(**kwargs).state_dict()
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("name", BLOCKS)
def test_block_signature_is_keyword_only_and_rejects_unknown_args(name):
    signature = inspect.signature(registry.get("blocks")[name])
    kwargs = _block_example(name)[0]
    signature.bind(**kwargs)
    assert all(p.kind in (p.KEYWORD_ONLY, p.VAR_KEYWORD) for p in signature.parameters.values())
    if all(p.kind is p.KEYWORD_ONLY for p in signature.parameters.values()):
        with pytest.raises(TypeError):
            signature.bind(**kwargs, not_an_arg=1)


def test_every_block_example_names_a_registered_block():
    assert set(BLOCK_EXAMPLES) <= set(BLOCKS), "remove the examples of blocks that are gone"


# ===================================================================== sources
SOURCES = sorted(registry.get("sources"))


def _needs_arguments(name) -> bool:
    """Sources that need a path (folders) cannot run without data on disk."""
    params = inspect.signature(registry.get("sources")[name]).parameters.values()
    return any(p.default is p.empty for p in params)


@pytest.mark.parametrize("name", SOURCES)
def test_every_source_declares_its_fields(name):
    source = registry.get("sources")[name]
    assert isinstance(source, Source) and source.fields_of is not None
    assert all(p.kind is p.KEYWORD_ONLY for p in inspect.signature(source).parameters.values())


@pytest.mark.parametrize("kind, name", _known_gaps(
    [("sources", n) for n in SOURCES if not _needs_arguments(n)], {}))
def test_declared_fields_match_the_table(kind, name):
    source = registry.get("sources")[name]
    bound = inspect.signature(source).bind()
    bound.apply_defaults()
    declared = {field: (tuple(shape), dtype) for field, (shape, dtype) in source.fields_of(bound.arguments).items()}
    columns = source(**bound.arguments).columns()
    assert declared == {field: (tuple(v.shape[1:]), v.dtype) for field, v in columns.items()}
    assert next(iter(declared)) == "x"


# ===================================================================== ops
@dataclass(frozen=True)
class Parts:
    """A multi-output value: `count` tensors of `shape`."""

    count: int
    shape: tuple


# name -> (kwargs, input shapes, output shape, or a tuple of shapes for a multi-output op)
OP_EXAMPLES = {
    "cat": ({"dim": 1}, [(2, 3), (2, 4)], (2, 7)),
    "add": ({}, [(2, 3), (2, 3)], (2, 3)),
    "sub": ({"value": 1.0}, [(2, 3)], (2, 3)),
    "mul": ({"value": 0.5}, [(2, 3)], (2, 3)),
    "exp": ({}, [(2, 3)], (2, 3)),
    "log": ({}, [(2, 3)], (2, 3)),
    "sqrt": ({}, [(2, 3)], (2, 3)),
    "div": ({}, [(2, 3), (2, 3)], (2, 3)),
    "stop_gradient": ({}, [(2, 3)], (2, 3)),
    "index": ({"i": 1}, [Parts(2, (2, 5))], (2, 5)),
    "chunk": ({"chunks": 2, "dim": 1}, [(2, 6)], ((2, 3), (2, 3))),
    "one_hot": ({"num_classes": 5}, [Labels(3, 5)], (3, 5)),
    "rearrange": ({"pattern": "b c h w -> b (c h w)"}, [(2, 1, 2, 3)], (2, 6)),
    "repeat": ({"pattern": "b c -> b c h w", "h": 3, "w": 2}, [(2, 4)], (2, 4, 3, 2)),
    "reparameterize": ({}, [(2, 3), (2, 3)], (2, 3)),
    "drop_condition": ({"p": 0.5}, [Labels(6, 10)], (6,)),
    "diffaugment": ({}, [(3, 2, 8, 8)], (3, 2, 8, 8)),
}
OPS = sorted(registry.get("ops"))


def _op_input(shape, g, device):
    if isinstance(shape, Parts):
        return tuple(_op_input(shape.shape, g, device) for _ in range(shape.count))
    return _input(shape, g).to(device)


def _shapes(value):
    return tuple(_shapes(v) for v in value) if isinstance(value, tuple) else tuple(value.shape)


def _run_op(name, device):
    if name not in OP_EXAMPLES:
        pytest.fail(f"op '{name}' has no example: add (kwargs, input shapes, output shape) to OP_EXAMPLES")
    kwargs, shapes, out = OP_EXAMPLES[name]
    op = registry.get("ops")[name](**kwargs)
    g = torch.Generator().manual_seed(0)
    inputs = [_op_input(s, g, device) for s in shapes]
    ctx = Context(modules={}, generator=torch.Generator().manual_seed(1), device=torch.device(device),
                  draw=None, batch=None)
    return (op.meta(ctx, *inputs) if device == "meta" else op(ctx, *inputs)), out


@pytest.mark.parametrize("name", OPS)
def test_op_has_its_own_docstring(name):
    assert registry.get("ops")[name].__dict__.get("__doc__"), f"op '{name}' has no docstring"


@pytest.mark.parametrize("name", OPS)
@pytest.mark.parametrize("device", ["meta", "cpu"])
def test_op_runs_on_an_example(name, device):
    value, out = _run_op(name, device)
    assert _shapes(value) == out
    leaves = value if isinstance(value, tuple) else (value,)
    assert all(v.device.type == device for v in leaves)


@pytest.mark.parametrize("name", OPS)
def test_op_meta_dtype_matches_the_cpu_dtype(name):
    meta, cpu = _run_op(name, "meta")[0], _run_op(name, "cpu")[0]
    meta, cpu = (meta, cpu) if isinstance(meta, tuple) else ((meta,), (cpu,))
    assert [m.dtype for m in meta] == [c.dtype for c in cpu]


# ===================================================================== metrics
@pytest.mark.parametrize("name", sorted(registry.get("metrics")))
def test_metric_takes_samples_and_table_or_the_runner_then_keyword_options(name):
    params = list(inspect.signature(registry.get("metrics")[name]).parameters.values())
    if params[0].name == "runner":
        assert params[0].kind is inspect.Parameter.KEYWORD_ONLY
        options = params[1:]
    else:
        assert [p.name for p in params[:2]] == ["samples", "table"]
        options = params[2:]
        assert all(p.default is not p.empty for p in options), "options of a sample metric need defaults"
    assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in options)


# ===================================================================== the smaller kinds
@pytest.mark.parametrize("name", sorted(registry.get("recipes")))
def test_recipe_takes_the_objective_name_then_keyword_arguments(name):
    first, *rest = inspect.signature(registry.get("recipes")[name]).parameters.values()
    assert first.kind is first.POSITIONAL_ONLY
    assert all(p.kind is p.KEYWORD_ONLY for p in rest)


NOISE_EXAMPLES = {"categorical": {"classes": 5}}


@pytest.mark.parametrize("name", sorted(registry.get("noise")))
def test_noise_draws_its_size_from_the_generator(name):
    draw = registry.get("noise")[name]
    a = draw((4, 3), generator=torch.Generator().manual_seed(0), **NOISE_EXAMPLES.get(name, {}))
    b = draw((4, 3), generator=torch.Generator().manual_seed(0), **NOISE_EXAMPLES.get(name, {}))
    assert a.shape == (4, 3) and torch.equal(a, b)


@pytest.mark.parametrize("name", sorted(registry.get("samplers")))
def test_sampler_signature(name):
    params = list(inspect.signature(registry.get("samplers")[name]).parameters.values())
    assert [p.name for p in params[:4]] == ["model", "x", "ts", "schedule"]
    assert all(p.kind is p.KEYWORD_ONLY and p.default is not p.empty for p in params[4:])
    assert {"generator", "callback", "denoise"} <= {p.name for p in params[4:]}


@pytest.mark.parametrize("name", sorted(registry.get("noise_schedules")))
def test_schedule_builds_with_defaults_and_runs_from_data_to_noise(name):
    schedule = registry.get("noise_schedules")[name]()
    assert isinstance(schedule, Schedule)
    t = torch.tensor([1e-3, 0.5, 1.0], dtype=torch.float64)
    gamma, sigma = schedule.gamma(t), schedule.sigma(t)
    torch.testing.assert_close(gamma**2 + sigma**2, torch.ones_like(t))
    assert gamma[0] > 0.99 and sigma[-1] > 0.99


@pytest.mark.parametrize("name", sorted(registry.get("weightings")))
def test_weighting_is_positive_per_sample(name):
    snr = torch.tensor([1e-3, 0.5, 4.0, 100.0], dtype=torch.float64)
    for c2 in (torch.ones_like(snr), snr):
        w = registry.get("weightings")[name](snr, c2)
        assert w.shape == snr.shape and torch.isfinite(w).all() and (w > 0).all()


@pytest.mark.parametrize("name", sorted(registry.get("losses")))
def test_adversarial_loss_has_four_per_logit_terms(name):
    game = registry.get("losses")[name]
    assert isinstance(game, GANLoss)
    logits = torch.linspace(-2, 2, 5)
    for term in ("D_real", "D_fake", "G", "E"):
        assert getattr(game, term)(logits).shape == (5,), term


@pytest.mark.parametrize("name", sorted(registry.get("penalties")))
def test_penalty_is_per_sample_and_non_negative_on_cpu_and_meta(name):
    penalty = registry.get("penalties")[name](critic="D")
    torch.manual_seed(0)
    critic = torch.nn.Sequential(torch.nn.Linear(3, 8), torch.nn.Tanh(), torch.nn.Linear(8, 1))
    ctx = Context(modules={"D": critic}, generator=torch.Generator().manual_seed(0), device=torch.device("cpu"),
                  draw=None, batch=None)
    inputs = [torch.randn(4, 3)] * (2 if penalty.needs_fake else 1)
    values = penalty(ctx, *inputs)
    assert values.shape == (4,) and (values >= 0).all()
    assert penalty.meta(ctx, *[x.to("meta") for x in inputs]).shape == (4,)


@pytest.mark.parametrize("name", sorted(registry.get("optimizers")))
def test_optimizer_steps_a_parameter(name):
    p = torch.nn.Parameter(torch.ones(3))
    opt = registry.get("optimizers")[name]([p], lr=0.1)
    p.sum().backward()
    opt.step()
    assert (p < 1).all()


LR_EXAMPLES = {"step": {"every": 10}}


@pytest.mark.parametrize("name", sorted(registry.get("lr_schedules")))
def test_lr_schedule_is_a_factor_in_the_unit_interval(name):
    schedule, options = registry.get("lr_schedules")[name], LR_EXAMPLES.get(name, {})
    factors = [schedule(step, total=100, **options) for step in range(0, 101, 10)]
    assert all(0 <= f <= 1 for f in factors) and factors[0] > 0


WEIGHT_EXAMPLES = {"linear": {"steps": 10}, "cosine": {"steps": 10}, "cyclical": {"period": 10}}


@pytest.mark.parametrize("name", sorted(registry.get("weight_schedules")))
def test_weight_schedule_is_a_finite_number_at_every_step(name):
    schedule, options = registry.get("weight_schedules")[name], WEIGHT_EXAMPLES.get(name, {})
    values = [schedule(step, **options) for step in range(0, 40, 3)]
    assert all(isinstance(v, (int, float)) and v == v and abs(v) < float("inf") for v in values)
