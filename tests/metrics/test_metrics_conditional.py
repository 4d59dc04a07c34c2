"""The `class_agreement` metric on constructed cases: real held-out digits as the "samples" of
their own labels agree ~1, of shuffled labels ~0.1; keys per guidance scale; errors."""
import copy

import pytest
import torch

from composer import api
from composer.data.digits import digits
from composer.errors import ComposerError, SpecError
from composer.metrics import METRICS
from composer.run.evaluate import Evaluation
from composer.metrics.conditional import (agreement_scores, best_matching, class_agreement, requested_labels,
                                          score_samples)


def tiny_cgan():
    return copy.deepcopy({
        "name": "tiny_cgan",
        "inputs": {"real": {"source": "digits", "size": 8, "split": "train"},
                   "z": {"noise": "normal", "shape": [4]}, "y_fake": {"noise": "categorical", "classes": 10}},
        "modules": {"G": {"block": "ConditionalDCGANGenerator", "image_size": 8, "channels": 1, "latent": 4,
                          "num_classes": 10, "width": 4},
                    "D": {"block": "ConditionalDCGANDiscriminator", "image_size": 8, "channels": 1,
                          "num_classes": 10, "width": 4}},
        "flow": {"fake": "G(z, y_fake)", "unconditional": "G(z, real.y)"},
        "objectives": {"gan": {"recipe": "adversarial", "critic": "D", "real": ["real", "real.y"],
                               "fake": ["fake", "y_fake"]}},
        "optimizers": {"D": {"params": ["D"]}, "G": {"params": ["G"]}},
        "train": {"steps": 1, "batch": 4},
        "sample": {"output": "fake", "n": 10},
        "eval": {"n": 20, "metrics": {"class_agreement": {"labels": "y_fake", "output": "fake", "n": 20}}},
    })


def tiny_cfg_diffusion():
    return copy.deepcopy({
        "name": "tiny_cfg",
        "inputs": {"x0": {"source": "digits", "size": 8, "split": "train"}},
        "modules": {"eps_net": {"block": "UNet", "channels": 1, "width": 8, "channel_mults": [1, 2],
                                "num_res_blocks": 1, "groups": 4, "num_classes": 10}},
        "objectives": {"dsm": {"recipe": "denoising", "data": "x0", "model": "eps_net", "cond": "x0.y",
                               "cond_drop": 0.2}},
        "optimizers": {"eps_net": {"params": ["eps_net"]}},
        "train": {"steps": 1, "batch": 4},
        "sample": {"objective": "dsm", "steps": 2, "n": 10, "guidance": 1.0},
    })


def real_digits_for(shuffle: bool):
    """A stand-in for Evaluation.generate: for each requested label, a held-out real digit
    of that class (of a random class when `shuffle`)."""
    test = digits(split="test")
    calls = []

    def fake_generate(runner, n, *, output=None, inputs=None, **options):
        calls.append({"n": n, "output": output, "inputs": sorted(inputs), **options})
        (labels,) = inputs.values()
        gen = torch.Generator().manual_seed(0)
        wanted = torch.randint(10, labels.shape, generator=gen) if shuffle else labels
        pick = [torch.nonzero(test.y == c).flatten() for c in range(10)]
        return torch.stack([test.x[pick[c][i % len(pick[c])]] for i, c in enumerate(wanted.tolist())])

    return fake_generate, calls


def test_requested_labels_are_even():
    labels = requested_labels(1000, 10)
    assert labels.dtype == torch.int64 and torch.equal(torch.bincount(labels), torch.full((10,), 100))
    with pytest.raises(ComposerError, match=r"n=5 samples for classes=10"):
        requested_labels(5, 10)


def test_agreement_scores_name_the_worst_class():
    requested = torch.arange(20) % 10
    predicted = requested.clone()
    predicted[3] = 0                       # one of the two class-3 samples is wrong
    scores = agreement_scores(predicted, requested, 10)
    assert scores == {"agreement": 0.95, "agreement_min_class": 0.5, "worst_class": 3}


def test_real_digits_agree_with_their_labels_and_shuffled_ones_do_not():
    test = digits(split="test")
    own = score_samples(test.x, test.y, 10, test.x)
    assert own["agreement"] >= 0.97 and own["agreement_min_class"] >= 0.9
    assert own["frechet"] < 1e-6
    shuffled = test.y[torch.randperm(len(test.y), generator=torch.Generator().manual_seed(0))]
    other = score_samples(test.x, shuffled, 10, test.x)
    assert 0.03 < other["agreement"] < 0.2 and other["agreement_min_class"] < 0.1


def test_best_matching_finds_the_permutation_a_code_draws():
    codes = torch.arange(40) % 4
    drawn = torch.tensor([2, 0, 3, 1])[codes]          # code 0 draws class 2, code 1 class 0, ...
    drawn[0] = 1                                      # one sample of code 0 judged as class 1
    assert best_matching(drawn, codes, 4).tolist() == [2, 0, 3, 1]
    tied = torch.tensor([0, 0, 1, 1])                 # codes 0 and 1 both draw class 0 more often:
    assert sorted(best_matching(tied, torch.tensor([0, 1, 0, 1]), 2).tolist()) == [0, 1]   # still one-to-one


