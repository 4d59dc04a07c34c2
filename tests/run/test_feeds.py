"""BatchStream (composer/feeds.py): columns on the training device, order and RNG on the CPU, so
the saved state is device-independent and a resumed stream continues exactly."""
import torch

from composer import api
from composer.data.table import Table
from composer.run.feeds import BatchStream
from conftest import GRAPHS


def table(n=10):
    return Table(x=torch.arange(n * 4, dtype=torch.float32).view(n, 1, 2, 2), y=torch.arange(n))


def test_a_stream_moved_to_another_device_draws_the_same_indices_there():
    """`meta` stands in for an accelerator: the gather happens there, the order stays on the CPU."""
    here, there = BatchStream(table(), 4, seed=3), BatchStream(table(), 4, seed=3).to("meta")
    for _ in range(6):                       # 24 draws of 10 samples: into the third epoch
        a, b = here.next(), there.next()
        assert b["x"].device.type == "meta" and b["x"].shape == a["x"].shape
    assert here.state_dict()["epoch"] == there.state_dict()["epoch"] == 2
    assert torch.equal(here.state_dict()["order"], there.state_dict()["order"])
    assert there.state_dict()["order"].device.type == "cpu"


def test_a_resumed_stream_continues_exactly():
    stream = BatchStream(table(), 4, seed=1).to("cpu")
    for _ in range(3):
        stream.next()
    state = {k: v.clone() if torch.is_tensor(v) else v for k, v in stream.state_dict().items()}
    expected = [stream.next()["y"] for _ in range(4)]
    resumed = BatchStream(table(), 4, seed=99)
    resumed.load_state_dict(state)
    assert all(torch.equal(resumed.next()["y"], e) for e in expected)


def test_the_runner_keeps_its_streams_on_its_device():
    runner = api.runner(GRAPHS / "dcgan.yaml", ["train.batch=4"], cpu=True)
    assert all(c.device == runner.device for s in runner.streams.values() for c in s.columns.values())
    assert set(runner.streams["real"].state_dict()) == {"epoch", "position", "order", "rng"}


def test_a_table_too_big_for_the_device_stays_in_host_memory(monkeypatch):
    from composer.run import fast

    runner = api.runner(GRAPHS / "dcgan.yaml", ["train.batch=4"], cpu=True)
    stream = runner.streams["real"]
    assert stream.nbytes == len(stream.table) * (16 * 16 * 4 + 8)   # digits: x float32 [1, 16, 16], y int64
    moved = []
    monkeypatch.setattr(stream, "to", lambda device: moved.append(device))
    monkeypatch.setattr(fast, "DEVICE_TABLE_BYTES", stream.nbytes - 1)
    fast.apply(runner)
    assert moved == []
    monkeypatch.setattr(fast, "DEVICE_TABLE_BYTES", stream.nbytes)
    fast.apply(runner)
    assert moved == [runner.device]
