import math

import pytest
import torch

from composer.recipes.schedules import (
    SCHEDULES, Cosine, DDPMLinear, VPSDE, append_dims, forward_marginal,
)

ALL = [schedule() for schedule in SCHEDULES.values()]   # every registered schedule, with defaults
IDS = list(SCHEDULES)
f64 = torch.float64


def test_vpsde_pinned_values():
    vp = VPSDE()
    t = torch.tensor([0.5, 1.0], dtype=f64)
    torch.testing.assert_close(vp.gamma(t), torch.tensor([0.2811828808, 0.0065715865], dtype=f64), rtol=0, atol=1e-9)
    torch.testing.assert_close(vp.sigma(t), torch.tensor([0.9596542021, 0.9999784069], dtype=f64), rtol=0, atol=1e-9)
    assert vp.beta(torch.tensor(0.5, dtype=f64)).item() == pytest.approx(0.1 + 0.5 * 19.9)


def test_vpsde_closed_form_matches_the_notes():
    # gamma_t = exp(-1/2 int beta), sigma_t^2 = 1 - exp(-int beta), int by the trapezoid rule
    vp, t = VPSDE(), 0.7
    s = torch.linspace(0, t, 20001, dtype=f64)
    integral = torch.trapezoid(vp.beta(s), s)
    assert vp.gamma(t).item() == pytest.approx(math.exp(-0.5 * integral.item()), rel=1e-9)
    assert vp.sigma(t).item() ** 2 == pytest.approx(1 - math.exp(-integral.item()), rel=1e-9)


def test_ddpm_alpha_bar_pinned():
    alpha_bar = DDPMLinear().alpha_bar
    assert alpha_bar.shape == (1000,)
    torch.testing.assert_close(alpha_bar[[0, 499, 999]], torch.tensor([0.9999, 0.07858724, 4.0358e-05], dtype=f64),
                               rtol=1e-4, atol=0)


def test_ddpm_continuous_view_hits_the_knots():
    sched = DDPMLinear()
    t = torch.arange(1, 1001, dtype=f64) / 1000  # knot (i + 1) / T carries alpha_bar_i
    torch.testing.assert_close(sched.gamma(t) ** 2, sched.alpha_bar, rtol=1e-12, atol=0)
    assert sched.gamma(0.0).item() == 1.0
    # beta(t) ~= T beta_i: the continuous limit is VPSDE(0.1, 20)
    assert sched.beta(0.0).item() == pytest.approx(0.1, rel=1e-3)
    assert sched.beta(0.9999).item() == pytest.approx(20.0 * -math.log(1 - 0.02) / 0.02, rel=1e-9)


def test_cosine_is_nichol_dhariwal_before_the_clip():
    sched, s = Cosine(), 0.008
    t = torch.linspace(0, 0.99, 100, dtype=f64)
    f = lambda u: torch.cos((u + s) / (1 + s) * math.pi / 2) ** 2
    torch.testing.assert_close(sched.gamma(t) ** 2, f(t) / f(torch.zeros((), dtype=f64)), rtol=1e-12, atol=1e-15)


def test_cosine_clip_keeps_sigma_below_one():
    sched = Cosine()
    assert 0.99 < sched.t_clip < 1.0
    assert sched.sigma(torch.tensor(1.0)).item() < 1.0  # float32
    assert torch.isfinite(sched.lam(torch.tensor(1.0)))
    t = torch.linspace(0, 1, 10001, dtype=f64)
    beta = sched.beta(t)
    assert beta.max().item() == pytest.approx(1000.0) and (beta.diff() >= 0).all()
    eps = 1e-9
    assert sched.beta(sched.t_clip - eps).item() == pytest.approx(sched.beta(sched.t_clip + eps).item(), rel=1e-5)


def test_cosine_rejects_a_clip_below_the_start_rate():
    with pytest.raises(ValueError, match=r"Cosine: beta_clip=0.01 clips the whole schedule; expected beta_clip > "):
        Cosine(beta_clip=0.01)


