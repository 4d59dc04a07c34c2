"""graphs/gan_timm.yaml: a GAN whose critic is heads on a frozen timm ResNet's features
(projected-GAN style). The compiled steps equal a hand-written loop on the same timm model, the
feature network never moves, stage 0's exported classifier loads into the feature extractor, and
both files train a few steps. timm is optional (CI does not install it): skipped without it."""
import copy

import pytest
import torch
import torch.nn.functional as F

from composer import api
from conftest import GRAPHS, usable

if not usable("timm"):
    pytest.skip("timm does not import here (not installed, or its torchvision does not fit this torch)",
                allow_module_level=True)

GAN = GRAPHS / "gan_timm.yaml"
STAGE0 = GRAPHS / "timm_digits.yaml"
STEPS = 2
BATCH = 8
QUIET = ["train.steps=2", "train.batch=8", "train.log_every=1", "train.sample_every=0",
         "train.checkpoint_every=0", "sample.n=4", "eval.n=64"]


def per_sample(x):
    return x.flatten(1).mean(1)


def r1(logits, f):
    """R1 on the features the head reads: 1/2 ||d head / d features||^2 per sample, from the loss
    term's logits head(f), `f` given to the head with its gradient enabled."""
    (grad,) = torch.autograd.grad(logits.sum(), f, create_graph=True)
    return 0.5 * grad.pow(2).flatten(1).sum(1)


def hand_written_loop(G, backbone, heads, batches, latents, lr=2e-4, betas=(0.0, 0.99)):
    """dcgan's loop with the critic split in two: features = backbone(x) (frozen, eval mode), one
    head per feature scale. D step: heads on real features (their gradient enabled: R1 from the
    same call) and on the detached fake features; G step: the same fake features (nothing upstream moved) through the stepped heads."""
    backbone.eval().requires_grad_(False)
    params_D = [p for h in heads for p in h.parameters()]
    opt_D = torch.optim.Adam(params_D, lr=lr, betas=betas)
    opt_G = torch.optim.Adam(G.parameters(), lr=lr, betas=betas)
    for real, z in zip(batches, latents):
        opt_D.zero_grad()
        f_real = backbone(real)
        f_fake = backbone(G(z))
        loss_D = 0
        for head, fr, ff in zip(heads, f_real, f_fake):
            f = fr.detach().requires_grad_(True)
            logits = head(f)
            loss_D = loss_D + per_sample(F.softplus(-logits)).mean() \
                + per_sample(F.softplus(head(ff.detach()))).mean() + r1(logits, f).mean()
        loss_D.backward()
        opt_D.step()
        opt_G.zero_grad()
        loss_G = sum(per_sample(F.softplus(-head(ff))).mean() for head, ff in zip(heads, f_fake))
        loss_G.backward()
        opt_G.step()


def test_compiled_gan_timm_equals_hand_written_loop(stage_overrides):
    runner = api.runner(GAN, [f"train.batch={BATCH}", "train.ema={}", *stage_overrides["gan_timm"]], cpu=True)
    backbone = runner.raw["F"]
    assert type(backbone.model).__module__.startswith("timm.")
    assert not backbone.training and not any(p.requires_grad for p in backbone.parameters())
    frozen = copy.deepcopy(backbone.state_dict())
    G, F_hand = copy.deepcopy(runner.raw["G"]), copy.deepcopy(backbone)
    heads = [copy.deepcopy(runner.raw["D8"]), copy.deepcopy(runner.raw["D4"])]
    gen = torch.Generator().manual_seed(3)
    batches = [torch.rand(BATCH, 1, 16, 16, generator=gen) * 2 - 1 for _ in range(STEPS)]
    latents = [torch.randn(BATCH, 32, generator=gen) for _ in range(STEPS)]
    for real, z in zip(batches, latents):
        runner.step({"real": real, "z": z})
    hand_written_loop(G, F_hand, heads, batches, latents)
    for name, hand in (("G", G), ("D8", heads[0]), ("D4", heads[1])):
        compiled = runner.raw[name].state_dict()
        for key, value in hand.state_dict().items():
            assert torch.equal(compiled[key], value), f"{name}.{key} differs"
    for key, value in runner.raw["F"].state_dict().items():
        assert torch.equal(value, frozen[key]), f"F.{key} moved"
    # F twice (real, fake: the G phase reuses the fake features), each head 3 times (real, shared
    # with R1; fake; G)
    assert runner.forward_calls == {"G": STEPS, "F": 2 * STEPS, "D8": 3 * STEPS, "D4": 3 * STEPS}


def test_plan_shows_the_backbone_frozen(stage_overrides):
    plan = api.plan(GAN, stage_overrides["gan_timm"])
    assert [(p.name, p.trains, p.frozen) for p in plan.phases] == [
        ("D", ("D8", "D4"), ("F",)), ("G", ("G",), ("D4", "D8", "F"))]


def test_feature_extractor_loads_stage0s_exported_classifier(tmp_path):
    """The user path: stage 0 trains a classifier, `composer export --module net` writes it, and
    the features_only block loads the stages it keeps (the rest of the file is left out)."""
    runner = api.runner(STAGE0, cpu=True)
    runner.step()
    file = tmp_path / "net.safetensors"
    api.export(runner, "safetensors", file, module="net")
    gan = api.runner(GAN, [f"modules.F.pretrained={file}"], cpu=True)
    classifier = runner.raw["net"].state_dict()
    loaded = gan.raw["F"].state_dict()
    assert len(loaded) < len(classifier)
    for key, value in loaded.items():
        assert torch.equal(value, classifier[key]), key


def test_both_files_train_a_few_steps(tmp_path, stage_overrides):
    results = api.train(STAGE0, tmp_path / "stage0", QUIET, quiet=True)
    assert results["step"] == 2
    results = api.train(GAN, tmp_path / "gan", [*QUIET, *stage_overrides["gan_timm"]], quiet=True)
    assert results["step"] == 2 and "digits.frechet_ratio" in results
