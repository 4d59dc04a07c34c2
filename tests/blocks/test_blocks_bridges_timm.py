"""timm models as blocks: `{block: timm, model: NAME, ...}`, names and options checked, feature
maps as a tuple, the meta device, and local safetensors weights."""
import pytest
import torch

from composer import api
from composer.blocks import BLOCKS
from composer.errors import SpecError
from conftest import usable

if not usable("timm"):
    pytest.skip("timm does not import here (not installed, or its torchvision does not fit this torch)",
                allow_module_level=True)


def test_a_timm_model_from_its_name_and_options():
    net = BLOCKS["timm"](model="resnet18", in_chans=1, num_classes=0)
    assert net(torch.zeros(2, 1, 32, 32)).shape == (2, 512)
    features = BLOCKS["timm"](model="resnet18", in_chans=1, features_only=True, out_indices=[1, 2])
    out = features(torch.zeros(2, 1, 32, 32))
    assert isinstance(out, tuple) and [o.shape[1] for o in out] == [64, 128]


def test_names_and_options_are_checked_with_did_you_mean():
    with pytest.raises(ValueError, match=r"unknown timm model 'resnet19' \(did you mean 'resnet18'\?\)"):
        BLOCKS["timm"](model="resnet19")
    with pytest.raises(TypeError, match=r"unexpected keyword argument 'in_chan' \(did you mean 'in_chans'\?\)"):
        BLOCKS["timm"](model="resnet18", in_chan=1)


def test_the_block_needs_a_model_and_is_located():
    graph = {"name": "t", "inputs": {"x": {"source": "digits", "size": 8}},
             "modules": {"net": {"block": "timm", "in_chans": 1}}, "flow": {"h": "net(x)"},
             "train": {"steps": 1, "batch": 2}}
    with pytest.raises(SpecError, match=r"modules\.net: block timm needs argument\(s\): model"):
        api.validate(api.from_dict(graph))
    graph["modules"]["net"].update(block="timm.resnet18")
    with pytest.raises(SpecError, match=r"modules\.net\.block: unknown block 'timm\.resnet18' \(a timm "
                       r"model is the block timm with its name under model: \{block: timm, model: resnet18\}\)"):
        api.validate(api.from_dict(graph))


def test_feature_maps_index_in_the_flow(tmp_path):
    from safetensors.torch import save_file

    net = BLOCKS["timm"](model="resnet18", in_chans=1, features_only=True)
    save_file(net.model.state_dict(), tmp_path / "trunk.safetensors")
    graph = {"name": "features", "inputs": {"x": {"source": "digits", "size": 8}},
             "modules": {"net": {"block": "timm", "model": "resnet18", "in_chans": 1, "features_only": True,
                                 "pretrained": str(tmp_path / "trunk.safetensors")}},
             "flow": {"h": "net(x)", "f": "h[1]"}, "train": {"steps": 1, "batch": 2}}
    from composer.graph.build import build

    assert build(api.from_dict(graph)).shapes["f"] == (64, 2, 2)


def test_builds_and_runs_on_the_meta_device():
    with torch.device("meta"):
        net = BLOCKS["timm"](model="resnet18", in_chans=1, num_classes=0)
        out = net(torch.zeros(2, 1, 32, 32))
    assert net.meta_shapes and out.is_meta and out.shape == (2, 512)


def test_local_weights_load_and_a_classifier_is_left_out(tmp_path):
    from safetensors.torch import save_file

    full = BLOCKS["timm"](model="resnet18", in_chans=1, num_classes=10)
    save_file(full.model.state_dict(), tmp_path / "resnet.safetensors")
    same = BLOCKS["timm"](model="resnet18", in_chans=1, num_classes=10, pretrained=str(tmp_path / "resnet.safetensors"))
    trunk = BLOCKS["timm"](model="resnet18", in_chans=1, num_classes=0, pretrained=str(tmp_path / "resnet.safetensors"))
    x = torch.randn(2, 1, 32, 32)
    assert torch.equal(same.eval()(x), full.eval()(x))
    assert torch.equal(trunk.eval()(x), full.model.forward_head(full.model.forward_features(x), pre_logits=True))
