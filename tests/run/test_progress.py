"""Progress of a run: window means kept on the device until a logging step, the plain-line
fallback (steps/s, ETA) when stdout is not a terminal, the tqdm bar on one, nothing when quiet."""
import io
import json

import pytest
import torch

from composer import api
from composer.run.progress import Progress, WindowMeans, is_terminal
from composer.run.trainer import Trainer
from specs import small_2d_gan


class FakeClock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


class Terminal(io.StringIO):
    def isatty(self):
        return True


def test_a_window_mean_is_over_the_steps_that_evaluated_each_term():
    window = WindowMeans()
    window.add({"d": torch.tensor(1.0), "g": torch.tensor(4.0)})
    window.add({"d": torch.tensor(2.0)})                 # a step whose G phase did not run
    window.add({"d": torch.tensor(6.0), "g": torch.tensor(8.0)})
    assert window.read() == {"d": 3.0, "g": 6.0}
    assert window.read() == {}                            # read starts a fresh window
    window.add({"d": torch.tensor(5.0)})
    assert window.read() == {"d": 5.0}


def test_adding_steps_reads_nothing_from_the_device():
    """Meta tensors have no values: adding them works only if nothing is read per step; the read
    at the logging step is the one place the values are fetched."""
    window = WindowMeans()
    for _ in range(3):
        window.add({"d": torch.tensor(1.0, device="meta")})
    assert window.sums["d"].device.type == "meta" and window.counts == {"d": 3}
    with pytest.raises(NotImplementedError, match="meta tensor"):
        window.read()


def test_the_read_reduces_all_terms_at_once():
    calls = []

    def reduce(t):
        calls.append(t.clone())
        return t * 10

    window = WindowMeans()
    window.add({"a": torch.tensor(1.0), "b": torch.tensor(3.0)})
    assert window.read(reduce) == {"a": 10.0, "b": 30.0}
    assert len(calls) == 1 and calls[0].tolist() == [1.0, 3.0]


def test_the_plain_line_shows_the_step_the_means_steps_per_second_and_eta():
    clock, out = FakeClock(), io.StringIO()
    progress = Progress(total=100, start=20, stream=out, clock=clock)
    assert progress.bar is None                           # a StringIO is not a terminal
    clock.now += 4.0                                      # 20 steps in 4 s: 5 steps/s, 60 left: 12 s
    progress.update(40)
    progress.report(40, {"gan.D": 0.69314, "gan.G": 1.5})
    assert out.getvalue() == ("step  40/100  gan.D 0.6931  gan.G 1.5  |  5 steps/s  elapsed 00:04  "
                              "ETA 00:12\n")


def test_a_terminal_gets_a_tqdm_bar_with_the_means():
    out = Terminal()
    progress = Progress(total=10, stream=out, bar=True)
    for step in range(1, 11):
        progress.update(step)
    progress.report(10, {"gan.G": 0.5})
    progress.write("a message")
    progress.close()
    text = out.getvalue()
    assert "10/10" in text and "step/s" in text and "gan.G 0.5" in text and "a message\n" in text


def test_a_terminal_without_a_width_or_a_file_is_not_one():
    assert not is_terminal(Terminal())                    # no fileno: a test double, a notebook
    assert not is_terminal(io.StringIO())


def test_disabled_progress_prints_nothing():
    out = Terminal()
    progress = Progress(total=10, stream=out, enabled=False, bar=True)
    progress.update(5)
    progress.report(5, {"a": 1.0})
    progress.write("hidden")
    progress.close()
    assert progress.bar is None and out.getvalue() == ""


def _recording_runner(overrides):
    runner = api.runner(api.from_dict(small_2d_gan()), overrides)
    per_step, real_step = [], runner.step

    def step(*args, **kwargs):
        logs = real_step(*args, **kwargs)
        per_step.append({k: float(v) for k, v in logs.items()})
        return logs

    runner.step = step
    return runner, per_step


def test_metrics_and_printed_lines_are_window_means(tmp_path, capsys):
    runner, per_step = _recording_runner(["train.steps=6", "train.log_every=3", "train.threads=1"])
    Trainer(runner, tmp_path / "run").run()
    records = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [3, 6]
    for record, window in zip(records, (per_step[:3], per_step[3:])):
        for term in window[0]:
            mean = sum(s[term] for s in window) / 3
            assert record[term] == pytest.approx(mean, rel=1e-6)
    assert any(abs(records[1][t] - per_step[-1][t]) > 1e-4 for t in per_step[-1])   # not the last step
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("step")]
    assert len(lines) == 2 and lines[0].startswith("step 3/6  gan.D_real ")
    assert all("steps/s" in line and "ETA" in line for line in lines)
    assert f"gan.G {records[1]['gan.G']:.4g}" in lines[1]


def test_quiet_prints_nothing(tmp_path, capsys):
    api.train(api.from_dict(small_2d_gan()), tmp_path / "run", ["train.log_every=1", "train.threads=1"], quiet=True)
    assert capsys.readouterr().out == ""
    assert len((tmp_path / "run" / "metrics.jsonl").read_text().splitlines()) == 3


@pytest.mark.parametrize("log_every, reads", [(3, 2), (0, 0)])
def test_the_trainer_reads_the_losses_only_at_logging_steps(tmp_path, monkeypatch, log_every, reads):
    calls, real_read = [], WindowMeans.read

    def read(self, *args, **kwargs):
        calls.append(dict(self.counts))
        return real_read(self, *args, **kwargs)

    monkeypatch.setattr(WindowMeans, "read", read)
    overrides = ["train.steps=6", f"train.log_every={log_every}", "train.threads=1"]
    api.train(api.from_dict(small_2d_gan()), tmp_path / "run", overrides, quiet=True)
    assert calls == [{"gan.D_real": 3, "gan.D_fake": 3, "gan.G": 3}] * reads
