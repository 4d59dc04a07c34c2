"""Plain-data helpers shared by every layer: nested mappings as flat key paths, and aligned text
tables (the printed plan, `composer runs`)."""
from __future__ import annotations


def flatten(data, path: tuple = ()) -> dict[tuple, object]:
    """{key path: leaf} of nested mappings; anything that is not a dict (lists included) is a leaf."""
    if isinstance(data, dict):
        return {k: v for key, value in data.items() for k, v in flatten(value, path + (key,)).items()}
    return {path: data}


def aligned(rows: list) -> list[str]:
    """Rows of cells (strings) as lines with every column padded to its widest cell, two spaces
    apart, trailing spaces dropped."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows]
