"""Every shipped graph file validates, and its printed plan equals the golden copy.

Regenerate the golden copies after an intended change with: UPDATE_GOLDEN=1 python -m pytest tests/graph/test_graph_files.py
"""
import os

import pytest

from composer import api
from composer.graph.view import format_table
from conftest import GRAPHS, ROOT, shipped_graphs

GOLDEN = ROOT / "tests" / "golden"
FILES = sorted(GRAPHS.glob("*.yaml"))


@pytest.mark.parametrize("path", shipped_graphs())
def test_graph_file_plan_matches_golden(path, stage_overrides):
    table = format_table(api.plan(path, stage_overrides.get(path.stem, []))).replace(str(path), path.name)
    golden = GOLDEN / f"{path.stem}.txt"
    if os.environ.get("UPDATE_GOLDEN"):
        golden.write_text(table + "\n")
    assert golden.exists(), f"no golden plan for {path.name}: run with UPDATE_GOLDEN=1"
    assert table + "\n" == golden.read_text()


def test_there_are_graph_files():
    names = {p.stem for p in FILES}
    assert {"dcgan", "gan_ring"} <= names
