"""One error type for user mistakes, carrying the YAML location and the key path."""
from __future__ import annotations

import difflib
from dataclasses import dataclass


@dataclass(frozen=True)
class Loc:
    """Where a value came from: file, 1-based line and column."""

    file: str
    line: int = 0
    col: int = 0

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}" if self.line else self.file


class ComposerError(Exception):
    """Base for every error composer raises at a user (bad spec, bad data, bad run dir)."""


class SpecError(ComposerError):
    """A mistake in a graph spec: `file:line:col: key.path: message`."""

    def __init__(self, message: str, key: str = "", loc: Loc | None = None):
        self.message, self.key, self.loc = message, key, loc
        prefix = f"{loc}: " if loc else ""
        keypart = f"{key}: " if key else ""
        super().__init__(f"{prefix}{keypart}{message}")


def did_you_mean(name: str, choices) -> str:
    """' (did you mean 'x'?)' for the nearest valid name, else the allowed set."""
    choices = sorted(str(c) for c in choices)
    lowered = {c.lower(): c for c in choices}
    close = difflib.get_close_matches(str(name).lower(), list(lowered), n=1, cutoff=0.5)
    if close:
        return f" (did you mean '{lowered[close[0]]}'?)"
    return f" (expected one of: {', '.join(choices)})" if choices else ""
