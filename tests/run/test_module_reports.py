"""A block's `reports` (name -> 0-dim tensor, refilled by its forward) are logged after each of its
calls in a training step as `MODULE.NAME`, beside the loss terms."""
import torch

from composer import api


def _graph():
    return api.from_dict({
        "name": "reports",
        "inputs": {"z": {"noise": "normal", "shape": [4]}},
        "modules": {"f": {"block": "Linear", "in_features": 4, "out_features": 4},
                    "vq": {"block": "VectorQuantizer", "codes": 8, "dim": 4}},
        "flow": {"y": "f(z)", "q": "vq(y)", "z_q": "q[0]", "commitment": "q[2]"},
        "objectives": {"rec": {"recipe": "reconstruction", "prediction": "z_q", "target": "z"},
                       "commit": {"recipe": "minimise", "value": "commitment"}},
        "optimizers": {"f": {"params": ["f"], "type": "sgd", "lr": 0.1}},
        "train": {"steps": 2, "batch": 16},
    })


def test_reports_of_a_module_are_logged_with_the_terms():
    runner = api.runner(_graph(), cpu=True)
    logs = runner.step()
    assert set(logs) == {"rec.loss", "commit.loss", "vq.perplexity", "vq.usage"}
    vq = runner.raw["vq"]
    assert torch.equal(logs["vq.usage"], vq.reports["usage"]) and not logs["vq.usage"].requires_grad
    assert torch.equal(logs["vq.perplexity"], vq.reports["perplexity"])
    assert 1 <= float(logs["vq.perplexity"]) <= 8 and 0 < float(logs["vq.usage"]) <= 1


def test_a_module_without_reports_logs_nothing_of_its_own():
    runner = api.runner(_graph(), cpu=True)
    assert set(runner.interpreter.reporting) == {"vq"}
