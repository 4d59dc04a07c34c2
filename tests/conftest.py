"""Unit tests run on one thread: bit-reproducible (NOTES: 1 vs 2 threads differ) and fast on a
loaded 2-core machine."""
import os
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
GRAPHS = ROOT / "graphs"

torch.set_num_threads(1)
os.environ.setdefault("COMPOSER_CACHE", str(ROOT / ".pytest_cache" / "composer"))


def interrupt_at(monkeypatch, runner, step: int) -> None:
    """Make `runner.step` raise KeyboardInterrupt once `step` steps are done (as Ctrl-C would
    between steps)."""
    real_step = runner.step

    def step_or_stop(feed=None):
        if runner.step_count == step:
            raise KeyboardInterrupt
        return real_step(feed)

    monkeypatch.setattr(runner, "step", step_or_stop)


@pytest.fixture
def graphs_dir() -> Path:
    return GRAPHS


def pytest_configure(config):
    sys.path.insert(0, str(ROOT / "tests"))


@pytest.fixture
def scratch(monkeypatch):
    """Registries and plugin state put back after the test, so that what an in-process plugin
    adds here does not reach other tests (tests/test_registries.py checks every entry)."""
    from composer import plugins, registry

    for kind in registry.KINDS:
        entries = registry.get(kind)
        for attr in ("_entries", "_docs", "_examples", "origin"):
            monkeypatch.setattr(entries, attr, dict(getattr(entries, attr)))
    monkeypatch.setattr(plugins, "_loaded", set())
    monkeypatch.setattr(plugins, "_in_process", {})
