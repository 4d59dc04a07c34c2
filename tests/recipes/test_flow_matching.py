"""Flow matching as one recipe file: its nodes, its loss against the formula, generation through
its own Generator with its own sample options, and errors for bad options."""
import pytest
import torch

from composer import api
from composer.errors import SpecError
from composer.recipes.flow_matching import StraightPath, velocity_loss


def tiny(**sample):
    return {
        "name": "fm",
        "inputs": {"x0": {"source": "ring", "n": 256}},
        "modules": {"v": {"block": "TimeMLP", "features": 2, "hidden": 16, "depth": 1, "time_dim": 8}},
        "objectives": {"fm": {"recipe": "flow_matching", "data": "x0", "model": "v"}},
        "optimizers": {"v": {"params": ["v"], "lr": 1e-3}},
        "train": {"steps": 2, "batch": 16},
        "sample": {"objective": "fm", "n": 8, **sample},
    }


def test_straight_path_and_velocity_loss_follow_the_formulas():
    x0, eps, t = torch.randn(4, 2), torch.randn(4, 2), torch.tensor([0.0, 0.25, 0.5, 1.0])
    x_t = StraightPath()(None, x0, t, eps)
    torch.testing.assert_close(x_t[0], x0[0])
    torch.testing.assert_close(x_t[3], eps[3])
    torch.testing.assert_close(x_t[1], 0.75 * x0[1] + 0.25 * eps[1])
    pred = torch.randn(4, 2)
    torch.testing.assert_close(velocity_loss(pred, x0, eps), ((pred - (eps - x0)) ** 2).mean(1))


def test_it_trains_and_generates_with_its_own_options():
    runner = api.runner(api.from_dict(tiny(steps=3, solver="euler")), cpu=True)
    assert set(runner.step()) == {"fm.loss"}
    samples = api.sample(runner, 8)
    assert samples.shape == (8, 2) and torch.isfinite(samples).all()
    assert not torch.equal(samples, api.sample(runner, 8, solver="heun"))


@pytest.mark.parametrize("sample, message", [
    ({"solver": "rk4"}, r"sample.solver: unknown solver 'rk4'"),
    ({"steps": 0}, r"sample.steps: expected a positive number of steps, got 0"),
    ({"sampler": "heun"}, r"sample.sampler: the generator of recipe flow_matching has no argument 'sampler' "
                          r"\(did you mean 'solver'\?\)"),
])
def test_its_sample_options_are_checked_at_build(sample, message):
    with pytest.raises(SpecError, match=message):
        api.validate(api.from_dict(tiny(**sample)))
