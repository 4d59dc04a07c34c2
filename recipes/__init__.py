"""Objectives and their update rules. Each recipe expands into graph nodes and tagged loss terms."""
from .adversarial import adversarial
from .reconstruction import reconstruction

RECIPES = {
    "adversarial": adversarial,
    "reconstruction": reconstruction,
}
