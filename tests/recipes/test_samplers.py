"""Samplers on Gaussian data x0 ~ N(mu, s^2 I), whose exact eps and exact ODE flow are known.

x_t ~ N(gamma mu, S_t^2 I) with S_t^2 = gamma^2 s^2 + sigma^2, so the exact eps-prediction is
eps*(x, t) = sigma (x - gamma mu) / S_t^2, and the probability-flow ODE maps x at t = 1 to
gamma_t mu + (S_t / S_1)(x - gamma_1 mu) at t. ODE samplers are scored pathwise against that
map (no Monte-Carlo noise), stochastic ones on the moments of 16k samples (2 x 16k < 32768
elements keeps torch ops single-threaded, hence fast on a loaded machine).
"""
import pytest
import torch

from composer.recipes.samplers import SAMPLERS, sample, samplers_for, time_grid
from composer.recipes.schedules import Cosine, DDPMLinear, RectifiedFlow, VPSDE

from tests.recipes.test_flow_matching import velocity_ode

f64 = torch.float64
MU, S, N = torch.tensor([1.0, -2.0], dtype=f64), 0.5, 16_000
VP = VPSDE()


def gaussian_eps(schedule, s=S):
    """The exact eps*(x, t) for x0 ~ N(MU, s^2 I); counts its calls in `eps_model.nfe`."""
    def eps_model(x, t):
        eps_model.nfe += 1
        assert t.shape == (x.shape[0],) and t.dtype == x.dtype
        gamma, sigma = schedule.gamma(t[:1]).to(x), schedule.sigma(t[:1]).to(x)
        return sigma * (x - gamma * MU.to(x)) / (gamma**2 * s**2 + sigma**2)
    eps_model.nfe = 0
    return eps_model


def marginal(schedule, t, s=S):
    """Mean [2] and std of x_t."""
    gamma, sigma = schedule.gamma(t), schedule.sigma(t)
    return gamma * MU, torch.sqrt(gamma**2 * s**2 + sigma**2)


def start_and_exact(schedule, t_min=1e-3, s=S, seed=0):
    """x ~ q(x_1) exactly, and its image under the exact probability-flow map at t_min."""
    m1, s1 = marginal(schedule, 1.0, s)
    m0, s0 = marginal(schedule, t_min, s)
    x1 = m1 + s1 * torch.randn(N, 2, generator=torch.Generator().manual_seed(seed), dtype=f64)
    return x1, m0 + s0 / s1 * (x1 - m1)


def ode_error(name, steps, spacing="uniform", schedule=VP):
    """Pathwise max |x_sampled - x_exact| at t_min = 1e-3."""
    x1, exact = start_and_exact(schedule)
    ts = time_grid(steps, spacing=spacing, schedule=schedule)
    return (SAMPLERS[name](gaussian_eps(schedule), x1, ts, schedule) - exact).abs().max().item()


def moment_errors(out, schedule, t_min=1e-3):
    """max |mean - gamma mu| and max |std / S - 1| over the two coordinates."""
    mean, std = marginal(schedule, t_min)
    return (out.mean(0) - mean).abs().max().item(), (out.std(0) / std - 1).abs().max().item()


def run_stochastic(name, steps, schedule=VP, seed=1, **options):
    x1, _ = start_and_exact(schedule)
    gen = torch.Generator().manual_seed(seed)
    return SAMPLERS[name](gaussian_eps(schedule), x1, time_grid(steps), schedule, generator=gen, **options)


# ---- accuracy ---------------------------------------------------------------------------

@pytest.mark.parametrize("name, steps, spacing, tol", [
    ("euler", 50, "uniform", 0.05),
    ("heun", 20, "uniform", 0.03),
    ("ddim", 100, "quadratic", 0.06),  # first order with a large constant on this wide Gaussian
    ("dpmpp_2m", 20, "logsnr", 0.04),
])
def test_ode_samplers_follow_the_exact_flow(name, steps, spacing, tol):
    x1, exact = start_and_exact(VP)
    out = SAMPLERS[name](gaussian_eps(VP), x1, time_grid(steps, spacing=spacing, schedule=VP), VP)
    assert (out - exact).abs().max().item() < tol
    mean_err, std_err = moment_errors(out, VP)  # Monte-Carlo noise alone: ~0.004 and ~0.6%
    assert mean_err < 0.03 and std_err < 0.03


