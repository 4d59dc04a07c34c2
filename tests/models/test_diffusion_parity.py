"""Invariant 3 for the denoising recipe: one compiled DSM step equals a hand-written one.

The hand-written step is the course notes' DSM update written out in plain torch: the same t,
noise, data and initial weights; x_t = gamma_t x0 + sigma_t eps in closed form; eps_theta(x_t, t);
mean squared error to eps (lambda_t = sigma_t^2); one Adam step. On one CPU thread the two agree
bitwise (same operation order).
"""
import copy

import torch

from composer import api
from specs import tiny_denoiser

BATCH = 16
BETA_MIN, BETA_MAX = 0.1, 20.0


def hand_written_dsm_step(net, optimizer, x0, t, eps):
    """VP-SDE: log gamma_t = -1/2 (beta_min t + 1/2 (beta_max - beta_min) t^2)."""
    log_gamma = -0.5 * (BETA_MIN * t + 0.5 * (BETA_MAX - BETA_MIN) * t**2)
    gamma = log_gamma.exp()[:, None]
    sigma = torch.sqrt(-torch.expm1(2 * log_gamma))[:, None]
    x_t = gamma * x0 + sigma * eps
    loss = (net(x_t, t) - eps).pow(2).flatten(1).mean(1).mean()
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return loss.item()


def test_compiled_dsm_step_equals_hand_written_step():
    runner = api.runner(api.from_dict(tiny_denoiser(batch=BATCH)), cpu=True)
    net = copy.deepcopy(runner.raw["eps_net"])
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-3)
    gen = torch.Generator().manual_seed(5)
    for _ in range(2):
        x0 = torch.randn(BATCH, 2, generator=gen) * 3
        t = 1e-3 + (1 - 1e-3) * torch.rand(BATCH, generator=gen)
        eps = torch.randn(BATCH, 2, generator=gen)
        logs = runner.step({"x0": x0, "dsm.t": t, "dsm.eps": eps})
        hand_loss = hand_written_dsm_step(net, optimizer, x0, t, eps)
        assert logs["dsm.loss"] == hand_loss
    compiled = runner.raw["eps_net"].state_dict()
    for key, value in net.state_dict().items():
        assert torch.equal(compiled[key], value), f"eps_net.{key} differs"
    assert runner.forward_calls == {"eps_net": 2}
