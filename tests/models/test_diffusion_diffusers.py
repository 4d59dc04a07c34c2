"""graphs/diffusion_diffusers.yaml: a CPU smoke run (validate, 3 training steps, `composer export
--format diffusers`, the pipeline loaded and sampled by diffusers in a Python without composer), and
its DSM steps against a hand-written PyTorch loop on the same diffusers UNet2DModel.

The hand-written loop: the U-Net built with the run's seed (the same initial weights), the same
digits batches, times and noise; x_t = gamma_t x0 + sigma_t eps in closed form (VP-SDE, beta 0.1 ->
20); eps_theta(x_t, 1000 t - 1) (the bridge's timestep with `timestep_shift: -1`); MSE to eps; the
graph's gradient clipping (1.0) and warm-up learning rate (1e-3 (k + 1) / 200 at step k); Adam. On
one CPU thread the two agree bitwise.
"""
import subprocess
import sys

import pytest
import torch

from composer import api
from composer.tools.cli import main
from conftest import GRAPHS

diffusers = pytest.importorskip("diffusers")

GRAPH = GRAPHS / "diffusion_diffusers.yaml"
SMALL = ["modules.eps_net.block_out_channels=[8,16]", "modules.eps_net.norm_num_groups=4",
         "modules.eps_net.attention_head_dim=8"]
TINY = SMALL + ["train.steps=3", "train.batch=8", "train.log_every=1", "train.sample_every=0",
                "train.checkpoint_every=3", "sample.n=4", "sample.steps=5", "eval.metrics={}"]
BATCH, BETA_MIN, BETA_MAX = 8, 0.1, 20.0

SAMPLE_OUTSIDE = """
import sys, torch
from diffusers import DDPMPipeline
pipe = DDPMPipeline.from_pretrained(sys.argv[1])
pipe.set_progress_bar_config(disable=True)
images = pipe(batch_size=3, generator=torch.Generator().manual_seed(0), num_inference_steps=5, output_type="np").images
assert images.shape == (3, 8, 8, 1) and 0 <= images.min() and images.max() <= 1, images.shape
assert not any(m == "composer" or m.startswith("composer.") for m in sys.modules)
print(type(pipe.scheduler).__name__, pipe.scheduler.config.prediction_type, pipe.scheduler.config.timestep_spacing)
"""


def test_smoke_validate_train_export_and_sample_in_diffusers(tmp_path, capsys):
    assert main(["validate", str(GRAPH)]) == 0
    results = api.train(GRAPH, tmp_path / "run", TINY, quiet=True)
    assert results["step"] == 3
    capsys.readouterr()
    assert main(["export", str(tmp_path / "run"), "--format", "diffusers", "-o", str(tmp_path / "pipe")]) == 0
    assert "composer.json" in capsys.readouterr().out
    done = subprocess.run([sys.executable, "-c", SAMPLE_OUTSIDE, str(tmp_path / "pipe")], check=True,
                          capture_output=True, text=True)
    assert done.stdout.split() == ["DDPMScheduler", "epsilon", "trailing"]   # the graph samples with ddpm


def hand_written_dsm_step(net, optimizer, x0, t, eps, k):
    log_gamma = -0.5 * (BETA_MIN * t + 0.5 * (BETA_MAX - BETA_MIN) * t**2)
    gamma = log_gamma.exp()[:, None, None, None]
    sigma = torch.sqrt(-torch.expm1(2 * log_gamma))[:, None, None, None]
    x_t = gamma * x0 + sigma * eps
    loss = (net(x_t, t * 1000.0 + -1.0).sample - eps).pow(2).flatten(1).mean(1).mean()
    optimizer.zero_grad()
    loss.backward()
    torch.nn.utils.clip_grad_norm_(list(net.parameters()), 1.0)
    for group in optimizer.param_groups:
        group["lr"] = 1e-3 * ((k + 1) / 200)
    optimizer.step()
    return loss.item()


def test_dsm_steps_equal_a_hand_written_loop_on_the_same_diffusers_unet():
    runner = api.runner(GRAPH, SMALL, cpu=True)
    config = {k: v for k, v in runner.spec.modules[0].args.items() if not k.startswith("timestep_")}
    torch.manual_seed(runner.spec.train.seed)          # the runner builds its modules after this seed
    net = diffusers.UNet2DModel(**config)
    built = runner.raw["eps_net"].model.state_dict()
    assert all(torch.equal(built[k], v) for k, v in net.state_dict().items())
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-3)
    gen = torch.Generator().manual_seed(5)
    for k in range(2):
        x0 = torch.rand(BATCH, 1, 8, 8, generator=gen) * 2 - 1
        t = 1e-3 + (1 - 1e-3) * torch.rand(BATCH, generator=gen)
        eps = torch.randn(BATCH, 1, 8, 8, generator=gen)
        logs = runner.step({"x0": x0, "dsm.t": t, "dsm.eps": eps})
        assert logs["dsm.loss"] == hand_written_dsm_step(net, optimizer, x0, t, eps, k)
    compiled = runner.raw["eps_net"].model.state_dict()
    for key, value in net.state_dict().items():
        assert torch.equal(compiled[key], value), f"eps_net.{key} differs"