@pytest.mark.parametrize("name, spacing", [
    ("euler", "uniform"), ("heun", "uniform"), ("ddim", "uniform"), ("dpmpp_2m", "logsnr"),
])
def test_ode_error_decreases_with_steps(name, spacing):
    errors = [ode_error(name, steps, spacing) for steps in (10, 20, 40)]
    assert errors[0] > errors[1] > errors[2]


@pytest.mark.parametrize("steps", [10, 20])
def test_second_order_samplers_beat_euler(steps):
    euler = ode_error("euler", steps)
    assert ode_error("heun", steps) < euler
    assert ode_error("dpmpp_2m", steps, "logsnr") < euler


def test_heun_is_second_order():
    # halving the step divides the error by about 4 (Karras et al. 2022, Algorithm 1)
    assert ode_error("heun", 20) / ode_error("heun", 40) > 3.0
    assert ode_error("euler", 20) / ode_error("euler", 40) < 2.5


@pytest.mark.parametrize("name", ["ddim", "dpmpp_2m"])
def test_exponential_integrators_are_exact_for_a_point_mass(name):
    # with x0 ~ delta(mu), x0_hat = mu at every t: DDIM and DPM-Solver++ integrate exactly
    x1, exact = start_and_exact(VP, s=0.0)
    out = SAMPLERS[name](gaussian_eps(VP, s=0.0), x1, time_grid(5), VP)
    torch.testing.assert_close(out, exact, rtol=0, atol=1e-8)


def test_euler_maruyama_reproduces_the_marginal():
    mean_err, std_err = moment_errors(run_stochastic("euler_maruyama", 500), VP)
    assert mean_err < 0.02 and std_err < 0.02
    coarse_mean_err, coarse_std_err = moment_errors(run_stochastic("euler_maruyama", 20), VP)
    assert coarse_std_err > 2 * std_err


def test_ddim_eta_one_is_ancestral_and_converges():
    errors = [moment_errors(run_stochastic("ddim", steps, eta=1.0), VP) for steps in (20, 100, 400)]
    std_errors = [std_err for _, std_err in errors]
    assert std_errors[0] > std_errors[1] > std_errors[2] and std_errors[2] < 0.03
    assert all(mean_err < 0.02 for mean_err, _ in errors)


@pytest.mark.parametrize("schedule", [Cosine(), DDPMLinear()], ids=["cosine", "ddpm_linear"])
@pytest.mark.parametrize("name", ["heun", "dpmpp_2m"])
def test_other_schedules(schedule, name):
    assert ode_error(name, 20, "logsnr", schedule) < 0.05


# ---- bookkeeping ------------------------------------------------------------------------

@pytest.mark.parametrize("name, nfe", [
    ("euler_maruyama", 7), ("euler", 7), ("ddim", 7), ("ddpm", 7), ("dpmpp_2m", 7), ("heun", 14),
])
def test_network_evaluations(name, nfe):
    x1, _ = start_and_exact(VP)
    for denoise, extra in ((False, 0), (True, 1)):
        eps_model = gaussian_eps(VP)
        SAMPLERS[name](eps_model, x1, time_grid(7), VP, generator=torch.Generator(), denoise=denoise)
        assert eps_model.nfe == nfe + extra


def test_heun_ends_with_euler_at_t_zero():
    eps_model = gaussian_eps(VP)
    out = SAMPLERS["heun"](eps_model, torch.zeros(4, 2, dtype=f64), time_grid(7, t_min=0.0), VP)
    assert eps_model.nfe == 13 and torch.isfinite(out).all()


