"""`composer graph`: the DOT text of a compiled plan, its phase marks, and its renderers."""
import re
import shutil
import subprocess
import sys

import pytest

from composer import api
from composer.graph import draw
from composer.tools.cli import main
from conftest import GRAPHS


@pytest.fixture(scope="module")
def cyclegan():
    return api.plan(GRAPHS / "cyclegan.yaml")


def node_attrs(dot: str, node: str) -> str:
    match = re.search(rf'^\s*"{re.escape(node)}" \[(.*)\];$', dot, re.M)
    assert match, f"no node {node}"
    return match.group(1)


def test_dot_has_a_cluster_per_phase_with_its_nodes_and_edges(cyclegan):
    dot = draw.to_dot(cyclegan)
    assert dot.startswith('digraph "cyclegan" {') and dot.rstrip().endswith("}")
    assert 'subgraph "cluster_phase_G" {' in dot and 'subgraph "cluster_phase_D" {' in dot
    assert dot.index("cluster_phase_D") < dot.index("cluster_phase_G") < dot.index("cluster_modules")  # drawn
    assert 'label="cyclegan: G -> D per step\\n' in dot                     # top-down: modules, G, D
    assert 'label="fake_B\\nG_AB(real_A)\\ntrains G_AB"' in node_attrs(dot, "G:fake_B")
    assert '"G:fake_B" -> "G:rec_A";' in dot
    assert '"G:rec_A" -> "G:cycle_A.loss";' in dot
    assert 'label="cycle_A.loss\\n10 * l1(rec_A, real_A)", shape=note' in node_attrs(dot, "G:cycle_A.loss")
    assert 'subgraph "cluster_G_cycle_A" {' in dot and 'label="objective cycle_A (reconstruction)"' in dot
    assert '"module:G_AB" [label="G_AB\\nResnetGenerator\\n84,833 params\\noptimizer G"' in dot
    # phase D does not read the cycle terms; phase G reads no D term
    assert '"D:cycle_A.loss"' not in dot and '"G:gan_B.D_real"' not in dot


def test_dot_marks_trained_frozen_read_as_data_and_cut_edges(cyclegan):
    dot = draw.to_dot(cyclegan)
    trained, frozen, data = draw.COLORS["trained"], draw.COLORS["frozen"], draw.COLORS["data"]
    assert f'fillcolor="{trained}"' in node_attrs(dot, "G:fake_B")
    assert "D_B frozen" in node_attrs(dot, "G:gan_B.gen_logits")
    assert f'fillcolor="{frozen}"' in node_attrs(dot, "G:gan_B.gen_logits")
    assert f'fillcolor="{trained}"' in node_attrs(dot, "D:gan_B.fake_logits")
    fake_in_d = node_attrs(dot, "D:fake_B")               # computed in phase G, reused as data
    assert "read as data, reused" in fake_in_d and f'fillcolor="{data}"' in fake_in_d
    assert 'style="filled,dashed"' in fake_in_d
    assert ('"D:gan_B.pool" -> "D:gan_B.fake_logits" [style=dashed, color="#d62728", fontcolor="#d62728", '
            'label="detach"];') in dot
    assert dot.count('label="detach"') == 2                  # one cut per critic, none in phase G
    assert 'label="phase G: steps G\\ntrains G_AB, G_BA; frozen D_A, D_B"' in dot
    assert "cuts gan_A.pool -> gan_A.fake_logits; gan_B.pool -> gan_B.fake_logits" in dot


def test_dot_is_deterministic_and_quotes_labels(cyclegan):
    assert draw.to_dot(cyclegan) == draw.to_dot(api.plan(GRAPHS / "cyclegan.yaml"))
    assert draw._quote('a "b"\\c\nd') == '"a \\"b\\"\\\\c\\nd"'


def test_repeat_is_shown_in_the_phase_title():
    dot = draw.to_dot(api.plan(GRAPHS / "gan_ring.yaml", ["schedule.repeat={D: 5}"]))
    assert 'subgraph "cluster_phase_D" {\n    label="phase D (x5): steps D' in dot


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz dot is not installed")
def test_graphviz_accepts_the_dot_text(cyclegan):
    done = subprocess.run(["dot", "-Tsvg"], input=draw.to_dot(cyclegan), text=True, capture_output=True)
    assert done.returncode == 0, done.stderr
    assert "<svg" in done.stdout and "fake_B" in done.stdout


def test_cli_prints_dot_or_writes_a_dot_file(tmp_path, capsys):
    assert main(["graph", str(GRAPHS / "gan_ring.yaml")]) == 0
    printed = capsys.readouterr().out
    assert printed.startswith('digraph "gan_ring" {') and '"D:fake" -> "D:gan.fake_logits"' in printed
    out = tmp_path / "ring.dot"
    assert main(["graph", str(GRAPHS / "gan_ring.yaml"), "-o", str(out), "schedule.repeat={D: 2}"]) == 0
    assert f"wrote {out}" in capsys.readouterr().out
    assert "phase D (x2)" in out.read_text()


def test_cli_png_without_graphviz_uses_matplotlib_and_writes_the_dot_beside(tmp_path, capsys, monkeypatch):
    pytest.importorskip("matplotlib")
    monkeypatch.setattr(draw.shutil, "which", lambda name: None)
    out = tmp_path / "ring.png"
    assert main(["graph", str(GRAPHS / "gan_ring.yaml"), "-o", str(out)]) == 0
    assert capsys.readouterr().out.strip() == f"wrote {out}, {tmp_path / 'ring.dot'}"
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (tmp_path / "ring.dot").read_text().startswith('digraph "gan_ring"')


def test_cli_without_any_renderer_names_what_to_install(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(draw.shutil, "which", lambda name: None)
    monkeypatch.setitem(sys.modules, "matplotlib", None)           # import fails
    assert main(["graph", str(GRAPHS / "gan_ring.yaml"), "-o", str(tmp_path / "g.svg")]) == 1
    err = capsys.readouterr().err
    assert "error: no renderer for .svg: install Graphviz (it provides `dot`: apt-get install graphviz" in err
    assert "pip install 'composer-graphs[plots]'" in err
    assert (tmp_path / "g.dot").is_file()                         # the DOT text is written all the same


def test_cli_refuses_other_suffixes(tmp_path, capsys):
    assert main(["graph", str(GRAPHS / "gan_ring.yaml"), "-o", str(tmp_path / "g.pdf")]) == 1
    assert f"error: {tmp_path / 'g.pdf'}: expected a .dot, .svg or .png file" in capsys.readouterr().err