def test_permuted_codes_of_real_digits_agree_after_matching():
    test = digits(split="test")
    permutation = torch.tensor([3, 7, 0, 9, 1, 5, 2, 8, 6, 4])
    codes = permutation.argsort()[test.y]             # the code that stands for each digit's class
    as_labels = score_samples(test.x, codes, 10, test.x)
    matched = score_samples(test.x, codes, 10, test.x, permute=True)
    assert as_labels["agreement"] < 0.2 and "code_0" not in as_labels
    assert matched["agreement"] >= 0.97 and matched["agreement_min_class"] >= 0.9
    assert [matched[f"code_{k}"] for k in range(10)] == permutation.tolist()
    shuffled = codes[torch.randperm(len(codes), generator=torch.Generator().manual_seed(0))]
    assert score_samples(test.x, shuffled, 10, test.x, permute=True)["agreement"] < 0.25   # matching cannot invent it


def test_permute_must_be_a_boolean():
    runner = api.runner(api.from_dict(tiny_cgan()), cpu=True)
    with pytest.raises(ComposerError, match="permute takes true or false, got 'yes'"):
        class_agreement(runner=Evaluation(runner), labels="y_fake", output="fake", n=20, permute="yes")


@pytest.mark.parametrize("shuffle", [False, True])
def test_class_agreement_feeds_the_requested_labels(monkeypatch, shuffle):
    fake_generate, calls = real_digits_for(shuffle)
    monkeypatch.setattr(Evaluation, "generate", lambda self, n, **kw: fake_generate(self.runner, n, **kw))
    runner = api.runner(api.from_dict(tiny_cgan()), cpu=True)
    scores = class_agreement(runner=Evaluation(runner), labels="y_fake", output="fake", n=200)
    assert calls == [{"n": 200, "output": "fake", "inputs": ["y_fake"]}]
    assert set(scores) == {"agreement", "agreement_min_class", "worst_class", "frechet"}
    if shuffle:
        assert 0.03 < scores["agreement"] < 0.2
    else:
        assert scores["agreement"] >= 0.97 and scores["agreement_min_class"] >= 0.9
    assert scores["frechet"] < 3.0     # real digits, whatever their labels (200: some bias)


def test_guidance_scales_are_scored_on_the_same_noise(monkeypatch):
    fake_generate, calls = real_digits_for(False)
    monkeypatch.setattr(Evaluation, "generate", lambda self, n, **kw: fake_generate(self.runner, n, **kw))
    runner = api.runner(api.from_dict(tiny_cfg_diffusion()), cpu=True)
    scores = class_agreement(runner=Evaluation(runner), labels="x0.y", n=50, guidance=[0, 2.5])
    assert [c["guidance"] for c in calls] == [0, 2.5] and calls[0]["inputs"] == ["x0.y"]
    assert {"agreement@g0", "agreement_min_class@g0", "frechet@g0", "agreement@g2.5", "frechet@g2.5"} <= set(scores)
    assert "agreement" not in scores
    class_agreement(runner=Evaluation(runner), labels="x0.y", n=50)
    assert calls[-1]["guidance"] == 1.0          # sample.guidance by default


def test_on_a_tiny_diffusion_graph_end_to_end():
    runner = api.runner(api.from_dict(tiny_cfg_diffusion()), cpu=True)
    scores = class_agreement(runner=Evaluation(runner), labels="x0.y", n=20, guidance=[0, 2])
    for key in ("agreement@g0", "agreement@g2", "agreement_min_class@g2"):
        assert 0.0 <= scores[key] <= 1.0
    assert scores["frechet@g0"] > 0


def test_class_agreement_in_a_trained_run(tmp_path):
    results = api.train(api.from_dict(tiny_cgan()), tmp_path, quiet=True)
    assert 0.0 <= results["class_agreement.agreement"] <= 1.0
    assert "class_agreement" in METRICS


def test_errors():
    runner = api.runner(api.from_dict(tiny_cgan()), cpu=True)
    with pytest.raises(ComposerError, match=r"guidance applies to a generating objective"):
        class_agreement(runner=Evaluation(runner), labels="y_fake", output="fake", guidance=[0, 1])
    with pytest.raises(ComposerError, match=r"'real.y' does not feed \['fake'\]"):
        class_agreement(runner=Evaluation(runner), labels="real.y", output="fake")
    diffusion = api.runner(api.from_dict(tiny_cfg_diffusion()), cpu=True)
    with pytest.raises(ComposerError, match=r"guidance takes a non-empty list of scales >= 0, got \[-1\]"):
        class_agreement(runner=diffusion, labels="x0.y", guidance=[-1])


def test_labels_must_name_a_graph_tensor():
    data = tiny_cgan()
    data["eval"]["metrics"]["class_agreement"]["labels"] = "y_fak"
    with pytest.raises(SpecError, match=r"eval.metrics.class_agreement.labels: 'y_fak' is not a tensor of the graph"):
        api.plan(api.from_dict(data))