def test_denoise_returns_the_tweedie_estimate():
    x1, _ = start_and_exact(VP)
    ts = time_grid(10, spacing="logsnr", schedule=VP)
    x = SAMPLERS["dpmpp_2m"](gaussian_eps(VP), x1, ts, VP)
    x0_hat = SAMPLERS["dpmpp_2m"](gaussian_eps(VP), x1, ts, VP, denoise=True)
    t = ts[-1:].to(f64)
    expected = (x - VP.sigma(t) * gaussian_eps(VP)(x, t.expand(N))) / VP.gamma(t)
    torch.testing.assert_close(x0_hat, expected)


@pytest.mark.parametrize("name", ["euler_maruyama", "ddim"])
def test_stochastic_samplers_depend_only_on_the_generator(name):
    options = {"eta": 0.5} if name == "ddim" else {}
    first, again = run_stochastic(name, 10, seed=3, **options), run_stochastic(name, 10, seed=3, **options)
    other = run_stochastic(name, 10, seed=4, **options)
    assert torch.equal(first, again) and not torch.equal(first, other)


def test_float32_and_no_grad():
    x = torch.randn(8, 2, requires_grad=True)
    for name, sampler in SAMPLERS.items():
        out = sampler(gaussian_eps(VP), x, time_grid(4), VP, generator=torch.Generator())
        assert out.dtype == torch.float32 and out.shape == (8, 2) and not out.requires_grad, name


# ---- time grids -------------------------------------------------------------------------

@pytest.mark.parametrize("spacing", ["uniform", "quadratic", "logsnr"])
def test_time_grid_shape_and_ends(spacing):
    ts = time_grid(10, t_min=1e-3, spacing=spacing, schedule=VP)
    assert ts.shape == (11,) and ts.dtype == f64
    assert ts[0] == 1.0 and ts[-1] == 1e-3 and (ts.diff() < 0).all()


def test_time_grid_spacings():
    torch.testing.assert_close(time_grid(4, t_min=0.0), torch.tensor([1.0, 0.75, 0.5, 0.25, 0.0], dtype=f64))
    torch.testing.assert_close(time_grid(2, t_min=0.0, spacing="quadratic"), torch.tensor([1.0, 0.25, 0.0], dtype=f64))
    lam = VP.lam(time_grid(8, spacing="logsnr", schedule=VP))
    torch.testing.assert_close(lam.diff(), lam.diff()[:1].expand(8))


def test_time_grid_errors():
    with pytest.raises(ValueError, match=r"unknown spacing 'logsrn'; allowed: logsnr, quadratic, uniform "
                                         r"\(did you mean 'logsnr'\?\)"):
        time_grid(10, spacing="logsrn")
    with pytest.raises(ValueError, match=r"time_grid: spacing 'logsnr' needs a schedule and t_min > 0"):
        time_grid(10, spacing="logsnr")
    with pytest.raises(ValueError, match=r"time_grid: expected steps >= 1 and 0 <= t_min < t_max, got steps=0"):
        time_grid(0)


# ---- the convenience entry point --------------------------------------------------------

def test_sample_from_standard_normal():
    out = sample("dpmpp_2m", gaussian_eps(VP), (N, 2), VP, 20, generator=torch.Generator().manual_seed(0),
                 spacing="logsnr", dtype=f64)
    mean_err, std_err = moment_errors(out, VP)  # N(0, I) vs q(x_1): mean off by gamma_1 mu ~ 0.013
    assert mean_err < 0.03 and std_err < 0.03


def test_sample_is_reproducible_and_passes_options():
    run = lambda: sample("ddim", gaussian_eps(VP), (6, 2), VP, 5, generator=torch.Generator().manual_seed(7), eta=1.0)
    assert torch.equal(run(), run())
    with pytest.raises(TypeError, match="etta"):
        sample("ddim", gaussian_eps(VP), (6, 2), VP, 5, etta=1.0)


