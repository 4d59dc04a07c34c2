"""The Runner's hooks: called after each phase's optimizer step; the EMA copies are the default
hook when `train.ema` is set, and move exactly as a hand-written EMA after each phase."""
import copy

import torch

from composer import api
from specs import small_dcgan


class Recorder:
    def __init__(self, runner):
        self.calls, self.moved = [], []
        self.before = [p.clone() for p in runner.raw["D"].parameters()]

    def after_phase(self, runner, phase, trained):
        self.calls.append((runner.step_count, phase, tuple(trained)))
        if phase == "D":
            self.moved.append(any(not torch.equal(a, b) for a, b in zip(self.before, runner.raw["D"].parameters())))


def test_a_hook_sees_every_phase_after_its_step():
    runner = api.runner(api.from_dict(small_dcgan()), cpu=True)
    assert runner.hooks == []                                # no EMA, no hook
    recorder = Recorder(runner)
    runner.hooks.append(recorder)
    runner.step()
    runner.step()
    assert recorder.calls == [(0, "D", ("D",)), (0, "G", ("G",)), (1, "D", ("D",)), (1, "G", ("G",))]
    assert recorder.moved[0]                                 # D had stepped when its hook ran


def test_the_ema_hook_moves_the_copy_after_each_phase_that_trained_its_module():
    runner = api.runner(api.from_dict(small_dcgan(ema={"G": 0.9})), cpu=True)
    assert runner.hooks == [runner.averages] and set(runner.ema) == {"G"}
    expected = copy.deepcopy(runner.raw["G"])
    for _ in range(3):
        runner.step()
        with torch.no_grad():
            for e, p in zip(expected.parameters(), runner.raw["G"].parameters()):
                e.lerp_(p, 1 - 0.9)
            for e, b in zip(expected.buffers(), runner.raw["G"].buffers()):
                e.copy_(b)
    for a, b in zip(runner.ema["G"].state_dict().values(), expected.state_dict().values()):
        assert torch.equal(a, b)
    assert runner.unwrapped("G") is runner.averages.for_generation(runner, "G")
