"""The non-finite stops (composer/run/finite.py) name where the first non-finite value appeared:
the phase, its optimizer and the term (issue 28, finding 8)."""
import pytest
import torch

from composer import api
from composer.run.finite import NonFiniteLoss
from conftest import GRAPHS
from specs import small_2d_gan


def test_a_huge_generator_lr_stops_at_the_phase_and_term_it_broke():
    """Issue 28: only G's learning rate is absurd: G's next outputs are huge but finite, D's losses stay
    finite, and D's gradient from the fake term overflows when squared (Adam's second moment).
    The stop names phase D, optimizer D, the term on the fakes and G's output; D's weights and
    moments are untouched by it."""
    runner = api.runner(GRAPHS / "gan_ring.yaml", ["optimizers.G.lr=1e4", "train.threads=1", "train.batch=64"],
                        cpu=True)                       # the shipped graph, as the issue ran it
    with pytest.raises(NonFiniteLoss, match=r"non-finite gradient in phase D \(optimizer D\) at step \d+: "
                                            r"term gan.D_fake \(value .*; gradient of D\.[\w.]+\); largest values "
                                            r"computed: fake \(from G\) up to"):
        for _ in range(50):
            before = {k: v.clone() for k, v in runner.raw["D"].state_dict().items()}
            runner.step()
    assert all(torch.equal(before[k], v) for k, v in runner.raw["D"].state_dict().items())
    for state in runner.optimizers["D"].state.values():
        assert all(torch.isfinite(v).all() for v in state.values() if torch.is_tensor(v))


def test_a_non_finite_loss_names_phase_optimizer_and_term():
    runner = api.runner(api.from_dict(small_2d_gan(), ["optimizers.D.lr=1e30", "optimizers.G.lr=1e30",
                                                       "train.threads=1"]), cpu=True)
    with pytest.raises(NonFiniteLoss, match=r"non-finite (loss|gradient) in phase [DG] \(optimizer [DG]\) at step "
                                            r"\d+: term gan\.\w+"):
        for _ in range(50):
            runner.step()