def test_sample_names_the_bad_sampler():
    with pytest.raises(ValueError, match=r"unknown sampler 'dpmpp2m'; allowed: ddim, ddpm, dpmpp_2m, euler, "
                                         r"euler_maruyama, heun \(did you mean 'dpmpp_2m'\?\)"):
        sample("dpmpp2m", gaussian_eps(VP), (2, 2), VP, 5)
    with pytest.raises(ValueError, match=r"unknown sampler 'zzz'; allowed: ddim, ddpm, dpmpp_2m, euler, euler_maruyama, heun$"):
        sample("zzz", gaussian_eps(VP), (2, 2), VP, 5)


def test_ddpm_is_ddim_with_eta_one():
    draw = lambda name, **eta: sample(name, gaussian_eps(VP), (6, 2), VP, 9, generator=torch.Generator().manual_seed(3),
                                      dtype=f64, spacing="quadratic", **eta)
    assert torch.equal(draw("ddpm"), draw("ddim", eta=1.0))
    assert not torch.equal(draw("ddpm"), draw("ddim", eta=0.5))


def test_ddim_rejects_eta_outside_unit_interval():
    with pytest.raises(ValueError, match=r"sample_ddim: expected 0 <= eta <= 1, got eta=1.5"):
        sample("ddim", gaussian_eps(VP), (2, 2), VP, 5, eta=1.5)


# ---- flow matching: the same samplers on the straight path ------------------------------
# RectifiedFlow: x_t = (1 - t) x0 + t eps, the model predicts v = eps - x0. For x0 ~ N(MU, S^2 I)
# the exact velocity is E[eps - x0 | x_t] = eps* - x0*, with eps* = sigma (x - gamma MU) / S_t^2
# (as for VP: gaussian_eps holds for any Gaussian path) and x0* = (x - sigma eps*) / gamma, written
# without the division: x0* = MU + gamma S^2 (x - gamma MU) / S_t^2.

FM = RectifiedFlow()


def gaussian_velocity(s=S):
    """The exact v*(x, t) for x0 ~ N(MU, s^2 I) on the straight path; counts calls in `model.nfe`."""
    def model(x, t):
        model.nfe += 1
        assert t.shape == (x.shape[0],) and t.dtype == x.dtype
        gamma, sigma, mu = 1 - t[:1].to(x), t[:1].to(x), MU.to(x)
        z = (x - gamma * mu) / (gamma**2 * s**2 + sigma**2)
        return sigma * z - (mu + gamma * s**2 * z)
    model.nfe = 0
    return model


def fm_error(name, steps, spacing="uniform"):
    """Pathwise max |x_sampled - x_exact| at t = 0 on the straight path."""
    x1, exact = start_and_exact(FM, t_min=0.0)
    ts = time_grid(steps, t_min=0.0, spacing=spacing)
    return (SAMPLERS[name](gaussian_velocity(), x1, ts, FM) - exact).abs().max().item()


def test_straight_path_reads_the_velocity():
    t = torch.tensor([0.0, 0.3, 1.0], dtype=f64)
    torch.testing.assert_close(FM.gamma(t), 1 - t)
    torch.testing.assert_close(FM.sigma(t), t)
    torch.testing.assert_close(FM.t_of_lambda(FM.lam(t)), t)
    assert FM.lam(1.0) == -float("inf") and FM.lam(0.0) == float("inf")
    x, v, t = torch.randn(5, 2, dtype=f64), torch.randn(5, 2, dtype=f64), torch.tensor(0.3, dtype=f64)
    x0_hat, eps_hat = FM.x0(x, t, v), FM.eps(x, t, v)
    torch.testing.assert_close(0.7 * x0_hat + 0.3 * eps_hat, x)       # x = gamma x0_hat + sigma eps_hat
    torch.testing.assert_close(eps_hat - x0_hat, v)                   # v = eps - x0
    torch.testing.assert_close(FM.velocity(x, t, v), -x0_hat + eps_hat)  # gamma' x0 + sigma' eps
    # at t = 1, where an eps-network could not give x0_hat (gamma = 0): x0_hat = x - v, eps_hat = x
    one = torch.tensor(1.0, dtype=f64)
    torch.testing.assert_close(FM.x0(x, one, v), x - v)
    torch.testing.assert_close(FM.eps(x, one, v), x)


