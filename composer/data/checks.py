"""Checks on a data source's keyword arguments; each failure is a `ComposerError` naming the
source, the argument, the value given and what is allowed."""
from __future__ import annotations

from composer.errors import ComposerError, did_you_mean


def check_choice(where: str, key: str, value, allowed) -> None:
    """`value` must be one of `allowed`; the message lists them and the nearest one."""
    if value in allowed:
        return
    names = [str(a) for a in allowed]
    hint = did_you_mean(str(value), names)
    hint = hint if hint.startswith(" (did you mean") else ""
    raise ComposerError(
        f"{where}: {key}={value!r} is not allowed; expected one of {', '.join(names)}{hint}"
    )


def check_count(where: str, key: str, value) -> None:
    """`value` must be an integer ≥ 1 (a sample count, an image size, a number of modes)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ComposerError(f"{where}: {key}={value!r}; expected an integer >= 1")


def check_positive(where: str, key: str, value) -> None:
    """`value` must be a real number > 0 (a standard deviation, a radius)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise ComposerError(f"{where}: {key}={value!r}; expected a number > 0")


def check_fraction(where: str, key: str, value) -> None:
    """`value` must lie strictly between 0 and 1."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 < value < 1.0:
        raise ComposerError(f"{where}: {key}={value!r}; expected a number in (0, 1)")
