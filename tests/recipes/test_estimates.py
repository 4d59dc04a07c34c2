"""The denoising and flow-matching recipes expose x0_hat, eps_hat and v_hat whatever the network
predicts: the conversions are exact on true predictions, and other objectives read the nodes."""
import itertools

import pytest
import torch

from composer import api
from composer.errors import SpecError
from composer.recipes.dsm import TARGETS, dsm_target, estimate
from composer.recipes.flow_matching import Estimate as VelocityEstimate
from composer.recipes.schedules import SCHEDULES, forward_marginal
from specs import tiny_denoiser


@pytest.mark.parametrize("target, want", list(itertools.product(TARGETS, TARGETS)))
def test_each_estimate_is_exact_on_the_true_prediction(target, want):
    g = torch.Generator().manual_seed(0)
    x0, eps = torch.randn(5, 3, generator=g, dtype=torch.float64), torch.randn(5, 3, generator=g, dtype=torch.float64)
    t = torch.tensor([0.05, 0.2, 0.5, 0.8, 0.95], dtype=torch.float64)
    schedule = SCHEDULES["vp"]()
    x_t = forward_marginal(schedule, x0, t, eps)
    truth = {w: dsm_target(x0, eps, t, schedule, w) for w in TARGETS}
    got = estimate(truth[target], x_t, t, schedule, target, want)
    torch.testing.assert_close(got, truth[want])


def test_an_unknown_estimate_names_the_choices():
    x = torch.zeros(2, 3)
    with pytest.raises(ValueError, match=r"unknown estimate 'x_0'; allowed: eps, v, x0 \(did you mean 'x0'\?\)"):
        estimate(x, x, torch.full((2,), 0.5), SCHEDULES["vp"](), "eps", "x_0")


def test_the_velocity_estimates_invert_the_straight_path():
    x0, eps, t = torch.randn(4, 2), torch.randn(4, 2), torch.tensor([0.1, 0.3, 0.6, 0.9])
    x_t = (1 - t[:, None]) * x0 + t[:, None] * eps
    v = eps - x0
    torch.testing.assert_close(VelocityEstimate("x0")(None, v, x_t, t), x0)
    torch.testing.assert_close(VelocityEstimate("eps")(None, v, x_t, t), eps)
    assert VelocityEstimate("v")(None, v, x_t, t) is v


@pytest.mark.parametrize("recipe, target", [("denoising", "eps"), ("denoising", "v"), ("flow_matching", None)])
def test_another_objective_reads_x0_hat_and_only_then_is_it_computed(recipe, target):
    data = tiny_denoiser()
    data["objectives"]["dsm"] = {"recipe": recipe, "data": "x0", "model": "eps_net",
                                 **({"target": target} if target else {})}
    plan = api.plan(api.from_dict(data))
    assert "dsm.x0_hat" not in plan.phases[0].needed and plan.graph.shapes["dsm.x0_hat"] == (2,)
    data["objectives"]["x0_rec"] = {"recipe": "reconstruction", "prediction": "dsm.x0_hat", "target": "x0",
                                    "weight": 0.1}
    plan = api.plan(api.from_dict(data))
    assert {"dsm.x0_hat", "dsm.pred"} <= set(plan.phases[0].needed)
    assert plan.graph.term_trains(plan.graph.nodes["x0_rec.loss"]) == ("eps_net",)
    logs = api.runner(plan, cpu=True).step()
    assert set(logs) == {"dsm.loss", "x0_rec.loss"} and all(torch.isfinite(v) for v in logs.values())


def test_a_misspelt_estimate_is_named_with_the_nearest():
    data = tiny_denoiser()
    data["objectives"]["x0_rec"] = {"recipe": "reconstruction", "prediction": "dsm.x0hat", "target": "x0"}
    with pytest.raises(SpecError, match=r"objectives.x0_rec: 'dsm.x0hat' is not an input, input field, flow tensor or "
                                        r"objective output \(did you mean 'dsm.x0_hat'\?\)"):
        api.validate(api.from_dict(data))