def test_transition_variance_is_the_generic_one():
    s, t = torch.tensor([0.0, 0.2, 0.5, 0.9], dtype=f64), torch.tensor([0.3, 0.25, 0.9, 1.0], dtype=f64)
    generic = FM.sigma(t) ** 2 - (FM.gamma(t) / FM.gamma(s)) ** 2 * FM.sigma(s) ** 2
    torch.testing.assert_close(FM.transition_variance(s, t), generic)
    for schedule in (VP, Cosine()):  # the VP form 1 - gamma_t^2 / gamma_s^2 is the same quantity
        generic = schedule.sigma(t) ** 2 - (schedule.gamma(t) / schedule.gamma(s)) ** 2 * schedule.sigma(s) ** 2
        torch.testing.assert_close(schedule.transition_variance(s, t), generic)


@pytest.mark.parametrize("name, steps, spacing, tol", [  # measured: 0.063, 0.0091, 0.063, 0.024, 0.011
    ("euler", 50, "uniform", 0.08),
    ("heun", 20, "uniform", 0.012),
    ("ddim", 50, "uniform", 0.08),
    ("dpmpp_2m", 20, "uniform", 0.03),
    ("dpmpp_2m", 20, "quadratic", 0.015),
])
def test_ode_samplers_follow_the_exact_flow_on_the_straight_path(name, steps, spacing, tol):
    assert fm_error(name, steps, spacing) < tol


def test_on_the_straight_path_the_orders_hold():
    # max error at 10 / 20 / 40 uniform steps: euler 0.30 / 0.15 / 0.078, heun 0.039 / 0.0091 / 0.0022;
    # dpmpp_2m on the quadratic grid 0.056 / 0.011 / 0.0016 (its first two steps from lambda = -inf are
    # first order, so it needs the grid dense near t = 0 where lambda moves)
    euler, heun = [fm_error("euler", n) for n in (10, 20, 40)], [fm_error("heun", n) for n in (10, 20, 40)]
    dpmpp = [fm_error("dpmpp_2m", n, "quadratic") for n in (10, 20, 40)]
    assert all(1.8 < a / b < 2.2 for a, b in zip(euler, euler[1:]))
    assert all(a / b > 3.5 for a, b in zip(heun, heun[1:]))
    assert all(a / b > 3.5 for a, b in zip(dpmpp, dpmpp[1:]))
    assert all(h < e and d < e for h, d, e in zip(heun, dpmpp, euler))


def test_ddim_is_euler_on_the_straight_path():
    # gamma_s x0_hat + sigma_s eps_hat = (1 - s)(x - t v) + s (x + (1 - t) v) = x + (s - t) v
    x1, _ = start_and_exact(FM, t_min=0.0)
    ts = time_grid(9, t_min=0.0, spacing="quadratic")
    torch.testing.assert_close(SAMPLERS["ddim"](gaussian_velocity(), x1, ts, FM),
                               SAMPLERS["euler"](gaussian_velocity(), x1, ts, FM), rtol=0, atol=1e-12)


def test_ddpm_on_the_straight_path_is_ancestral_and_converges():
    # ancestral steps with the straight path's Markov posterior: the std error falls like 1 / steps
    # (measured 0.137 / 0.039 / 0.0095 at 20 / 100 / 400 steps), the mean is right throughout
    x1, _ = start_and_exact(FM, t_min=0.0)
    errors = []
    for steps in (20, 100, 400):
        out = SAMPLERS["ddpm"](gaussian_velocity(), x1, time_grid(steps, t_min=0.0), FM,
                               generator=torch.Generator().manual_seed(1))
        assert (out.mean(0) - MU).abs().max().item() < 0.02  # Monte-Carlo: ~0.004
        errors.append((out.std(0) / S - 1).abs().max().item())
    assert errors[0] > 3 * errors[1] > 9 * errors[2] and errors[2] < 0.02


