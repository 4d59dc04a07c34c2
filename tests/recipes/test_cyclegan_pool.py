"""The image history pool CycleGAN feeds its discriminators (Shrivastava et al. 2017): behaviour,
and its state in the run's explicit state dict surviving a checkpoint."""
import torch

from composer import api
from composer.run import checkpoint
from composer.recipes.pool import ImagePool
from composer.graph.interpreter import Context
from conftest import GRAPHS


def context(seed=0):
    return Context({}, torch.Generator().manual_seed(seed), torch.device("cpu"), draw=None, batch=None)


def images(count, start=0):
    return torch.arange(start, start + count, dtype=torch.float32).reshape(count, 1, 1, 1).expand(count, 1, 2, 2)


def test_pool_returns_the_new_images_until_it_is_full():
    pool, ctx = ImagePool(5, prob=1.0, key="p"), context()
    assert torch.equal(pool(ctx, images(3)), images(3))
    assert torch.equal(pool(ctx, images(2, 3)), images(2, 3))
    assert torch.equal(ctx.state["p"]["images"], images(5))


def test_a_full_pool_swaps_with_probability_prob():
    ctx = context()
    full = ImagePool(4, prob=1.0, key="p")
    full(ctx, images(4))
    out = full(ctx, images(1, 10))                       # always swapped: an old image comes back
    assert out.flatten()[0] in range(4)
    assert 10 in ctx.state["p"]["images"][:, 0, 0, 0]    # and the new one is stored in its place
    never = ImagePool(4, prob=0.0, key="q")
    never(ctx, images(4))
    assert torch.equal(never(ctx, images(3, 10)), images(3, 10))
    assert torch.equal(ctx.state["q"]["images"], images(4))
    half = ImagePool(4, prob=0.5, key="r")
    half(ctx, images(4))
    out = half(ctx, images(400, 10))
    swapped = (out[:, 0, 0, 0] != images(400, 10)[:, 0, 0, 0]).double().mean()
    assert 0.4 < swapped < 0.6


def test_pool_size_zero_passes_fakes_through_detached():
    fake = torch.randn(3, 1, 2, 2, requires_grad=True)
    out = ImagePool(0)(context(), fake)
    assert torch.equal(out, fake) and not out.requires_grad


def feeds(count, seed=5):
    gen = torch.Generator().manual_seed(seed)
    return [{name: torch.rand(4, 1, 16, 16, generator=gen) * 2 - 1 for name in ("real_A", "real_B")}
            for _ in range(count)]


def test_pool_state_survives_checkpoint_save_and_load(tmp_path):
    overrides = ["train.batch=4", "objectives.gan_A.pool=6", "objectives.gan_B.pool=6"]
    first = api.runner(GRAPHS / "cyclegan.yaml", overrides, cpu=True)
    batches = feeds(4)
    for feed in batches[:2]:
        first.step(feed)
    checkpoint.save(first, tmp_path / "ckpt")
    second = api.runner(GRAPHS / "cyclegan.yaml", overrides, cpu=True)
    checkpoint.load(second, tmp_path / "ckpt")
    assert set(second.state) == {"gan_A.pool", "gan_B.pool"}
    for name in second.state:
        assert torch.equal(second.state[name]["images"], first.state[name]["images"])
        assert second.state[name]["images"].shape == (6, 1, 16, 16)
    for feed in batches[2:]:                             # full pools: the swaps draw from the restored RNG
        first.step(feed)
        second.step(feed)
    for name in first.state:
        assert torch.equal(second.state[name]["images"], first.state[name]["images"])
    for name in first.raw:
        for a, b in zip(first.raw[name].parameters(), second.raw[name].parameters()):
            assert torch.equal(a, b)
