"""Invariant 3 for CycleGAN: the compiled graphs/cyclegan.yaml equals a hand-written step written
like the reference's `CycleGANModel.optimize_parameters` (junyanz/pytorch-CycleGAN-and-pix2pix)."""
import copy

import torch
import torch.nn.functional as F

from composer import api
from conftest import GRAPHS

STEPS = 3
BATCH = 4
LAMBDA, LAMBDA_IDT = 10.0, 0.5


class ReferencePool:
    """The reference's `ImagePool.query`, drawing from a torch generator instead of `random`."""

    def __init__(self, size, generator):
        self.size, self.generator, self.images, self.swaps = size, generator, [], 0

    def query(self, images):
        if self.size == 0:
            return images
        out = []
        for image in images.detach():
            image = image.unsqueeze(0)
            if len(self.images) < self.size:
                self.images.append(image)
                out.append(image)
            elif torch.rand((), generator=self.generator).item() < 0.5:
                index = int(torch.randint(self.size, (), generator=self.generator))
                out.append(self.images[index].clone())
                self.images[index] = image
                self.swaps += 1
            else:
                out.append(image)
        return torch.cat(out)


def set_requires_grad(nets, flag):
    for net in nets:
        net.requires_grad_(flag)


def backward_D_basic(D, real, fake):
    """LSGAN: (MSE(D(real), 1) + MSE(D(fake.detach()), 0)) * 0.5, backward."""
    pred_real = D(real)
    pred_fake = D(fake.detach())
    loss_real = F.mse_loss(pred_real, torch.ones_like(pred_real))
    loss_fake = F.mse_loss(pred_fake, torch.zeros_like(pred_fake))
    loss = (loss_real + loss_fake) * 0.5
    loss.backward()


def reference_step(G_AB, G_BA, D_A, D_B, opt_G, opt_D, pool_A, pool_B, real_A, real_B):
    # forward
    fake_B = G_AB(real_A)
    rec_A = G_BA(fake_B)
    fake_A = G_BA(real_B)
    rec_B = G_AB(fake_A)
    # G step, both discriminators frozen
    set_requires_grad([D_A, D_B], False)
    opt_G.zero_grad()
    idt_B = G_AB(real_B)
    loss_idt_B = F.l1_loss(idt_B, real_B) * LAMBDA * LAMBDA_IDT
    idt_A = G_BA(real_A)
    loss_idt_A = F.l1_loss(idt_A, real_A) * LAMBDA * LAMBDA_IDT
    pred_B = D_B(fake_B)
    loss_G_AB = F.mse_loss(pred_B, torch.ones_like(pred_B))
    pred_A = D_A(fake_A)
    loss_G_BA = F.mse_loss(pred_A, torch.ones_like(pred_A))
    loss_cycle_A = F.l1_loss(rec_A, real_A) * LAMBDA
    loss_cycle_B = F.l1_loss(rec_B, real_B) * LAMBDA
    loss_G = loss_G_AB + loss_G_BA + loss_cycle_A + loss_cycle_B + loss_idt_A + loss_idt_B
    loss_G.backward()
    opt_G.step()
    # D step on pooled, detached fakes
    set_requires_grad([D_A, D_B], True)
    opt_D.zero_grad()
    backward_D_basic(D_B, real_B, pool_B.query(fake_B))
    backward_D_basic(D_A, real_A, pool_A.query(fake_A))
    opt_D.step()


def run_both(pool: int):
    overrides = [f"train.batch={BATCH}", f"objectives.gan_A.pool={pool}", f"objectives.gan_B.pool={pool}"]
    runner = api.runner(GRAPHS / "cyclegan.yaml", overrides, cpu=True)
    nets = {name: copy.deepcopy(runner.raw[name]) for name in ("G_AB", "G_BA", "D_A", "D_B")}
    calls = {name: 0 for name in nets}
    for name, net in nets.items():
        net.register_forward_hook(lambda *_, name=name: calls.__setitem__(name, calls[name] + 1))
    adam = dict(lr=2e-4, betas=(0.5, 0.999))
    opt_G = torch.optim.Adam([*nets["G_AB"].parameters(), *nets["G_BA"].parameters()], **adam)
    opt_D = torch.optim.Adam([*nets["D_A"].parameters(), *nets["D_B"].parameters()], **adam)
    pool_rng = torch.Generator()
    pool_rng.set_state(runner.generator.get_state())
    pools = ReferencePool(pool, pool_rng), ReferencePool(pool, pool_rng)
    gen = torch.Generator().manual_seed(7)
    for _ in range(STEPS):
        real_A = torch.rand(BATCH, 1, 16, 16, generator=gen) * 2 - 1
        real_B = torch.rand(BATCH, 1, 16, 16, generator=gen) * 2 - 1
        runner.step({"real_A": real_A, "real_B": real_B})
        reference_step(*nets.values(), opt_G, opt_D, *pools, real_A, real_B)
    return runner, nets, calls, pools


def assert_same_parameters(runner, nets):
    """Bitwise: same operations in the same order on one thread."""
    for name, net in nets.items():
        compiled = runner.raw[name].state_dict()
        for key, value in net.state_dict().items():
            assert torch.equal(compiled[key], value), f"{name}.{key} differs"


def test_compiled_cyclegan_equals_the_reference_step():
    runner, nets, calls, _ = run_both(pool=0)
    assert_same_parameters(runner, nets)
    assert runner.forward_calls == calls == {name: 3 * STEPS for name in ("G_AB", "G_BA", "D_A", "D_B")}
    assert runner.plan.forward_calls() == {"G_AB": 3, "G_BA": 3, "D_A": 3, "D_B": 3}


def test_compiled_cyclegan_with_a_swapping_image_pool_equals_the_reference_step():
    runner, nets, calls, pools = run_both(pool=6)     # full after 6 images: steps 2 and 3 may swap
    assert all(pool.swaps > 0 for pool in pools)
    assert_same_parameters(runner, nets)
    assert runner.forward_calls == calls
    for name, pool in zip(("gan_A.pool", "gan_B.pool"), pools):
        assert torch.equal(runner.state[name]["images"], torch.cat(pool.images))
