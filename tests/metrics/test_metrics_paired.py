"""The `paired` metric (composer/metrics/paired.py) on constructed translations whose scores are
known: the exact inverse of the `invert` task, doing nothing, and bad tensor choices."""
import pytest
import torch

from composer import api
from composer.errors import ComposerError, SpecError
from composer.run.evaluate import Evaluation, evaluate
from composer.metrics.paired import agreement, mean_l1, paired

EVAL = {"input": "pair", "output": "fake", "target": "pair.target", "labels": "pair.y"}


def graph(metric=None, **extra_inputs):
    """pair = -digit (task invert), pair.target = digit; fake = G(pair), G a 1x1 convolution."""
    return api.from_dict({
        "name": "paired_metric",
        "inputs": {"pair": {"source": "paired_digits", "task": "invert", "size": 16}, **extra_inputs},
        "modules": {"G": {"block": "Conv2d", "in_channels": 1, "out_channels": 1, "kernel_size": 1}},
        "flow": {"fake": "G(pair)"},
        "objectives": {"rec": {"recipe": "reconstruction", "prediction": "fake", "target": "pair.target"}},
        "optimizers": {"G": {"params": ["G"], "type": "adam", "lr": 1.0e-3}},
        "eval": {"metrics": {"paired": metric or EVAL}},
    })


def runner_with_scale(scale: float, **extra_inputs):
    """fake = scale * pair exactly: -1 inverts back to the target, +1 does nothing."""
    runner = api.runner(graph(**extra_inputs), cpu=True)
    with torch.no_grad():
        runner.raw["G"].weight.fill_(scale)
        runner.raw["G"].bias.zero_()
    return runner


def test_the_exact_translation_scores_l1_zero_and_the_classifiers_accuracy():
    scores = paired(runner=Evaluation(runner_with_scale(-1.0)), **EVAL)
    assert scores["l1"] == 0.0                       # pair, pair.target drawn at the same indices
    assert scores["label_preservation"] >= 0.97      # and pair.y: the classifier on real test digits
    assert scores["untranslated_label_preservation"] < scores["label_preservation"] - 0.3


def test_doing_nothing_scores_the_untranslated_baseline():
    scores = evaluate(runner_with_scale(1.0))
    assert scores["paired.label_preservation"] == scores["paired.untranslated_label_preservation"]
    assert scores["paired.l1"] > 0.1


def test_n_caps_the_held_out_samples_and_options_are_optional():
    runner = runner_with_scale(-1.0)
    assert paired(runner=Evaluation(runner), input="pair", output="fake", n=7) == {}
    scores = paired(runner=Evaluation(runner), input="pair", output="fake", labels="pair.y", n=7)
    assert set(scores) == {"label_preservation", "untranslated_label_preservation"}
    assert scores["label_preservation"] * 7 == pytest.approx(round(scores["label_preservation"] * 7))


def test_every_tensor_must_come_from_the_outputs_held_out_draw():
    runner = runner_with_scale(-1.0, other={"source": "digits", "size": 16})
    with pytest.raises(ComposerError, match=r"'other.y' reads \['other'\], which 'fake' does not"):
        paired(runner=Evaluation(runner), input="pair", output="fake", labels="other.y")


def test_tensor_options_are_checked_when_the_graph_is_built():
    with pytest.raises(SpecError, match=r"'pair.z' is not a tensor of the graph"):
        api.plan(graph({**EVAL, "labels": "pair.z"}))
    with pytest.raises(SpecError, match=r"'labels' takes one tensor name"):
        api.plan(graph({**EVAL, "labels": ["pair.y", "pair.y"]}))


def test_helpers_check_their_inputs():
    x = torch.rand(3, 1, 4, 4)
    assert mean_l1(x, x) == 0.0
    assert mean_l1(x, x + 0.5) == pytest.approx(0.5)
    with pytest.raises(ComposerError, match=r"output \(3, 1, 4, 4\) and target \(3, 1, 8, 8\) differ"):
        mean_l1(x, torch.rand(3, 1, 8, 8))
    with pytest.raises(ComposerError, match=r"3 images and 2 labels"):
        agreement(x, torch.zeros(2, dtype=torch.int64), None)
