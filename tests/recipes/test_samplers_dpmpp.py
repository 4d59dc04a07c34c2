"""DPM-Solver++(2M) on a time grid that ends at t = 0, where lambda = +inf (issue 9).

The step into sigma = 0 has h = inf; the second-order extrapolation would take inf - inf. The
sampler takes that step first order (x = gamma_0 x0_hat), as the authors' `lower_order_final`.
"""
import torch

from composer.recipes.samplers import SAMPLERS, time_grid
from composer.recipes.schedules import VPSDE

from tests.recipes.test_samplers import gaussian_eps, start_and_exact

VP = VPSDE()


def test_dpmpp_2m_to_t_zero_is_finite_and_follows_the_flow():
    x1, exact = start_and_exact(VP, t_min=0.0)
    eps_model = gaussian_eps(VP)
    out = SAMPLERS["dpmpp_2m"](eps_model, x1, time_grid(20, t_min=0.0, spacing="quadratic"), VP)
    assert torch.isfinite(out).all()
    assert eps_model.nfe == 20
    assert (out - exact).abs().max().item() < 0.05


def test_dpmpp_2m_last_step_to_zero_is_the_data_prediction():
    """One step from t = 1 to 0 is x0_hat(x_1), like DDIM's."""
    x1, _ = start_and_exact(VP, t_min=0.0)
    ts = time_grid(1, t_min=0.0)
    out = SAMPLERS["dpmpp_2m"](gaussian_eps(VP), x1, ts, VP)
    ddim = SAMPLERS["ddim"](gaussian_eps(VP), x1, ts, VP)
    assert torch.allclose(out, ddim)
