"""The string form of a flow entry: `G(z)`, `D(x, y)`, `vae.encode(x)`, `cat(x, onehot, dim=1)`,
`mul(x, 0.5)`, `h[0]`, `post.z`.

Parsed with the standard library's `ast` in expression mode and then walked over a whitelist of
node types (calls, names, dotted names, constants, one subscript): nothing is evaluated or
imported, and anything else is refused with the column of the offending part.
"""
from __future__ import annotations

import ast
from dataclasses import dataclass, field


class FlowSyntaxError(ValueError):
    """A flow string that is not `callee(input, ..., key=value)` or `tensor[i]`."""


@dataclass(frozen=True)
class Call:
    target: str                          # module or op name, or module.method
    inputs: tuple[str, ...]              # tensor names (dotted allowed: `real.y`, `post.z`)
    args: dict = field(default_factory=dict)


def parse(text: str) -> Call:
    """`G(z)` -> Call("G", ("z",)); `h[1]` -> Call("index", ("h",), {"i": 1}); one positional
    constant becomes the op argument `value` (`mul(x, 0.5)`)."""
    try:
        tree = ast.parse(text.strip(), mode="eval").body
    except SyntaxError as err:
        raise FlowSyntaxError(f"{_EXPECTED}, got '{text}' ({err.msg} at column {err.offset})") from None
    if isinstance(tree, ast.Subscript):
        return Call("index", (_name(tree.value, text),), {"i": _index(tree.slice, text)})
    if not isinstance(tree, ast.Call):
        raise FlowSyntaxError(_hint(tree, text))
    callee = _callee(tree.func, text)
    inputs, constants = [], []
    for arg in tree.args:
        if isinstance(arg, ast.Constant) and not isinstance(arg.value, str):
            constants.append(arg.value)
        else:
            inputs.append(_name(arg, text))
    args = {kw.arg: _literal(kw.value, text) for kw in tree.keywords if kw.arg is not None}
    if len(args) != len(tree.keywords):
        raise FlowSyntaxError(f"'{text}': '**' is not allowed; write key=value")
    if len(constants) > 1:
        raise FlowSyntaxError(f"'{text}': at most one positional constant; name the others (key=value)")
    if constants:
        args["value"] = constants[0]
    return Call(callee, tuple(inputs), args)


def _callee(node, text: str) -> str:
    """`G` or `vae.encode` (a method a module offers to the flow)."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
        return f"{node.value.id}.{node.attr}"
    raise FlowSyntaxError(f"'{text}': the callee must be a module or op name, e.g. 'G(z)', or a module's "
                          "method, e.g. 'vae.encode(x)'")


def _name(node, text: str) -> str:
    """A tensor name: `x` or a dotted name `real.y`."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        raise FlowSyntaxError(f"'{text}': expected a tensor name at column {getattr(node, 'col_offset', 0) + 1}, "
                              f"got '{ast.unparse(node)}'")
    return ".".join([node.id, *reversed(parts)])


def _index(node, text: str) -> int:
    value = _literal(node, text)
    if not isinstance(value, int) or isinstance(value, bool):
        raise FlowSyntaxError(f"'{text}': an index must be an integer, got {value!r}")
    return value


def _literal(node, text: str):
    try:
        return ast.literal_eval(node)
    except ValueError:
        raise FlowSyntaxError(f"'{text}': '{ast.unparse(node)}' is not a constant "
                              "(numbers, strings, lists, mappings)") from None


def _hint(tree, text: str) -> str:
    ops = {ast.Add: "add(a, b)", ast.Sub: "sub(a, b)", ast.Mult: "mul(a, b)"}
    if isinstance(tree, ast.BinOp) and type(tree.op) in ops:
        return f"'{text}': arithmetic is written as ops: {ops[type(tree.op)]}"
    return f"{_EXPECTED}, got '{text}'"


_EXPECTED = "expected 'module(input, ...)', 'op(input, ..., key=value)' or 'tensor[i]'"
