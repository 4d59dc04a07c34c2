"""Unit tests run on one thread: bit-reproducible (NOTES: 1 vs 2 threads differ) and fast on a
loaded 2-core machine.

Tiers: tests/ mirrors the package (spec/, graph/, ops/, run/, tools/, data/, metrics/, blocks/,
recipes/) with unit tests; model runs (tests/models/), several-process runs (tests/distributed/),
the spec fuzzer (tests/spec/test_fuzz.py) and the bench smoke runs (tests/bench/) are marked
`slow` here by their path, with their own tier marker (`model`, `dist`, `fuzz`, `bench`).
`python -m pytest -q` runs everything; `python -m pytest -m "not slow" -q` the quick tier.
"""
import functools
import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
GRAPHS = ROOT / "graphs"
TIERS = {"models": "model", "distributed": "dist", "bench": "bench", "spec/test_fuzz.py": "fuzz"}
"""Path under tests/ (a folder or a file) -> its tier marker; every tier is also `slow`."""

torch.set_num_threads(1)
os.environ.setdefault("COMPOSER_CACHE", str(ROOT / ".pytest_cache" / "composer"))


def modules_stepped(runner) -> list:
    """One runner step, as (phase, modules whose parameters had a nonzero gradient at the optimizer
    step) per optimizer step: which modules each phase really moves."""
    owners = {id(p): m for m, module in runner.raw.items() for p in module.parameters()}
    seen = []

    def record(optimizer, args, kwargs):
        moved = {owners[id(p)] for group in optimizer.param_groups for p in group["params"]
                 if p.grad is not None and p.grad.abs().sum() > 0}
        seen.append((runner.ctx.phase, moved))

    handles = [optimizer.register_step_pre_hook(record) for optimizer in runner.optimizers.values()]
    runner.step()
    for handle in handles:
        handle.remove()
    return seen


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


# A shipped graph that loads an earlier stage's exported module (`pretrained:` a file the user
# makes with `composer export RUN --format safetensors --module M`): graph -> (its module, the
# earlier graph, that graph's module). Tests feed it a stand-in file: the earlier graph's module
# at its initial weights, exported the user's way.
STAGES = {
    "latent_diffusion_kl": ("vae", "autoencoder_kl", "vae"),
    "gan_timm": ("F", "timm_digits", "net"),
}
LIBRARIES = {"block: timm": "timm", "block: diffusers.": "diffusers", "block: transformers.": "transformers"}


def missing_library(path: Path) -> str | None:
    """The optional library a graph file's blocks need that is not usable here (CI has no timm)."""
    text = path.read_text()
    return next((lib for mark, lib in LIBRARIES.items() if mark in text and not usable(lib)), None)


@functools.cache
def usable(library: str) -> bool:
    """Whether `library` imports, tried in a fresh interpreter: installed is not enough (timm's
    torchvision built for another torch fails at import with a RuntimeError)."""
    if importlib.util.find_spec(library) is None:
        return False
    return subprocess.run([sys.executable, "-c", f"import {library}"], capture_output=True).returncode == 0


def shipped_graphs() -> list:
    """Every graph file, as pytest params; skipped where an optional library is missing."""
    params = []
    for path in sorted(GRAPHS.glob("*.yaml")):
        lib = missing_library(path)
        marks = [pytest.mark.skip(reason=f"{path.name} needs {lib}")] if lib else []
        params.append(pytest.param(path, id=path.stem, marks=marks))
    return params


@pytest.fixture(scope="session")
def stage_overrides(tmp_path_factory) -> dict[str, list[str]]:
    """graph name -> overrides pointing its `pretrained:` at a stand-in of the earlier stage's file."""
    from composer import api

    folder, out = tmp_path_factory.mktemp("stages"), {}
    for graph, (module, earlier, source) in STAGES.items():
        if missing_library(GRAPHS / f"{earlier}.yaml"):
            continue
        file = folder / f"{earlier}.{source}.safetensors"
        api.export(api.runner(GRAPHS / f"{earlier}.yaml", cpu=True), "safetensors", file, module=source)
        out[graph] = [f"modules.{module}.pretrained={file}"]
    return out


def pytest_configure(config):
    sys.path.insert(0, str(ROOT / "tests"))


def pytest_collection_modifyitems(config, items):
    tests = ROOT / "tests"
    for item in items:
        path = Path(str(item.fspath)).resolve()
        if not path.is_relative_to(tests):
            continue
        rel = path.relative_to(tests).as_posix()
        for prefix, marker in TIERS.items():
            if rel == prefix or rel.startswith(prefix + "/"):
                item.add_marker(getattr(pytest.mark, marker))
                item.add_marker(pytest.mark.slow)


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


def check_signal_resume(spec, folder, steps: int, at: int = 2):
    """Train `spec` with a SIGTERM arriving inside step `at`, resume from the checkpoint the
    signal wrote, and require the weights of `steps` uninterrupted steps, bitwise; returns the
    uninterrupted and the resumed runners."""
    import signal

    from composer import api
    from composer.run import checkpoint
    from composer.run.trainer import Trainer

    straight = api.runner(spec, cpu=True)
    for _ in range(steps):
        straight.step()
    runner = api.runner(spec, cpu=True)
    real_run_ops = runner._run_ops

    def run_ops(phase, *args):
        if runner.step_count == at:
            os.kill(os.getpid(), signal.SIGTERM)
        return real_run_ops(phase, *args)

    runner._run_ops = run_ops
    with pytest.raises(KeyboardInterrupt):
        Trainer(runner, folder, quiet=True).run()
    resumed = Trainer(api.runner(spec, cpu=True), folder, resume=True, quiet=True).runner
    assert resumed.step_count == at + 1
    while resumed.step_count < steps:
        resumed.step()
    for key, value in checkpoint.module_tensors(straight).items():
        assert torch.equal(value, checkpoint.module_tensors(resumed)[key]), key
    return straight, resumed
