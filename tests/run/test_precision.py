"""fp16: one gradient scaler per phase, penalties on unscaled gradients, overflow skips, resume.

The CPU has fp16 autocast and `torch.amp.GradScaler("cpu")`, so composer's own fp16 path
(composer/precision.py) runs here exactly as on a GPU; what the CPU cannot show is fp16's speed
and CUDA's fp16 kernels (their rounding differs from the CPU's).
"""
import copy

import pytest
import torch
import torch.nn.functional as F

from composer import api
from composer.run import checkpoint
from composer.run.runner import NonFiniteLoss
from specs import small_2d_gan

STEPS = 6
FP16 = ["train.precision=fp16", "train.batch=16"]


def _inputs(steps=STEPS, batch=16):
    gen = torch.Generator().manual_seed(5)
    return [(torch.randn(batch, 2, generator=gen), torch.randn(batch, 4, generator=gen)) for _ in range(steps)]


def _r1(logits, x, scale):
    """AMP's gradient-penalty recipe: differentiate the scaled output, unscale the gradient (the
    output D(x) of the loss term, `x` given to D with its gradient enabled)."""
    (grad,) = torch.autograd.grad(logits.sum() * scale, x, create_graph=True)
    return 0.5 * (grad.float() / scale).pow(2).sum(1).mean()


def hand_written_fp16(G, D, inputs, gamma):
    """The loop a careful user writes: autocast fp16, one GradScaler per optimizer, each
    updated after its own step, the penalty taken at D's current scale."""
    opt_D, opt_G = (torch.optim.Adam(m.parameters(), lr=1e-3) for m in (D, G))
    scale_D, scale_G = torch.amp.GradScaler("cpu"), torch.amp.GradScaler("cpu")
    for real, z in inputs:
        with torch.autocast("cpu", dtype=torch.float16):
            x = real.detach().requires_grad_(True)
            real_logits = D(x)
            fake = G(z)
            loss_D = (F.softplus(-real_logits.squeeze(1).float()).mean() + F.softplus(D(fake.detach()).squeeze(1).float()).mean()
                      + gamma * _r1(real_logits, x, scale_D.get_scale()))
        if torch.isfinite(loss_D):
            opt_D.zero_grad()
            scale_D.scale(loss_D).backward()
            scale_D.step(opt_D)
            scale_D.update()
        else:   # the penalty overflowed at this scale: halve it, skip the step
            scale_D.scale(torch.zeros(()))
            scale_D.update(scale_D.get_scale() * 0.5)
        with torch.autocast("cpu", dtype=torch.float16):
            loss_G = F.softplus(-D(fake).squeeze(1).float()).mean()
        opt_G.zero_grad()
        scale_G.scale(loss_G).backward()
        scale_G.step(opt_G)
        scale_G.update()
    return scale_D.get_scale(), scale_G.get_scale()


def test_fp16_with_a_penalty_equals_a_hand_written_loop_with_a_scaler_per_optimizer():
    runner = api.runner(api.from_dict(small_2d_gan(penalty="r1", penalty_weight=1.0), FP16), cpu=True)
    G, D = copy.deepcopy(runner.raw["G"]), copy.deepcopy(runner.raw["D"])
    inputs = _inputs()
    for real, z in inputs:
        runner.step({"real": real, "z": z})
    scales = hand_written_fp16(G, D, inputs, gamma=1.0)
    for name, hand in (("G", G), ("D", D)):
        for key, value in hand.state_dict().items():
            torch.testing.assert_close(runner.raw[name].state_dict()[key], value, rtol=0, atol=1e-6)
    assert (runner.precision.grad_scale("D"), runner.precision.grad_scale("G")) == scales
    assert runner.accelerator.mixed_precision == "no"   # Accelerate's single scaler stays out


def test_each_phase_keeps_its_own_scale():
    """R1's gradient at 65536 overflows fp16 in D's phase: D's scale backs off, G's does not."""
    runner = api.runner(api.from_dict(small_2d_gan(penalty="r1", penalty_weight=1.0), FP16), cpu=True)
    D_before = copy.deepcopy(runner.raw["D"].state_dict())
    real, z = _inputs(1)[0]
    runner.step({"real": real, "z": z})
    assert runner.precision.grad_scale("D") < 65536.0 == runner.precision.grad_scale("G")
    assert all(torch.equal(v, runner.raw["D"].state_dict()[k]) for k, v in D_before.items())   # skipped


def test_the_penalty_sees_unscaled_gradients():
    from recipes.penalties import _grad_sq_norm

    D = torch.nn.Sequential(torch.nn.Linear(2, 8), torch.nn.Tanh(), torch.nn.Linear(8, 1))
    x = torch.randn(16, 2, generator=torch.Generator().manual_seed(0))
    def norm(critic, scale=1.0):
        v = x.detach().requires_grad_(True)
        return _grad_sq_norm(critic(v), [v], scale)

    plain = norm(D)
    torch.testing.assert_close(norm(D, 1024.0), plain, rtol=1e-6, atol=0)
    with torch.autocast("cpu", dtype=torch.float16):
        tiny = norm(lambda v: D(v) * 1e-4, 1.0)      # fp16 gradients of ~1e-5 ...
        kept = norm(lambda v: D(v) * 1e-4, 4096.0)   # ... scaled up before they underflow
    exact = plain * 1e-8
    assert (kept - exact).abs().max() / exact.max() < 0.02
    assert (tiny - exact).abs().max() / exact.max() > (kept - exact).abs().max() / exact.max()


def test_a_nan_that_no_scale_fixes_still_stops_training_before_any_step():
    runner = api.runner(api.from_dict(small_2d_gan(), FP16), cpu=True)
    before = copy.deepcopy(runner.raw["D"].state_dict())
    real, z = _inputs(1)[0]
    real[0, 0] = float("nan")
    with pytest.raises(NonFiniteLoss, match=r"non-finite loss in phase D \(optimizer D\) at step 16: term gan.D_real=nan"):
        for _ in range(40):
            runner.step({"real": real, "z": z})
    assert runner.precision.grad_scale("D") == 1.0      # 65536 halved 16 times, then the stop
    assert all(torch.equal(v, runner.raw["D"].state_dict()[k]) for k, v in before.items())


def test_fp16_resume_restores_each_phase_scale_bit_exactly(tmp_path):
    spec = api.from_dict(small_2d_gan(penalty="r1", penalty_weight=1.0), FP16)
    inputs = _inputs()
    straight = api.runner(spec, cpu=True)
    for real, z in inputs:
        straight.step({"real": real, "z": z})
    first = api.runner(spec, cpu=True)
    for real, z in inputs[:3]:
        first.step({"real": real, "z": z})
    checkpoint.save(first, tmp_path / "step_000003")
    resumed = api.runner(spec, cpu=True)
    checkpoint.load(resumed, tmp_path / "step_000003")
    assert resumed.precision.state_dict() == first.precision.state_dict()
    for real, z in inputs[3:]:
        resumed.step({"real": real, "z": z})
    for key, value in checkpoint.module_tensors(straight).items():
        assert torch.equal(checkpoint.module_tensors(resumed)[key], value), key
    assert resumed.precision.state_dict() == straight.precision.state_dict()
