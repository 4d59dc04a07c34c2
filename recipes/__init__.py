"""Objectives and their update rules. Each recipe expands into graph nodes and tagged loss terms;
recipes that generate (diffusion) also name how."""
from .adversarial import adversarial
from .denoising import SAMPLE_CHOICES as DENOISING_SAMPLE_CHOICES
from .denoising import denoising
from .denoising import generate as generate_denoising
from .reconstruction import reconstruction

RECIPES = {
    "adversarial": adversarial,
    "reconstruction": reconstruction,
    "denoising": denoising,
}

GENERATORS = {
    "denoising": generate_denoising,
}

SAMPLE_CHOICES = {            # recipe -> sample.* key -> allowed values, checked at build
    "denoising": DENOISING_SAMPLE_CHOICES,
}
