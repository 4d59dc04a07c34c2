"""The `minimise` recipe: a tensor of the flow as a loss term, per sample."""
import torch

from composer import api
from composer.recipes import RECIPES


def test_minimise_is_the_per_sample_mean_of_the_value():
    node, = RECIPES["minimise"]("aux", value="v")
    assert node.name == "aux.loss" and node.inputs == ("v",) and node.trains is None
    v = torch.arange(12.0).view(3, 4)
    assert torch.equal(node.op(None, v), v.mean(1))
    assert torch.equal(node.op(None, v[:, 0]), v[:, 0])


def test_a_minimised_value_trains_the_modules_upstream():
    data = {
        "name": "minimise",
        "inputs": {"z": {"noise": "normal", "shape": [3]}},
        "modules": {"f": {"block": "Linear", "in_features": 3, "out_features": 2}},
        "flow": {"y": "f(z)"},
        "objectives": {"size": {"recipe": "minimise", "value": "y"}},
        "optimizers": {"f": {"params": ["f"], "type": "sgd", "lr": 0.1}},
        "train": {"steps": 1, "batch": 4},
    }
    runner = api.runner(api.from_dict(data), cpu=True)
    before = [p.detach().clone() for p in runner.raw["f"].parameters()]
    z = torch.randn(4, 3, generator=torch.Generator().manual_seed(0))
    logs = runner.step({"z": z})
    with torch.no_grad():
        expected = (z @ before[0].t() + before[1]).mean()
    assert torch.allclose(logs["size.loss"], expected)
    assert not torch.equal(before[1], runner.raw["f"].bias)
