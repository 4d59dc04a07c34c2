"""Training progress: loss means over the logging window, shown as a bar or as plain lines.

The losses of a step stay on the device (`Runner.step` returns 0-dim tensors): `WindowMeans` adds
them up as tensors and reads them once per logging step, so training never waits for the device in
between, and what is logged is the mean over the window, not the noisy last step.

`Progress` shows the step, steps/s, the time left and the window means: on a terminal as a tqdm bar
(https://github.com/tqdm/tqdm), elsewhere (CI, a log redirected to a file) as one plain line per
logging step carrying the same numbers.
"""
from __future__ import annotations

import os
import sys
import time

import torch
from tqdm import tqdm


class WindowMeans:
    """Sums and counts of each loss term since the last read. A term missing from some steps (its
    phase ran `every` k steps) is averaged over the steps that evaluated it."""

    def __init__(self):
        self.sums: dict[str, torch.Tensor] = {}
        self.counts: dict[str, int] = {}

    def add(self, logs: dict) -> None:
        """Add one step's terms: tensor additions on their device, no host read."""
        for name, value in logs.items():
            value = torch.as_tensor(value).detach()
            self.sums[name] = self.sums[name] + value if name in self.sums else value
            self.counts[name] = self.counts.get(name, 0) + 1

    def read(self, reduce=None) -> dict[str, float]:
        """The window's means, read from the device at once, and a fresh window. `reduce` (e.g.
        `accelerator.reduce`, every process calls it) averages the means over the processes."""
        if not self.sums:
            return {}
        names = list(self.sums)
        means = torch.stack([self.sums[n].float() / self.counts[n] for n in names])
        if reduce is not None:
            means = reduce(means)
        self.sums, self.counts = {}, {}
        return dict(zip(names, means.tolist()))     # the one host read of the window


def is_terminal(stream) -> bool:
    """A terminal with a width (a pseudo-terminal of width 0, which some CI runners give and on
    which tqdm draws nothing, gets plain lines)."""
    try:
        return stream.isatty() and os.get_terminal_size(stream.fileno()).columns > 0
    except (AttributeError, OSError, ValueError):
        return False


def format_terms(values: dict) -> str:
    return "  ".join(f"{name} {value:.4g}" for name, value in values.items())


class Progress:
    """The run's progress from step `start` to `total`. `bar`: a tqdm bar (default: when `stream`
    is a terminal); else `report` prints a line. Nothing at all when not `enabled` (quiet, or not
    the main process)."""

    def __init__(self, total: int, start: int = 0, enabled: bool = True, bar: bool | None = None,
                 stream=None, clock=time.perf_counter):
        self.total, self.start, self.enabled, self.clock = total, start, enabled, clock
        self.stream = stream if stream is not None else sys.stdout
        if bar is None:
            bar = is_terminal(self.stream)
        self.started = clock()
        self.bar = None
        if enabled and bar:
            self.bar = tqdm(total=total, initial=start, unit="step", file=self.stream, dynamic_ncols=True,
                            smoothing=0.1)

    def update(self, step: int) -> None:
        """Every step: moves the bar (tqdm redraws at most ~10 times a second)."""
        if self.bar is not None:
            self.bar.update(step - self.bar.n)

    def rate(self, step: int) -> float:
        """Steps per second since this process started at `start`."""
        elapsed = self.clock() - self.started
        return (step - self.start) / elapsed if elapsed > 0 else 0.0

    def report(self, step: int, values: dict) -> None:
        """At a logging step: the window means on the bar, or a plain line."""
        if not self.enabled:
            return
        if self.bar is not None:
            self.bar.set_postfix_str(format_terms(values), refresh=True)
            return
        rate = self.rate(step)
        eta = tqdm.format_interval((self.total - step) / rate) if rate > 0 else "?"
        elapsed = tqdm.format_interval(self.clock() - self.started)
        width = len(str(self.total))
        self.write(f"step {step:{width}d}/{self.total}  {format_terms(values)}  "
                   f"|  {rate:.3g} steps/s  elapsed {elapsed}  ETA {eta}")

    def write(self, text: str) -> None:
        """A message line that does not break the bar."""
        if not self.enabled:
            return
        if self.bar is not None:
            self.bar.write(text, file=self.stream)
        else:
            print(text, file=self.stream, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
