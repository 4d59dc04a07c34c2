"""Export of spectrally normalised modules: W / sigma folded into plain weights, for ONNX (which has no
`vdot` for torch's parametrization), TorchScript and the module file; the run's own modules untouched."""
import pytest
import torch

from composer import api
from composer.graph.spectral import is_spectral
from specs import small_dcgan


@pytest.fixture(scope="module")
def runner():
    data = small_dcgan(ema={"G": 0.9})
    data["modules"]["D"].update(norm="none", spectral_norm=True)
    data["modules"]["G"]["spectral_norm"] = True
    runner = api.runner(api.from_dict(data), cpu=True)
    runner.step()
    return runner


@pytest.mark.parametrize("format, module", [("onnx", None), ("onnx", "D"), ("torchscript", None)])
def test_a_spectrally_normalised_graph_exports_and_checks(runner, tmp_path, format, module):
    if format == "onnx":
        pytest.importorskip("onnx")
    files = api.export(runner, format, tmp_path / f"m.{format}", module=module)   # checked against composer
    assert files[0].is_file()
    assert is_spectral(runner.raw["D"]) and is_spectral(runner.ema["G"])
    before = runner.raw["D"].state_dict()["net.0.parametrizations.weight.0._u"].clone()
    runner.raw["D"](torch.randn(2, 1, 8, 8))                   # still a working SN module
    assert not torch.equal(before, runner.raw["D"].state_dict()["net.0.parametrizations.weight.0._u"])
