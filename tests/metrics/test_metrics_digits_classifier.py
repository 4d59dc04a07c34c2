import pytest
import torch

from composer.data.digits import digits
from composer.errors import ComposerError
from composer.metrics import digits_classifier as dc


@pytest.fixture(autouse=True)
def _private_cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("COMPOSER_CACHE", str(tmp_path_factory.getbasetemp() / "composer-cache"))


@pytest.mark.slow
def test_classifier_reaches_97_percent_on_the_test_split():
    assert dc.accuracy(dc.digits_classifier(), digits(split="test")) >= 0.97


@pytest.mark.slow
def test_features_and_predictions_at_any_size_and_channels():
    test = digits(split="test", size=16)
    feats = dc.features(test.x)
    assert feats.shape == (len(test), dc.ClassifierConfig().hidden) and not feats.requires_grad
    rgb = test.x.expand(-1, 3, -1, -1)
    assert torch.equal(dc.predict(rgb), dc.predict(test.x))
    assert (dc.predict(test.x) == test.y).double().mean() >= 0.95


def test_training_is_deterministic_and_leaves_global_state_alone():
    table = digits(split="train")
    config = dc.ClassifierConfig(epochs=1)
    threads, rng = torch.get_num_threads(), torch.get_rng_state()
    first, second = dc.train_classifier(table, config), dc.train_classifier(table, config)
    assert torch.get_num_threads() == threads and torch.equal(torch.get_rng_state(), rng)
    for (name, p), q in zip(first.state_dict().items(), second.state_dict().values()):
        assert torch.equal(p, q), name


def test_disk_cache_round_trip_with_safetensors(tmp_path, monkeypatch):
    monkeypatch.setenv("COMPOSER_CACHE", str(tmp_path))
    table, config = digits(split="test"), dc.ClassifierConfig(epochs=1)
    trained = dc.load_or_train(table, config)
    files = list(tmp_path.glob("digits_classifier-*.safetensors"))
    assert [f.name for f in files] == [f"digits_classifier-{dc.cache_key(table, config)}.safetensors"]
    monkeypatch.setattr(dc, "train_classifier", lambda *a, **k: pytest.fail("should load, not train"))
    loaded = dc.load_or_train(table, config)
    assert torch.equal(loaded.features(table.x), trained.features(table.x))


def test_cache_key_depends_on_config_and_data():
    a, b = digits(split="test"), digits(split="train")
    config = dc.ClassifierConfig()
    assert dc.cache_key(a, config) == dc.cache_key(digits(split="test"), config)
    assert dc.cache_key(a, config) != dc.cache_key(b, config)
    assert dc.cache_key(a, config) != dc.cache_key(a, dc.ClassifierConfig(seed=1))


def test_corrupt_cache_file_is_retrained(tmp_path, monkeypatch):
    monkeypatch.setenv("COMPOSER_CACHE", str(tmp_path))
    table, config = digits(split="test"), dc.ClassifierConfig(epochs=1)
    path = tmp_path / f"digits_classifier-{dc.cache_key(table, config)}.safetensors"
    path.write_bytes(b"garbage")
    retrained, fresh = dc.load_or_train(table, config), dc.train_classifier(table, config)
    assert torch.equal(retrained.features(table.x), fresh.features(table.x))
    assert path.stat().st_size > 1_000  # overwritten with the new weights


def test_classifier_input_errors():
    with pytest.raises(ComposerError, match=r"digits classifier: expected images \[N, 1 or 3, H, W\], got \(4, 64\)"):
        dc.predict(torch.zeros(4, 64))
    with pytest.raises(ComposerError, match=r"train_classifier: needs a labelled image table"):
        dc.train_classifier(digits(split="test").__class__(x=torch.zeros(2, 1, 8, 8)))


@pytest.mark.slow
def test_digits_are_judged_at_their_own_resolution():
    # the 16x16 digits are the 8x8 ones resized; an 8x8 judge sees them resized back, blurred,
    # and is less sure of real digits; a judge trained at 16x16 is as sure as the 8x8 one at 8x8
    j8, j16 = dc.digits_classifier(8), dc.digits_classifier(16)
    assert j16.size == 16 and dc.classifier_for(torch.zeros(2, 3, 16, 16)) is j16
    t8, t16 = digits(split="test", size=8), digits(split="test", size=16)

    def confident(judge, x):
        return float((judge.probabilities(x).max(dim=1).values >= 0.9).double().mean())

    assert abs(confident(j16, t16.x) - confident(j8, t8.x)) < 0.02
    assert confident(j8, t16.x) < confident(j8, t8.x) - 0.03
