"""composer/ranges.py: ranges declared beside an argument, and the two conventions."""
from __future__ import annotations

from typing import Annotated

from composer.ranges import Count, Fraction, Range, Signed, SignedInt, problems


def block(*, width: int, depth: Count = 2, p: Fraction = 0.5, dim: SignedInt = -1, name: str = "x",
          loss_weight: float = 1.0, shift: Signed = 0.0, scale: Annotated[float, Range(high=5)] = 1.0,
          size: int | None = None):
    """A stand-in registry entry."""


def test_a_plain_int_is_a_size_only_where_sizes_are_asked_for():
    assert dict(problems(block, {"width": 0}, sizes=True)) == {"width": "a size >= 1"}
    assert dict(problems(block, {"width": 0})) == {}
    assert dict(problems(block, {"size": 0}, sizes=True)) == {"size": "a size >= 1"}
    assert dict(problems(block, {"size": None}, sizes=True)) == {}


def test_declared_ranges_and_the_weight_convention():
    found = dict(problems(block, {"depth": -1, "p": 1.5, "dim": -3, "name": "", "loss_weight": -2,
                                  "shift": -7.0, "scale": 6.0, "width": True}, sizes=True))
    assert found == {"depth": "a count >= 0", "p": "a fraction in [0, 1]", "loss_weight": "a weight >= 0",
                     "scale": "a number <= 5"}


def test_an_entry_without_resolvable_hints_declares_nothing():
    def foreign(*, width: "NoSuchType"):  # noqa: F821 -- unresolvable on purpose
        """A bridged callable."""

    assert dict(problems(foreign, {"width": 0}, sizes=True)) == {}
