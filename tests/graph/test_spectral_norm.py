"""`spectral_norm: true` on a module (composer/graph/spectral.py): parsed, applied to every weight
layer, counted once, checkpointed with its power-iteration state and built on the meta device."""
import copy

import pytest
import torch
from torch import nn

from composer import api
from composer.blocks import BLOCKS
from composer.errors import SpecError
from composer.graph.view import format_table
from composer.graph.spectral import apply_spectral_norm, folded_state_dict, is_spectral
from composer.run import checkpoint
from conftest import check_signal_resume
from specs import small_dcgan


def sn_dcgan(**train):
    data = small_dcgan(**train)
    data["modules"]["D"].update(norm="none", spectral_norm=True)
    data["objectives"]["gan"].update(loss="hinge")
    return api.from_dict(data)


def test_every_weight_layer_of_the_module_is_normalised_the_last_included():
    runner = api.runner(sn_dcgan(), cpu=True)
    D, G = runner.raw["D"], runner.raw["G"]
    convs = [m for m in D.modules() if isinstance(m, nn.Conv2d)]
    assert len(convs) == 2 and all(hasattr(m, "parametrizations") for m in convs)
    keys = set(D.state_dict())
    assert {"net.2.parametrizations.weight.0._u", "net.2.parametrizations.weight.0._v",
            "net.2.parametrizations.weight.original"} <= keys   # the final conv, as Miyato et al.
    assert not is_spectral(G)


def test_the_normalised_weight_has_spectral_norm_one():
    torch.manual_seed(0)
    layer = apply_spectral_norm(nn.Linear(6, 4))
    for _ in range(30):       # power iterations, one per training call
        layer(torch.zeros(1, 6))
    sigma = torch.linalg.matrix_norm(layer.weight.detach(), ord=2)
    assert sigma.item() == pytest.approx(1.0, abs=1e-4)


def test_a_block_without_weights_is_refused_at_its_entry():
    data = small_dcgan()
    data["modules"]["A"] = {"block": "ReLU", "spectral_norm": True}
    data = api.from_dict(data)
    with pytest.raises(SpecError, match=r"modules.A: cannot build block: spectral_norm: ReLU has no Conv, "
                                        r"ConvTranspose, Linear or Embedding weight to normalise"):
        api.plan(data)


def test_spectral_norm_must_be_a_boolean():
    data = small_dcgan()
    data["modules"]["D"]["spectral_norm"] = "yes"
    with pytest.raises(SpecError, match=r"modules.D.spectral_norm: expected true or false, got 'yes'"):
        api.from_dict(data)


def test_plan_on_the_meta_device_counts_parameters_once_and_says_so():
    plan = api.plan(sn_dcgan())
    data = small_dcgan()
    data["modules"]["D"].update(norm="none")
    plain = api.plan(api.from_dict(data))
    assert plan.graph.param_counts == plain.graph.param_counts      # u, v are buffers
    assert "\nspectral norm: D (every Conv" in format_table(plan)
    assert "spectral norm" not in format_table(plain)


def test_the_ema_copy_carries_the_parametrization_and_its_state():
    data = sn_dcgan(ema={"D": 0.5})
    runner = api.runner(data, cpu=True)
    runner.step()
    tensors = checkpoint.module_tensors(runner)
    u = "D.net.0.parametrizations.weight.0._u"
    assert {k for k in tensors if k.startswith("ema.D.")} == {"ema." + k for k in tensors if k.startswith("D.")}
    # the copy takes D's buffers after D's phase; G's phase then runs D once more (one more iteration)
    assert torch.linalg.vector_norm(tensors["ema." + u]).item() == pytest.approx(1.0, abs=1e-5)
    raw = tensors["D.net.0.parametrizations.weight.original"]
    assert not torch.equal(raw, tensors["ema.D.net.0.parametrizations.weight.original"])


def test_the_folded_state_loads_into_the_plain_block_with_the_same_output():
    runner = api.runner(sn_dcgan(), cpu=True)
    runner.step()
    D = runner.raw["D"]
    before = copy.deepcopy(D.state_dict())
    plain = BLOCKS["DCGANDiscriminator"](image_size=8, channels=1, width=8, norm="none")
    plain.load_state_dict(folded_state_dict(D))          # strict: exactly the plain block's keys
    assert all(torch.equal(v, D.state_dict()[k]) for k, v in before.items()) and D.training
    x = torch.randn(3, 1, 8, 8)
    assert torch.allclose(plain(x), D.eval()(x), atol=1e-6)


@pytest.mark.slow
def test_kill_and_resume_is_bitwise_with_the_power_iteration_state(tmp_path):
    data = sn_dcgan(steps=4, checkpoint_every=100, log_every=100, sample_every=100)
    straight, resumed = check_signal_resume(data, tmp_path / "run", 4)
    key = "D.net.0.parametrizations.weight.0._u"
    assert torch.equal(checkpoint.module_tensors(straight)[key], checkpoint.module_tensors(resumed)[key])


def test_an_exported_module_is_the_plain_block_with_folded_weights(tmp_path):
    runner = api.runner(sn_dcgan(), cpu=True)
    runner.step()
    api.export(runner, "safetensors", tmp_path / "D.safetensors", module="D")
    loaded = api.load_module(tmp_path / "D.safetensors")
    x = torch.randn(3, 1, 8, 8)
    assert not is_spectral(loaded)
    assert torch.allclose(loaded(x), runner.raw["D"].eval()(x), atol=1e-6)
