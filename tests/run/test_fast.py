"""Fast modes (composer/fast.py): each against eager fp32 on the same batches, within a stated
tolerance; their YAML keys and errors. The one inductor compile is a tiny MLP (a few seconds with
a warm inductor cache, ~15 s cold on a loaded 2-core machine)."""
import copy

import pytest
import torch

from composer import api
from composer.run import fast
from composer.errors import SpecError
from conftest import GRAPHS
from specs import tiny_denoiser

BATCH = 8


def dcgan(*overrides):
    return api.runner(GRAPHS / "dcgan.yaml", [f"train.batch={BATCH}", "train.ema={}", *overrides], cpu=True)


def gan_batches(count, seed=3):
    gen = torch.Generator().manual_seed(seed)
    return [{"real": torch.rand(BATCH, 1, 16, 16, generator=gen) * 2 - 1, "z": torch.randn(BATCH, 32, generator=gen)}
            for _ in range(count)]


def run(runner, batch_list):
    return [{k: float(v) for k, v in runner.step(b).items()} for b in batch_list]


def max_gap(a, b, names=("G", "D")) -> float:
    return max(float((p - q).detach().abs().max()) for n in names
               for p, q in zip(a.raw[n].parameters(), b.raw[n].parameters()))


def test_channels_last_gives_nhwc_weights_and_the_eager_result_within_1e_5():
    eager, nhwc = dcgan(), dcgan("train.channels_last=true")
    conv = next(m for m in nhwc.raw["D"].modules() if isinstance(m, torch.nn.Conv2d))
    assert conv.weight.is_contiguous(memory_format=torch.channels_last)
    batch_list = gan_batches(3)
    for logs, ref in zip(run(nhwc, batch_list), run(eager, batch_list)):
        assert logs == pytest.approx(ref, rel=1e-5, abs=1e-6)
    assert max_gap(eager, nhwc) < 1e-5      # three Adam steps of lr 2e-4: moves ~6e-4


@pytest.mark.parametrize("flag", ["foreach", "fused"])
def test_foreach_and_fused_adam_equal_the_loop_within_1e_6(flag):
    eager = dcgan()
    other = dcgan(f"optimizers.D.{flag}=true", f"optimizers.G.{flag}=true")
    assert other.optimizers["D"].defaults[flag] is True
    batch_list = gan_batches(3)
    run(eager, batch_list), run(other, batch_list)
    assert max_gap(eager, other) < 1e-6


def test_bf16_autocast_stays_within_2_percent_of_fp32_losses():
    """bf16 keeps 8 bits of mantissa (~0.4% per rounding): the losses of the first steps agree to
    2%. Adam with the graph's betas (0, 0.99) moves a weight by at most 1 lr at step 1, then by
    |g2| / sqrt(v2_hat) <= sqrt(0.0199 / 0.01) = 1.41 lr at step 2 (v2_hat >= 0.01 g2^2 / 0.0199):
    where bf16 flips a gradient's sign the runs part by up to 2 (1 + 1.41) = 4.82 lr after two
    steps, and no further."""
    eager, bf16 = dcgan(), dcgan("train.precision=bf16")
    batch_list = gan_batches(2)
    for logs, ref in zip(run(bf16, batch_list), run(eager, batch_list)):
        assert logs == pytest.approx(ref, rel=2e-2, abs=2e-3)
    assert max_gap(eager, bf16) <= 2 * (1 + (0.0199 / 0.01) ** 0.5) * 2e-4


@pytest.mark.slow
def test_compiled_modules_equal_eager_within_1e_5():
    eager = api.runner(api.from_dict(tiny_denoiser()), cpu=True)
    compiled = api.runner(api.from_dict(tiny_denoiser(compile=True)), cpu=True)
    assert isinstance(compiled.raw["eps_net"].forward, fast.CompiledForward)
    for _ in range(3):
        ref, logs = eager.step(), compiled.step()
        assert float(logs["dsm.loss"]) == pytest.approx(float(ref["dsm.loss"]), rel=1e-5)
    assert max_gap(eager, compiled, ("eps_net",)) < 1e-5
    assert compiled.compiled["eps_net"].signatures == 1 and not eager.compiled
    assert list(compiled.raw["eps_net"].state_dict()) == list(eager.raw["eps_net"].state_dict())


