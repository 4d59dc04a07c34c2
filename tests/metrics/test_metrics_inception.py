import json
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from composer.data.table import Table
from composer.errors import ComposerError
from composer.metrics import METRICS
from composer.metrics.inception import fid_kid, inception_weights, main, to_uint8


@pytest.fixture(autouse=True)
def _private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("COMPOSER_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("COMPOSER_INCEPTION", raising=False)


class StandIn(torch.nn.Module):
    """A TorchScript stand-in with the Inception file's contract (uint8 in, features out)."""

    def forward(self, x: torch.Tensor, return_features: bool = True) -> torch.Tensor:
        x = x.float() / 255
        pooled = torch.nn.functional.adaptive_avg_pool2d(x, 4).flatten(1)
        return torch.cat([x.mean(dim=(2, 3)), x.std(dim=(2, 3)), pooled], dim=1)


@pytest.fixture
def weights(tmp_path):
    path = tmp_path / "standin.pt"
    torch.jit.save(torch.jit.script(StandIn()), str(path))
    return path


def test_missing_weights_say_where_they_were_looked_for_and_that_nothing_is_downloaded(tmp_path):
    with pytest.raises(ComposerError, match=r"FID/KID need the Inception weights inception-2015-12-05.pt .* "
                       r"found no file at .*cache/inception-2015-12-05.pt; composer never downloads at run time"):
        inception_weights()
    with pytest.raises(ComposerError, match=r"found no file at .*elsewhere.pt"):
        METRICS["inception"](torch.zeros(2, 3, 8, 8), Table(x=torch.zeros(2, 3, 8, 8), kind="image"),
                             weights=str(tmp_path / "elsewhere.pt"))


def test_weights_from_the_environment(monkeypatch, weights):
    monkeypatch.setenv("COMPOSER_INCEPTION", str(weights))
    assert inception_weights() == weights


def test_missing_library_names_the_extra(monkeypatch, weights):
    monkeypatch.setitem(sys.modules, "torchmetrics", None)
    monkeypatch.setitem(sys.modules, "torchmetrics.image", None)
    with pytest.raises(ComposerError, match=r"FID/KID need the optional library torchmetrics .*"
                       r"pip install 'composer-graphs\[fid\]'"):
        fid_kid(torch.zeros(2, 3, 8, 8), torch.zeros(2, 3, 8, 8), weights=weights)


def test_to_uint8_maps_the_range_and_repeats_grey():
    x = to_uint8(torch.tensor([-1.0, 0.0, 1.0, 2.0]).view(1, 1, 2, 2))
    assert x.dtype == torch.uint8 and x.shape == (1, 3, 2, 2)
    assert x[0, 2].flatten().tolist() == [0, 128, 255, 255]


def test_fid_and_kid_through_torchmetrics(weights):
    pytest.importorskip("torchmetrics")
    g = torch.Generator().manual_seed(0)
    real = torch.rand(60, 3, 16, 16, generator=g) * 2 - 1
    torch.manual_seed(0)  # torchmetrics draws KID's subsets from the global generator
    same = fid_kid(real, real, weights=weights, kid_subset_size=20)
    shifted = fid_kid((real + 0.5).clamp(-1, 1), real, weights=weights, kid_subset_size=20)
    assert abs(same["fid"]) < 1e-6 and shifted["fid"] > 1.0
    assert abs(same["kid"]) < 0.1 * shifted["kid"]  # unbiased over random subsets: ≈ 0, either sign


def test_two_folders_from_the_command_line(tmp_path, weights, capsys):
    pytest.importorskip("torchmetrics")
    rng = np.random.default_rng(0)
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        for i in range(6):
            Image.fromarray(rng.integers(0, 255, (20, 20, 3), dtype=np.uint8)).save(tmp_path / folder / f"{i}.png")
    args = [str(tmp_path / "a"), str(tmp_path / "b"), "--weights", str(weights), "--size", "16"]
    assert main(args + ["--kid-subset-size", "4"]) == 0
    assert set(json.loads(capsys.readouterr().out)) == {"fid", "kid", "kid_std"}
    assert main([str(tmp_path / "a"), str(tmp_path / "b")]) == 1
    assert "found no file at" in capsys.readouterr().out