def test_euler_maruyama_and_logsnr_grid_refuse_the_straight_path():
    with pytest.raises(ValueError, match=r"sample_euler_maruyama: the reverse VP-SDE needs a VP schedule with "
                                         r"beta\(t\), got RectifiedFlow; the samplers for any path are euler, "
                                         r"heun, ddim, ddpm, dpmpp_2m"):
        sample("euler_maruyama", gaussian_velocity(), (4, 2), FM, 5, t_min=0.0)
    with pytest.raises(ValueError, match=r"time_grid: spacing 'logsnr' needs a finite lambda at t_max and t_min, "
                                         r"got lambda\(1\) = -inf"):
        time_grid(5, t_min=1e-3, spacing="logsnr", schedule=FM)
    assert samplers_for(FM) == ["euler", "heun", "ddim", "ddpm", "dpmpp_2m"]
    assert samplers_for(VP) == list(SAMPLERS)


class TinyVelocity(torch.nn.Module):
    """A small random velocity network v(x, t), float32."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.net = torch.nn.Sequential(torch.nn.Linear(3, 32), torch.nn.Tanh(), torch.nn.Linear(32, 2))
        self.nfe = 0

    def forward(self, x, t):
        self.nfe += 1
        return self.net(torch.cat([x, t[:, None]], 1))


@pytest.mark.parametrize("name", ["euler", "heun"])
@pytest.mark.parametrize("steps", [1, 2, 7, 20])
def test_flow_matching_euler_and_heun_are_the_old_velocity_ode(name, steps):
    net = TinyVelocity()
    x = torch.randn(64, 2, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        old = velocity_ode(net, x, steps, name)
    net.nfe = 0
    new = sample(name, net, (64, 2), FM, steps, generator=torch.Generator().manual_seed(0), t_min=0.0)
    assert net.nfe == (2 * steps - 1 if name == "heun" else steps)  # heun: no correction into t = 0
    assert new.dtype == torch.float32 and not torch.equal(new, x)
    torch.testing.assert_close(new, old, rtol=0, atol=1e-5)


@pytest.mark.parametrize("schedule, model, t_min", [(VP, gaussian_eps(VP), 1e-3), (FM, gaussian_velocity(), 0.0)],
                         ids=["vp", "flow_matching"])
@pytest.mark.parametrize("name", ["euler", "heun", "ddim", "dpmpp_2m"])
def test_callback_sees_every_step_and_changes_nothing(schedule, model, t_min, name):
    x1, _ = start_and_exact(schedule, t_min=t_min)
    x1 = x1[:64]
    ts = time_grid(6, t_min=t_min)
    seen = []
    out = SAMPLERS[name](model, x1, ts, schedule, callback=lambda info: seen.append(dict(info)))
    assert torch.equal(out, SAMPLERS[name](model, x1, ts, schedule))
    assert [info["i"] for info in seen] == list(range(6))
    assert torch.equal(torch.stack([info["t"] for info in seen]), ts[:-1])
    assert torch.equal(seen[0]["x"], x1)
    for info in seen:  # denoised is x0_hat of the model at (x, t)
        pred = model(info["x"], info["t"].expand(64))
        torch.testing.assert_close(info["denoised"], schedule.x0(info["x"], info["t"], pred))
    if schedule is FM:  # x0_hat = x - t v; the exact flow's x0_hat nears the data mean as t -> 0
        torch.testing.assert_close(seen[0]["denoised"], x1 - model(x1, ts[:1].expand(64)))
        assert (seen[-1]["denoised"].mean(0) - MU).abs().max() < 0.2
    if name == "euler":  # x of step i + 1 is the Euler step from step i
        torch.testing.assert_close(seen[1]["x"], seen[0]["x"] + (ts[1] - ts[0]) * schedule.velocity(
            seen[0]["x"], ts[0], model(seen[0]["x"], ts[:1].expand(64))))