@pytest.mark.slow
def test_compiled_dcgan_with_r1_trains_bit_identically_through_dynamo_and_aot_autograd():
    """The same graph capture and autograd split as inductor, without its code generation (the
    `aot_eager` backend, seconds instead of ~25 s cold): R1's double backward runs eager, the
    other calls compiled; D meets two signatures (fakes with and without their gradient path)."""
    eager, compiled = dcgan(), dcgan("train.compile={backend: aot_eager}")
    batch_list = gan_batches(2)
    assert run(compiled, batch_list) == run(eager, batch_list)
    assert max_gap(eager, compiled) == 0
    assert (compiled.compiled["G"].signatures, compiled.compiled["D"].signatures) == (1, 2)


def test_compiled_forward_runs_eager_without_autograd_and_for_gradient_penalties():
    """AOTAutograd has no double backward: R1's `x.requires_grad_()` leaf input goes eager."""
    net = torch.nn.Linear(2, 1)
    forward = fast.compile_module(net, {})
    used = []
    forward.compiled = lambda *a: used.append("compiled") or forward.eager(*a)
    x = torch.randn(4, 2)
    net(x)
    with torch.no_grad():
        net(x)
    net(x.clone().requires_grad_(True))
    net(x.clone().requires_grad_(True) * 2)   # not a leaf: a generator's output, compiled
    assert used == ["compiled", "compiled"]


@pytest.mark.parametrize("value, message", [
    ("{mode: fastest}", "train.compile.mode: unknown compile mode 'fastest'"),
    ("{modes: default}", "train.compile.modes: unknown key 'modes' \\(did you mean 'mode'\\?\\)"),
    ("3", "train.compile: expected a mapping \\(true, false, phase or torch.compile options such as mode\\), got int"),
    ("{fullgraph: 1}", "train.compile.fullgraph: expected true or false, got 1"),
    ("{backend: 2}", "train.compile.backend: expected a backend name, got 2"),
    ("phas", "train.compile: unknown compile scope 'phas' \\(did you mean 'phase'\\?\\)"),
    ("{scope: graph}", "train.compile.scope: unknown compile scope 'graph' \\(expected one of: module, phase\\)"),
])
def test_bad_compile_options_are_spec_errors_at_their_key(value, message):
    with pytest.raises(SpecError, match=message):
        api.plan(GRAPHS / "dcgan.yaml", [f"train.compile={value}"])


def test_compile_and_channels_last_keys_parse():
    spec = api.plan(GRAPHS / "dcgan.yaml", ["train.compile={mode: max-autotune-no-cudagraphs}",
                                            "train.channels_last=true"]).spec
    assert spec.train.compile == {"mode": "max-autotune-no-cudagraphs"} and spec.train.channels_last is True
    assert fast.compile_options(spec.train.compile) == {"mode": "max-autotune-no-cudagraphs"}
    assert fast.compile_options(None) is None and fast.compile_options(False) is None
    assert fast.compile_options(True) == {}
    with pytest.raises(SpecError, match="train.channels_last: expected bool, got 'yes'"):
        api.plan(GRAPHS / "dcgan.yaml", ["train.channels_last='yes'"])


def test_channels_last_leaves_modules_without_convolutions_alone():
    mlp = torch.nn.Sequential(torch.nn.Linear(2, 2))
    assert fast.to_channels_last(mlp) is False
    conv = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.Linear(2, 2))
    assert fast.to_channels_last(copy.deepcopy(conv)) is True


def test_optimizers_are_plain_torch_optimizers_not_accelerate_wrappers():
    """Accelerate's optimizer wrapper (accumulation, its fp16 scaler, XLA: unused here) cost
    ~0.3 ms per step; the Runner steps torch's optimizers on the prepared modules' parameters."""
    runner = dcgan()
    for name, optimizer in runner.optimizers.items():
        assert type(optimizer).__module__.startswith("torch.optim")
        params = next(o.params for o in runner.spec.optimizers if o.name == name)
        trained = {id(p) for m in params for p in runner.modules[m].parameters()}
        assert {id(p) for group in optimizer.param_groups for p in group["params"]} == trained
