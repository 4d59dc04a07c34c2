"""The `accuracy` metric: a module's logits scored on the held-out split of the data they read
(DANN's label classifier on the target domain), with pinned messages for misuse."""
import pytest
import torch

from composer import api
from composer.errors import ComposerError, SpecError
from composer.metrics.accuracy import top_k_accuracy


def classifier(**metric):
    flat = 'rearrange(x, pattern="b c h w -> b (c h w)")'
    return {
        "name": "cls",
        "inputs": {"x": {"source": "digits", "size": 8}, "z": {"noise": "normal", "shape": [64]}},
        "modules": {"net": {"block": "MLP", "in_features": 64, "hidden": 32, "depth": 1, "out_features": 10}},
        "flow": {"flat": flat, "logits": "net(flat)", "noise_logits": "net(z)"},
        "objectives": {"ce": {"recipe": "cross_entropy", "logits": "logits", "labels": "x.y"}},
        "optimizers": {"net": {"params": ["net"], "lr": 1e-2}},
        "train": {"steps": 60, "batch": 64},
        "eval": {"metrics": {"accuracy": {"logits": "logits", "labels": "x.y", **metric}}},
    }


def test_top_k_accuracy_counts_labels_among_the_largest_logits():
    logits = torch.tensor([[3.0, 1.0, 2.0], [0.0, 1.0, 2.0], [5.0, 4.0, 0.0], [0.0, 0.0, 1.0]])
    labels = torch.tensor([0.0, 1.0, 1.0, 2.0])
    assert top_k_accuracy(logits, labels) == 0.5
    assert top_k_accuracy(logits, labels, top=2) == 1.0


def test_a_trained_classifier_is_scored_on_the_test_split():
    runner = api.runner(api.from_dict(classifier(top=2)), cpu=True)
    untrained = api.evaluate(runner)
    for _ in range(40):
        runner.step()
    trained = api.evaluate(runner)
    assert set(trained) == {"accuracy.top2"} and 0.0 <= untrained["accuracy.top2"] <= 1.0
    assert trained["accuracy.top2"] > 0.8 > untrained["accuracy.top2"]


@pytest.mark.parametrize("logits, labels, message", [
    (torch.zeros(4, 2, 2), torch.zeros(4), r"metric 'accuracy': logits have shape \[2, 2\] per sample; expected one "
                                           r"vector of class logits \[K\]"),
    (torch.zeros(4, 3), torch.zeros(3), r"metric 'accuracy': 3 labels for 4 logits; expected one integer class label"),
    (torch.zeros(4, 3), torch.full((4,), 0.5), r"metric 'accuracy': 4 labels for 4 logits; expected one integer"),
])
def test_bad_logits_or_labels_are_named(logits, labels, message):
    with pytest.raises(ComposerError, match=message):
        top_k_accuracy(logits, labels)


def test_metric_misuse_is_pinned():
    with pytest.raises(ComposerError, match=r"metric 'accuracy': top=11, but the logits have 10 classes; "
                                            r"expected 1 <= top <= 10"):
        api.evaluate(api.runner(api.from_dict(classifier(top=11)), cpu=True))
    data = classifier()
    data["eval"]["metrics"]["accuracy"]["logits"] = "noise_logits"
    with pytest.raises(ComposerError, match=r"metric 'accuracy': 'noise_logits' reads no data input; it needs "
                                            r"held-out data"):
        api.evaluate(api.runner(api.from_dict(data), cpu=True))
    data["eval"]["metrics"]["accuracy"]["logits"] = "logit"
    with pytest.raises(SpecError, match=r"eval.metrics.accuracy.logits: 'logit' is not a tensor of the graph "
                                        r"\(did you mean 'logits'\?\)"):
        api.validate(api.from_dict(data))
