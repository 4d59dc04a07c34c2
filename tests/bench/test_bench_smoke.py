"""The bench scripts still run: `python bench/all.py --smoke` runs every script's smoke mode (a
few steps of one small graph each, the real code path, the printed table) in a fresh process,
and every benchmarked workload's hand-written loop still does what its graph file does (same
parameters after two steps). Slow tier (tests/conftest.py): about a minute in all on 2 cores."""
import subprocess
import sys

import pytest

from conftest import ROOT

sys.path.insert(0, str(ROOT / "bench"))

import gpu  # noqa: E402
import workloads  # noqa: E402
from overhead import parameter_gap  # noqa: E402

HEADERS = {   # section of bench/all.py -> what its table starts with
    "overhead": "| graph | compiled s/step",
    "fast modes": "| graph | mode | s/step",
    "scaling": "| processes (gloo, 1 thread each) |",
    "sampling": "| sampler | steps | composer samples/s |",
    "data path": "| path | samples/s |",
    "startup": "| command | median s |",
    "samplers 2d": "| sampler | steps | spacing | NFE |",
    "quality": "| graph | modes | high quality % |",
    "mixture npy": '"hq_fraction":',
    "gpu": "| graph | mode | images/s",
}


def sections(text: str) -> dict:
    """`## NAME` -> the text printed under it, up to the next section."""
    out, name = {}, None
    for line in text.splitlines():
        if line.startswith("## ") and line[3:] in HEADERS:
            name = line[3:]
            out[name] = []
        elif name is not None:
            out[name].append(line)
    return {k: "\n".join(v) for k, v in out.items()}


def test_every_bench_script_runs_its_smoke_mode_and_prints_its_table():
    proc = subprocess.run([sys.executable, str(ROOT / "bench" / "all.py"), "--smoke"], cwd=ROOT,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    found = sections(proc.stdout)
    assert list(found) == list(HEADERS)
    for name, header in HEADERS.items():
        assert header in found[name], f"bench/all.py --smoke, section {name}: no '{header}' in\n{found[name]}"
    assert "whole bench (smoke):" in proc.stdout


@pytest.mark.parametrize("name", list(workloads.WORKLOADS))
def test_the_hand_written_twin_of_every_workload_equals_its_compiled_graph(name):
    """bench/overhead.py's comparison is fair only while bench/handwritten.py does the graph's
    arithmetic: batches shaped from the compiled graph, optimizer settings from the spec."""
    assert _gap_after_two_steps(workloads.WORKLOADS[name], "train.batch=4") == 0.0


def _gap_after_two_steps(workload, *overrides) -> float:
    runner = workload.runner(*overrides)
    loop = workload.hand(runner)
    if getattr(loop, "shared", False) and runner.plan.forward_calls()["D"] > 3:
        loop.shared = False   # R1 on its own pass of D, as the plan does until it shares D(real) (issue 26)
    for batch in workloads.batches(workload, runner, 2, seed=0):
        runner.step(batch)
        loop.step(batch)
    return parameter_gap(runner, loop)


@pytest.mark.parametrize("name", ["dcgan_64", "cyclegan_256", "diffusion_32"])
def test_the_hand_written_twins_of_the_gpu_bench_equal_their_graphs_at_small_sizes(name, tmp_path):
    """bench/gpu.py's ratios are fair only while its loops do the reference graphs' arithmetic
    (diffusion_32 without dropout, whose masks the two draw from different generators)."""
    workload = gpu.workloads(tmp_path, images=4)[name]
    extra = ["modules.eps_net.dropout=0.0"] if name == "diffusion_32" else []
    assert _gap_after_two_steps(workload, *gpu.SMALL[name], *extra) == 0.0
