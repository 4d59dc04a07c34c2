"""Flow matching as one recipe file: its nodes, its loss against the formula, generation through
the shared samplers on the straight path (`sampler:` like the denoising recipe), and errors for
bad options."""
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


def test_it_trains_and_generates_with_the_shared_samplers():
    runner = api.runner(api.from_dict(tiny(steps=3, sampler="euler")), cpu=True)
    assert set(runner.step()) == {"fm.loss"}
    samples = api.sample(runner, 8)
    assert samples.shape == (8, 2) and torch.isfinite(samples).all()
    assert not torch.equal(samples, api.sample(runner, 8, sampler="heun"))


def velocity_ode(net, x, steps, solver):
    """The recipe's integrator until issue 25 (VelocityODE), written out: x ~ N(0, I) at t = 1,
    `steps` uniform steps to t = 0, Euler, or Heun without its correction on the last step (s = 0)."""
    ts = torch.linspace(1.0, 0.0, steps + 1)
    velocity = lambda x, t: net(x, t.expand(x.shape[0]).to(x.dtype))
    for t, s in zip(ts[:-1], ts[1:]):
        v = velocity(x, t)
        x_next = x + (s - t) * v
        if solver == "heun" and s > 0:
            x_next = x + (s - t) * 0.5 * (v + velocity(x_next, s))
        x = x_next
    return x


@pytest.mark.parametrize("sampler", ["euler", "heun"])
@pytest.mark.parametrize("steps", [1, 5, 20])
def test_euler_and_heun_reproduce_the_old_integrator(sampler, steps):
    runner = api.runner(api.from_dict(tiny()), cpu=True)
    runner.step()
    samples = api.sample(runner, 64, seed=3, sampler=sampler, steps=steps)
    with torch.no_grad():
        x = torch.randn(64, 2, generator=torch.Generator().manual_seed(3))
        old = velocity_ode(runner.unwrapped("v").eval(), x, steps, sampler)
    assert not torch.equal(old, x)
    torch.testing.assert_close(samples, old, rtol=0, atol=1e-5)


def test_every_path_sampler_generates_through_sample_options():
    # accuracy on a known flow is tests/recipes/test_samplers.py's (exact Gaussian velocity); here the
    # recipe's options reach the shared samplers: an untrained TimeMLP (time embedding at 1000 t)
    runner = api.runner(api.from_dict(tiny()), cpu=True)
    runner.step()
    draw = lambda sampler, steps=8, **options: api.sample(runner, 64, seed=1, sampler=sampler, steps=steps, **options)
    samples = {name: draw(name) for name in ("euler", "heun", "ddim", "ddpm", "dpmpp_2m")}
    assert all(v.shape == (64, 2) and torch.isfinite(v).all() for v in samples.values())
    torch.testing.assert_close(samples["ddim"], samples["euler"], rtol=0, atol=1e-5)  # DDIM is Euler here
    assert (samples["dpmpp_2m"] - samples["euler"]).abs().max() > 1e-3  # second order from its third step
    assert torch.equal(samples["ddpm"], draw("ddim", eta=1.0)) and not torch.equal(samples["ddpm"], draw("ddim", eta=0.5))
    assert not torch.equal(draw("euler", spacing="quadratic"), samples["euler"])


@pytest.mark.parametrize("sample, message", [
    ({"solver": "euler"}, r"sample.solver: the key is now 'sampler' \(the shared samplers\): write "
                          r"sampler: euler instead of solver: euler"),
    ({"sampler": "rk4"}, r"sample.sampler: unknown sampler 'rk4' \(expected one of: ddim, ddpm, dpmpp_2m, "
                         r"euler, heun\)"),
    ({"sampler": "euler_maruyama"}, r"sample.sampler: sampler 'euler_maruyama' needs a VP schedule \(its reverse "
                                    r"SDE is singular at t = 1 on the straight path\); flow matching samples "
                                    r"with euler, heun, ddim, ddpm, dpmpp_2m"),
    ({"spacing": "logsnr"}, r"sample.spacing: unknown spacing 'logsnr' \(expected one of: quadratic, uniform\)"),
    ({"sampler": "heun", "eta": 0.5}, r"sample.eta: sampler 'heun' takes no eta"),
    ({"steps": 0}, r"sample.steps: expected a positive number of steps, got 0"),
    ({"t_min": 0.1}, r"sample.t_min: the generator of recipe flow_matching has no argument 't_min'"),
])
def test_its_sample_options_are_checked_at_build(sample, message):
    with pytest.raises(SpecError, match=message):
        api.validate(api.from_dict(tiny(**sample)))
