"""The per-logit losses of recipes/adversarial.py against the papers' formulas, written here
independently in terms of D = sigmoid(logit) and logs (the recipe uses softplus).

Each game has four terms, all minimised: D_real and D_fake by the critic, G by the generator on
fake logits, E (train_real, BiGAN/ALI) by the encoder on real logits, which wants real judged fake.
"""
import pytest
import torch

from composer.recipes.adversarial import LOSSES, GANLoss, adversarial

f64 = torch.float64
LOGITS = torch.tensor([-3.0, -1.2, -0.3, 0.0, 0.4, 1.1, 2.7], dtype=f64)   # no ± pair: a flip shows


def D(logit):
    return torch.sigmoid(logit)


# name -> term -> formula of the raw critic output (logit); papers' notation in the comments
FORMULAS = {
    # Goodfellow et al. 2014, §3 and the non-saturating G of the same paper: D maximises
    # log D(x) + log(1 - D(G(z))); G maximises log D(G(z)). E mirrors G for real (BiGAN).
    "non_saturating": {
        "D_real": lambda r: -torch.log(D(r)),
        "D_fake": lambda f: -torch.log(1 - D(f)),
        "G": lambda f: -torch.log(D(f)),
        "E": lambda r: -torch.log(1 - D(r)),
    },
    # Goodfellow et al. 2014, eq. 1: min_G max_D log D(x) + log(1 - D(G(z))); the BiGAN encoder
    # minimises the same value on its side, log D(x, E(x)) (Donahue et al. 2017, eq. 3).
    "minimax": {
        "D_real": lambda r: -torch.log(D(r)),
        "D_fake": lambda f: -torch.log(1 - D(f)),
        "G": lambda f: torch.log(1 - D(f)),
        "E": lambda r: torch.log(D(r)),
    },
    # Mao et al. 2017, eq. 2 with a = 0 (fake), b = c = 1 (real) on the raw output; the paper's
    # factor 1/2 is not part of the terms (critic_weight: 0.5 gives it, as CycleGAN does).
    "lsgan": {
        "D_real": lambda r: (r - 1) ** 2,
        "D_fake": lambda f: (f - 0) ** 2,
        "G": lambda f: (f - 1) ** 2,
        "E": lambda r: (r - 0) ** 2,
    },
    # Lim & Ye 2017, eq. 6-7; Miyato et al. 2018, eq. 16: D minimises E[max(0, 1 - D(x))] +
    # E[max(0, 1 + D(G(z)))], G minimises -E[D(G(z))].
    "hinge": {
        "D_real": lambda r: torch.clamp(1 - r, min=0),
        "D_fake": lambda f: torch.clamp(1 + f, min=0),
        "G": lambda f: -f,
        "E": lambda r: r,
    },
    # Arjovsky et al. 2017, Algorithm 1: the critic maximises D(x) - D(G(z)), G maximises D(G(z)).
    "wgan": {
        "D_real": lambda r: -r,
        "D_fake": lambda f: f,
        "G": lambda f: -f,
        "E": lambda r: r,
    },
}
TERMS = ("D_real", "D_fake", "G", "E")
CASES = [(name, term) for name in FORMULAS for term in TERMS]


def test_every_registered_loss_has_formulas_here():
    assert set(LOSSES) == set(FORMULAS), "add the paper's formulas of a new adversarial loss to FORMULAS"
    assert all(isinstance(game, GANLoss) for game in LOSSES.values())


@pytest.mark.parametrize("name, term", CASES)
def test_term_matches_the_paper(name, term):
    got = getattr(LOSSES[name], term)(LOGITS)
    torch.testing.assert_close(got, FORMULAS[name][term](LOGITS), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name, term", CASES)
def test_the_logits_tell_a_sign_flip_apart(name, term):
    """A term with its sign flipped, or read on negated logits, would fail
    `test_term_matches_the_paper` on these logits (except where the formula is even: lsgan's
    f² and r²)."""
    formula, fn = FORMULAS[name][term], getattr(LOSSES[name], term)
    want = formula(LOGITS)
    assert not torch.allclose(-fn(LOGITS), want)
    if not torch.allclose(formula(-LOGITS), want):
        assert not torch.allclose(fn(-LOGITS), want)


@pytest.mark.parametrize("name", FORMULAS)
def test_the_recipe_wires_each_term_to_its_logits_and_reduces_patches_per_sample(name):
    nodes = {n.name: n for n in adversarial("gan", critic="D", real="x", fake="fake", loss=name, train_real=True)}
    patches = torch.stack([LOGITS, LOGITS.flip(0)], 1).reshape(-1, 1, 1, 2)   # [B, 1, 1, 2] PatchGAN logits
    sides = {"D_real": "gan.real_logits", "D_fake": "gan.fake_logits", "G": "gan.fake_logits",
             "E": "gan.real_logits"}
    for term in TERMS:
        node = nodes[f"gan.{term}"]
        assert node.inputs == (sides[term],), term
        want = FORMULAS[name][term](patches).reshape(len(patches), -1).mean(1)
        torch.testing.assert_close(node.op(None, patches), want, rtol=1e-12, atol=1e-12)
    assert nodes["gan.D_real"].trains == nodes["gan.D_fake"].trains == ("D",)
    assert nodes["gan.G"].exclude == nodes["gan.E"].exclude == ("D",)
