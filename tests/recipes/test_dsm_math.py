import pytest
import torch

from composer.recipes.dsm import TARGETS, WEIGHTINGS, as_eps_model, dsm_loss, dsm_target, sample_time, to_eps
from composer.recipes.samplers import sample_dpmpp_2m, time_grid
from composer.recipes.schedules import Cosine, DDPMLinear, VPSDE, forward_marginal

f64 = torch.float64
VP = VPSDE()


def batch(seed=0, shape=(64, 3, 4, 4), schedule=VP):
    gen = torch.Generator().manual_seed(seed)
    x0 = torch.randn(shape, generator=gen, dtype=f64)
    eps = torch.randn(shape, generator=gen, dtype=f64)
    t = sample_time(shape[0], generator=gen, dtype=f64)
    return x0, eps, t, forward_marginal(schedule, x0, t, eps)


def test_sample_time_range_and_reproducibility():
    t = sample_time(10_000, t_eps=0.2, t_max=0.7, generator=torch.Generator().manual_seed(0))
    assert t.shape == (10_000,) and t.min() >= 0.2 and t.max() <= 0.7
    assert t.mean().item() == pytest.approx(0.45, abs=0.01)
    again = sample_time(10_000, t_eps=0.2, t_max=0.7, generator=torch.Generator().manual_seed(0))
    assert torch.equal(t, again)


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("weighting", list(WEIGHTINGS))
def test_exact_prediction_has_zero_loss(target, weighting):
    x0, eps, t, x_t = batch()
    exact = dsm_target(x0, eps, t, VP, target)
    loss = dsm_loss(exact, x0=x0, eps=eps, x_t=x_t, t=t, schedule=VP, target=target, weighting=weighting)
    assert loss.shape == (64,) and torch.equal(loss, torch.zeros_like(loss))


@pytest.mark.parametrize("schedule", [VP, DDPMLinear(), Cosine()], ids=["vp", "ddpm_linear", "cosine"])
@pytest.mark.parametrize("target", TARGETS)
def test_to_eps_round_trips_every_target(schedule, target):
    x0, eps, t, x_t = batch(schedule=schedule)
    torch.testing.assert_close(to_eps(dsm_target(x0, eps, t, schedule, target), x_t, t, schedule, target), eps)


def test_v_target_is_salimans_ho():
    x0, eps, t, x_t = batch()
    gamma, sigma = VP.gamma(t)[:, None, None, None], VP.sigma(t)[:, None, None, None]
    v = dsm_target(x0, eps, t, VP, "v")
    torch.testing.assert_close(v, gamma * eps - sigma * x0)
    torch.testing.assert_close(gamma * x_t - sigma * v, x0)  # x0 = gamma x_t - sigma v


def test_sigma2_with_eps_target_is_plain_mse():
    x0, eps, t, x_t = batch()
    eps_hat = eps + 0.3 * torch.randn(eps.shape, generator=torch.Generator().manual_seed(5), dtype=f64)
    expected = ((eps_hat - eps) ** 2).mean(dim=(1, 2, 3))
    for weighting in ("sigma2", "none"):
        loss = dsm_loss(eps_hat, x0=x0, eps=eps, x_t=x_t, t=t, schedule=VP, weighting=weighting)
        torch.testing.assert_close(loss, expected)


def test_none_is_plain_mse_in_the_targets_own_space():
    x0, eps, t, x_t = batch()
    for target in TARGETS:
        pred = dsm_target(x0, eps, t, VP, target) + 0.1
        loss = dsm_loss(pred, x0=x0, eps=eps, t=t, schedule=VP, target=target, weighting="none")
        torch.testing.assert_close(loss, torch.full_like(loss, 0.01))


@pytest.mark.parametrize("weighting", [name for name in WEIGHTINGS if name != "none"])
def test_weightings_mean_the_same_objective_for_every_target(weighting):
    # the same eps_hat expressed as an eps, x0 or v prediction gets the same loss ("none" excepted)
    x0, eps, t, x_t = batch()
    eps_hat = eps + 0.3 * torch.randn(eps.shape, generator=torch.Generator().manual_seed(6), dtype=f64)
    gamma, sigma = VP.gamma(t)[:, None, None, None], VP.sigma(t)[:, None, None, None]
    as_target = {"eps": eps_hat, "x0": (x_t - sigma * eps_hat) / gamma, "v": (eps_hat - sigma * x_t) / gamma}
    losses = {target: dsm_loss(pred, x0=x0, eps=eps, t=t, schedule=VP, target=target, weighting=weighting)
              for target, pred in as_target.items()}
    torch.testing.assert_close(losses["x0"], losses["eps"])
    torch.testing.assert_close(losses["v"], losses["eps"])


def test_weighting_values_against_the_table():
    x0, eps, t, x_t = batch()
    eps_hat = eps + 0.3
    mse = ((eps_hat - eps) ** 2).mean(dim=(1, 2, 3))
    gamma, sigma = VP.gamma(t), VP.sigma(t)
    snr = gamma**2 / sigma**2
    loss = lambda w: dsm_loss(eps_hat, x0=x0, eps=eps, t=t, schedule=VP, weighting=w)
    torch.testing.assert_close(loss("score"), mse / sigma**2)  # the notes' lambda_t = 1
    torch.testing.assert_close(loss("min_snr"), torch.minimum(snr, torch.full_like(snr, 5.0)) / snr * mse)
    torch.testing.assert_close(loss("snr_trunc"), torch.maximum(snr, torch.ones_like(snr)) / snr * mse)
    torch.testing.assert_close(loss("snr_plus_one"), mse / gamma**2)  # = ||v_hat - v||^2


def test_unknown_names_are_rejected():
    x0, eps, t, x_t = batch()
    with pytest.raises(ValueError, match=r"unknown target 'epsilon'; allowed: eps, v, x0 \(did you mean 'eps'\?\)"):
        dsm_loss(eps, x0=x0, eps=eps, t=t, schedule=VP, target="epsilon")
    with pytest.raises(ValueError, match=r"unknown weighting 'min-snr'; allowed: .*\(did you mean 'min_snr'\?\)"):
        dsm_loss(eps, x0=x0, eps=eps, t=t, schedule=VP, weighting="min-snr")
    with pytest.raises(ValueError, match=r"unknown target 'score'"):
        to_eps(eps, x_t, t, VP, "score")


@pytest.mark.parametrize("target", TARGETS)
def test_samplers_serve_every_parametrisation(target):
    # an exact x0- or v-network wrapped by as_eps_model samples like the exact eps-network
    mu, s = torch.tensor([1.0, -2.0], dtype=f64), 0.5

    def exact_eps(x, t):
        gamma, sigma = VP.gamma(t)[:, None], VP.sigma(t)[:, None]
        return sigma * (x - gamma * mu) / (gamma**2 * s**2 + sigma**2)

    def net(x, t):
        gamma, sigma = VP.gamma(t)[:, None], VP.sigma(t)[:, None]
        eps_hat = exact_eps(x, t)
        x0_hat = (x - sigma * eps_hat) / gamma
        return {"eps": eps_hat, "x0": x0_hat, "v": gamma * eps_hat - sigma * x0_hat}[target]

    x = torch.randn(256, 2, generator=torch.Generator().manual_seed(0), dtype=f64)
    ts = time_grid(10, spacing="logsnr", schedule=VP)
    torch.testing.assert_close(sample_dpmpp_2m(as_eps_model(net, VP, target), x, ts, VP),
                               sample_dpmpp_2m(exact_eps, x, ts, VP))
