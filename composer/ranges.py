"""The range of a numeric argument, declared beside it: `hidden: Size`, `padding: Count`,
`p: Fraction`, `weight: Weight`, or `Annotated[float, Range(0, 1, what="...")]`.

Every registry entry whose arguments come from YAML (a block, a data source, a recipe, a noise
kind, a weight or LR schedule) is checked against these before anything is built, so that
`hidden: 0` or `penalty_weight: -5` fail at their YAML line instead of training silently.
Two conventions cover what is not declared:

- an `int` argument of a block, a data source or a noise kind is a size (>= 1) unless annotated otherwise
  (`Count` for >= 0, `SignedInt` for no bound, or `Annotated[int, Range(...)]`);
- an argument named `weight` or `*_weight` is a weight (>= 0) unless annotated otherwise (a
  recipe whose weight may be negative documents it with `Signed`).

Non-finite numbers (nan, inf) are refused everywhere by the spec parser, so a Range only bounds.
"""
from __future__ import annotations

import types
import typing
from dataclasses import dataclass
from typing import Annotated, Iterator


@dataclass(frozen=True)
class Range:
    """`low <= value <= high` (`low < value` when `open_low`); None: unbounded on that side."""
    low: float | None = None
    high: float | None = None
    open_low: bool = False
    what: str = ""

    def accepts(self, value) -> bool:
        if self.low is not None and (value <= self.low if self.open_low else value < self.low):
            return False
        return self.high is None or value <= self.high

    def describe(self) -> str:
        if self.what:
            return self.what
        bounds = ([f"> {self.low}" if self.open_low else f">= {self.low}"] if self.low is not None else []) + \
                 ([f"<= {self.high}"] if self.high is not None else [])
        return "a number " + " and ".join(bounds) if bounds else "a finite number"


SIZE = Range(1, what="a size >= 1")
WEIGHT = Range(0, what="a weight >= 0")
Size = Annotated[int, SIZE]
Count = Annotated[int, Range(0, what="a count >= 0")]
Weight = Annotated[float, WEIGHT]
Fraction = Annotated[float, Range(0, 1, what="a fraction in [0, 1]")]
NonNegative = Annotated[float, Range(0, what="a number >= 0")]
TimeFraction = Annotated[float, Range(0, 1, what="a time in [0, 1]")]
Signed = Annotated[float, Range()]          # documented: any finite number (e.g. a signed weight)
SignedInt = Annotated[int, Range()]         # an index or a dimension, negative from the end


def declared(fn, sizes: bool = False) -> dict[str, Range]:
    """Each argument's Range: annotated, or by the conventions above (`sizes`: a plain `int` is a
    size). An entry whose hints cannot be resolved declares nothing."""
    try:
        hints = typing.get_type_hints(fn.__init__ if isinstance(fn, type) else fn, include_extras=True)
    except Exception:  # noqa: BLE001 -- a bridged or foreign callable: nothing declared
        return {}
    out = {}
    for name, hint in hints.items():
        if name == "return":
            continue
        found = _range_in(hint)
        if found is None and sizes and int in _plain(hint):
            found = SIZE
        if found is None and (name == "weight" or name.endswith("_weight")):
            found = WEIGHT
        if found is not None:
            out[name] = found
    return out


def problems(fn, args: dict, sizes: bool = False) -> Iterator[tuple[str, str]]:
    """(argument, what it takes) for each number in `args` outside its declared range."""
    ranges = declared(fn, sizes)
    for key, value in args.items():
        rule = ranges.get(key)
        if rule is None or not _number(value):
            continue
        if not rule.accepts(value):
            yield key, rule.describe()


def _range_in(hint) -> Range | None:
    """The Range of an annotation, also inside `X | None`."""
    if typing.get_origin(hint) is Annotated:
        return next((m for m in hint.__metadata__ if isinstance(m, Range)), None)
    for inner in typing.get_args(hint):
        found = _range_in(inner) if typing.get_origin(inner) is Annotated else None
        if found is not None:
            return found
    return None


def _plain(hint) -> set:
    """The plain types of an annotation (`int | None` -> {int, NoneType}); nothing for containers."""
    if typing.get_origin(hint) is Annotated:
        return set()
    if typing.get_origin(hint) not in (None, typing.Union, types.UnionType):
        return set()
    return {hint} | set(typing.get_args(hint))


def _number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)
