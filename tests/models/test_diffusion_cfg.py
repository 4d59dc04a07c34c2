"""graphs/diffusion_cfg.yaml: one compiled conditional DSM step equals a hand-written one bitwise, the null
label is dropped in as classifier-free guidance training needs (Ho & Salimans 2022), and the file
trains and samples with guidance."""
import copy
import json
import math

import torch
import torch.nn.functional as F

from composer import api
from composer.ops.flow import DropCondition
from conftest import GRAPHS

BATCH = 8
BETA_MIN, BETA_MAX, T_EPS = 0.1, 20.0, 1e-3
TINY = ["train.steps=2", "train.batch=4", "train.log_every=1", "train.sample_every=1",
        "train.checkpoint_every=1", "sample.n=10", "sample.steps=2", "eval.n=20",
        "eval.metrics.class_agreement.n=20"]


def log_gamma(t):
    """VP-SDE: log gamma_t = -1/2 (beta_min t + 1/2 (beta_max - beta_min) t^2)."""
    return -0.5 * (BETA_MIN * t + 0.5 * (BETA_MAX - BETA_MIN) * t**2)


def t_of_logsnr(u):
    """t uniform in half-log-SNR lambda = log(gamma / sigma) between t = 1 and T_EPS, by solving
    log gamma_t = 1/2 log sigmoid(2 lambda) for t (a quadratic in t)."""
    def lam(t):
        lg = log_gamma(torch.tensor(t, dtype=torch.float64))
        return lg - 0.5 * torch.log(-torch.expm1(2 * lg))

    lam_u = lam(1.0) + (lam(T_EPS) - lam(1.0)) * u.double()
    integral = -F.logsigmoid(2 * lam_u)             # -2 log gamma
    t = 2 * integral / (BETA_MIN + torch.sqrt(BETA_MIN**2 + 2 * (BETA_MAX - BETA_MIN) * integral))
    return t.clamp(T_EPS, 1.0).float()


def hand_written_step(net, optimizer, scheduler, x0, y, t, eps, clip=1.0):
    """x_t = gamma_t x0 + sigma_t eps; MSE of eps_theta(x_t, t, y) to eps; clip; Adam; LR warm-up."""
    lg = log_gamma(t)
    gamma = lg.exp()[:, None, None, None]
    sigma = torch.sqrt(-torch.expm1(2 * lg))[:, None, None, None]
    x_t = gamma * x0 + sigma * eps
    loss = (net(x_t, t, y) - eps).pow(2).flatten(1).mean(1).mean()
    optimizer.zero_grad()
    loss.backward()
    torch.nn.utils.clip_grad_norm_(net.parameters(), clip)
    optimizer.step()
    scheduler.step()
    return loss.item()


def test_compiled_conditional_dsm_step_equals_hand_written_step():
    runner = api.runner(GRAPHS / "diffusion_cfg.yaml", [f"train.batch={BATCH}", "train.ema={}"], cpu=True)
    net = copy.deepcopy(runner.raw["eps_net"])
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-3)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: (step + 1) / 200)   # warm-up
    gen = torch.Generator().manual_seed(5)
    for _ in range(2):
        x0 = torch.rand(BATCH, 1, 8, 8, generator=gen) * 2 - 1
        y = torch.randint(10, (BATCH,), generator=gen)
        dropped = torch.where(torch.rand(BATCH, generator=gen) < 0.3, torch.full_like(y, -1), y)
        u = torch.rand(BATCH, generator=gen)
        eps = torch.randn(BATCH, 1, 8, 8, generator=gen)
        logs = runner.step({"x0": x0, "x0.y": y, "dsm.u": u, "dsm.eps": eps, "dsm.cond": dropped})
        hand_loss = hand_written_step(net, optimizer, scheduler, x0, dropped, t_of_logsnr(u), eps)
        assert logs["dsm.loss"] == hand_loss
    compiled = runner.raw["eps_net"].state_dict()
    for key, value in net.state_dict().items():
        assert torch.equal(compiled[key], value), f"eps_net.{key} differs"
    assert runner.forward_calls == {"eps_net": 2}


def test_drop_condition_replaces_labels_by_the_null_label():
    class Ctx:
        generator = torch.Generator().manual_seed(0)

    y = torch.arange(10_000) % 10
    out = DropCondition(p=0.1)(Ctx(), y)
    dropped = out == -1
    assert abs(float(dropped.double().mean()) - 0.1) < 0.01
    assert torch.equal(out[~dropped], y[~dropped])


def test_the_null_label_changes_the_prediction():
    """The U-Net embeds -1 with its own row: conditional and unconditional predictions differ."""
    runner = api.runner(GRAPHS / "diffusion_cfg.yaml", cpu=True)
    net = runner.raw["eps_net"].eval()
    with torch.no_grad():                            # zero-initialised output layers hide everything
        for p in net.parameters():
            p.copy_(torch.randn(p.shape, generator=torch.Generator().manual_seed(p.numel())) * 0.1)
    x, t = torch.randn(2, 1, 8, 8), torch.full((2,), 0.5)
    with torch.no_grad():
        assert not torch.allclose(net(x, t, torch.tensor([3, 3])), net(x, t, torch.tensor([-1, -1])))


def test_diffusion_cfg_graph_trains_and_samples_with_guidance(tmp_path):
    results = api.train(GRAPHS / "diffusion_cfg.yaml", tmp_path, TINY, quiet=True)
    assert results["step"] == 2
    assert json.loads((tmp_path / "eval.json").read_text()) == results
    for key in ("class_agreement.agreement@g0", "class_agreement.agreement@g0.25", "class_agreement.frechet@g0",
                "class_agreement.frechet@g0.25", "digits.frechet_distance"):
        assert key in results and math.isfinite(results[key])
