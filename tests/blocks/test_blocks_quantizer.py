"""VectorQuantizer: nearest codes, the straight-through gradient, the commitment loss, the EMA
codebook update with Laplace-smoothed cluster sizes, and the codebook usage it reports."""
import pytest
import torch

from composer import api
from composer.blocks import VectorQuantizer
from composer.errors import SpecError
from conftest import GRAPHS


def _quantizer(codebook, **kwargs):
    vq = VectorQuantizer(codes=codebook.shape[0], dim=codebook.shape[1], **kwargs)
    vq.codebook.copy_(codebook)
    vq.embed_sum.copy_(codebook)
    return vq


def test_nearest_codes_and_straight_through_gradient():
    vq = _quantizer(torch.tensor([[0.0, 0.0], [1.0, 1.0], [-2.0, 0.0]])).eval()
    z = torch.tensor([[0.9, 0.8], [-1.5, 0.1], [0.1, -0.2]]).view(3, 2, 1, 1).requires_grad_()
    quantized, codes, commitment = vq(z)
    assert codes.view(-1).tolist() == [1, 2, 0]
    assert torch.equal(quantized.detach().view(3, 2), vq.codebook[[1, 2, 0]])
    quantized.sum().backward()
    assert torch.equal(z.grad, torch.ones_like(z))          # the decoder's gradient, copied
    expected = 0.25 * torch.tensor([0.01 + 0.04, 0.25 + 0.01, 0.01 + 0.04]) / 2
    assert torch.allclose(commitment, expected)


def test_commitment_moves_z_towards_its_code_only():
    vq = _quantizer(torch.tensor([[1.0, 1.0]]), beta=0.5).eval()
    z = torch.zeros(1, 2).requires_grad_()
    vq(z)[2].sum().backward()
    assert torch.allclose(z.grad, torch.tensor([[-0.5, -0.5]]))   # d/dz 0.5 mean (z - e)^2


def test_ema_update_with_laplace_smoothing():
    codebook = torch.tensor([[0.0, 0.0], [4.0, 4.0]])
    vq = _quantizer(codebook, decay=0.5, epsilon=0.1)
    z = torch.tensor([[1.0, 0.0], [0.0, 1.0], [3.0, 3.0]]).requires_grad_()
    vq(z)
    size = torch.tensor([0.5 + 0.5 * 2, 0.5 + 0.5 * 1])                 # N <- g N + (1 - g) n, N0 = 1
    sums = torch.stack([0.5 * codebook[0] + 0.5 * torch.tensor([1.0, 1.0]),
                        0.5 * codebook[1] + 0.5 * torch.tensor([3.0, 3.0])])
    smoothed = (size + 0.1) / (size.sum() + 2 * 0.1) * size.sum()
    assert torch.allclose(vq.cluster_size, size) and torch.allclose(vq.embed_sum, sums)
    assert torch.allclose(vq.codebook, sums / smoothed[:, None])
    assert torch.allclose(vq.reports["usage"], torch.tensor(1.0))
    p = torch.tensor([2 / 3, 1 / 3])
    assert torch.allclose(vq.reports["perplexity"], torch.exp(-(p * p.log()).sum()))


def test_unused_code_keeps_its_place():
    vq = _quantizer(torch.tensor([[0.0, 0.0], [9.0, 9.0]]))
    for _ in range(5):
        vq(torch.zeros(4, 2).requires_grad_())
    assert torch.allclose(vq.codebook[1], torch.tensor([9.0, 9.0]), rtol=1e-3)
    assert vq.reports["usage"] == 0.5 and torch.allclose(vq.reports["perplexity"], torch.tensor(1.0))


@pytest.mark.parametrize("kwargs, message", [
    ({"codes": 0, "dim": 2}, "codes=0, dim=2; expected positive sizes"),
    ({"codes": 4, "dim": 2, "decay": 1.0}, r"decay=1.0; expected 0 <= decay < 1")])
def test_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        VectorQuantizer(**kwargs)


def test_dead_codes_restart_on_the_worst_quantised_vectors():
    vq = _quantizer(torch.tensor([[0.0, 0.0], [9.0, 9.0], [-9.0, 9.0]]), restart=0.5, decay=0.1)
    z = torch.tensor([[0.1, 0.0], [3.0, 0.0], [0.0, 2.0], [0.0, 0.1]]).requires_grad_()
    vq(z)                                  # codes 1, 2 unused: N = 0.1 < 0.5, both dead
    assert torch.equal(vq.codebook[1:], torch.tensor([[3.0, 0.0], [0.0, 2.0]]))
    assert torch.equal(vq.embed_sum[1:], vq.codebook[1:]) and torch.equal(vq.cluster_size[1:], torch.ones(2))
    assert vq.cluster_size[0] == pytest.approx(0.1 + 0.9 * 4)
    VectorQuantizer(codes=3, dim=2, restart=0.0)
    with pytest.raises(ValueError, match=r"restart=-1; expected a count >= 0 \(0: never\)"):
        VectorQuantizer(codes=3, dim=2, restart=-1)


def test_a_negative_restart_in_a_graph_file_is_refused_at_its_key():
    with pytest.raises(SpecError, match=r"modules.vq.restart: block VectorQuantizer: 'restart' takes a number >= 0, "
                                        r"got -1"):
        api.plan(GRAPHS / "vqvae.yaml", ["modules.vq.restart=-1"])