@pytest.mark.parametrize("sched", ALL, ids=IDS)
def test_variance_preserving_and_monotone(sched):
    t = torch.linspace(0, 1, 1001, dtype=f64)
    gamma, sigma = sched.gamma(t), sched.sigma(t)
    torch.testing.assert_close(gamma**2 + sigma**2, torch.ones_like(t), rtol=0, atol=1e-12)
    assert gamma[0] == 1 and sigma[0] == 0
    assert (gamma.diff() < 0).all() and (sched.lam(t[1:]).diff() < 0).all()


@pytest.mark.parametrize("sched", ALL, ids=IDS)
def test_beta_is_minus_d_log_gamma_squared(sched):
    t = torch.linspace(1e-3, 1, 997, dtype=f64).requires_grad_(True)
    (grad,) = torch.autograd.grad(sched.log_gamma(t).sum(), t)
    torch.testing.assert_close(-2 * grad, sched.beta(t.detach()), rtol=1e-9, atol=0)


@pytest.mark.parametrize("sched", ALL, ids=IDS)
def test_t_of_lambda_inverts_lambda(sched):
    t = torch.linspace(1e-3, 1, 1001, dtype=f64)
    torch.testing.assert_close(sched.t_of_lambda(sched.lam(t)), t, rtol=0, atol=1e-10)


@pytest.mark.parametrize("sched", ALL, ids=IDS)
def test_float32_in_float32_out(sched):
    t = torch.rand(8)
    for fn in (sched.beta, sched.log_gamma, sched.gamma, sched.sigma, sched.lam):
        assert fn(t).dtype == torch.float32 and fn(t).shape == (8,)


def test_python_float_times_are_float64():
    assert VPSDE().gamma(0.5).dtype == f64
    assert VPSDE().gamma(0.5).item() == pytest.approx(0.2811828808, abs=1e-9)


def test_forward_marginal_broadcasts_per_sample_time():
    x0, eps = torch.ones(3, 2, 4, 4), torch.zeros(3, 2, 4, 4)
    t = torch.tensor([0.0, 0.5, 1.0])
    x_t = forward_marginal(VPSDE(), x0, t, eps)
    assert x_t.shape == x0.shape
    torch.testing.assert_close(x_t[:, 0, 0, 0], VPSDE().gamma(t))
    assert append_dims(t, 4).shape == (3, 1, 1, 1)


@pytest.mark.parametrize("sched", ALL, ids=IDS)
def test_forward_marginal_empirical_moments(sched):
    gen = torch.Generator().manual_seed(0)
    x0, t, n = 1.5, 0.4, 200_000
    x_t = forward_marginal(sched, torch.full((n, 1), x0, dtype=f64), torch.full((n,), t, dtype=f64),
                           torch.randn(n, 1, generator=gen, dtype=f64))
    gamma, sigma = sched.gamma(t).item(), sched.sigma(t).item()
    assert x_t.mean().item() == pytest.approx(gamma * x0, rel=0.01)
    assert x_t.std().item() == pytest.approx(sigma, rel=0.01)


def test_forward_sde_euler_maruyama_matches_closed_form():
    # the notes' discretisation x <- (1 - 1/2 eta beta) x + N(0, eta beta), run to t = 0.5
    vp, gen = VPSDE(), torch.Generator().manual_seed(1)
    x0, n, steps, t_end = 4.0, 30_000, 200, 0.5  # n < 32768 keeps torch ops single-threaded
    x, eta = torch.full((n,), x0, dtype=f64), t_end / steps
    for i in range(steps):
        beta = vp.beta(torch.tensor(i * eta, dtype=f64))
        x = (1 - 0.5 * eta * beta) * x + torch.sqrt(eta * beta) * torch.randn(n, generator=gen, dtype=f64)
    assert x.mean().item() == pytest.approx(vp.gamma(t_end).item() * x0, rel=0.02)
    assert x.std().item() == pytest.approx(vp.sigma(t_end).item(), rel=0.02)
