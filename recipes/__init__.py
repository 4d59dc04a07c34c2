"""Objectives and their update rules. Each recipe expands into graph nodes and tagged loss terms
(a list of nodes, or an `Expansion` that also says how the recipe generates), one recipe a file."""
from composer.registry import Registry

from composer.recipes.adversarial import LOSSES, adversarial
from composer.recipes.classification import cross_entropy
from composer.recipes.denoising import denoising
from composer.recipes.feature_matching import feature_matching
from composer.recipes.flow_matching import flow_matching
from composer.recipes.kl import kl_divergence
from composer.recipes.minimise import minimise
from composer.recipes.dsm import WEIGHTINGS
from composer.recipes.penalties import PENALTIES
from composer.recipes.reconstruction import reconstruction
from composer.recipes.samplers import SAMPLERS
from composer.recipes.schedules import SCHEDULES

RECIPES = Registry("recipe", {
    "adversarial": adversarial,
    "reconstruction": reconstruction,
    "denoising": denoising,
    "kl_divergence": kl_divergence,
    "cross_entropy": cross_entropy,
    "feature_matching": feature_matching,
    "flow_matching": flow_matching,
    "minimise": minimise,
})

# the registries this package declares (composer.registry.get finds them here)
REGISTRIES = {"recipes": RECIPES, "samplers": SAMPLERS, "noise_schedules": SCHEDULES, "weightings": WEIGHTINGS,
              "losses": LOSSES, "penalties": PENALTIES}
