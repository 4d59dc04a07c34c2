"""Small graph specs built in Python, shared by the tests."""
import copy

TINY_RUN = ["train.steps=2", "train.batch=8", "train.log_every=1", "train.sample_every=1",
            "train.checkpoint_every=1", "sample.n=16", "eval.n=64"]
"""Overrides for a two-step smoke run that logs, samples and checkpoints at every step."""


def small_dcgan(**train):
    data = {
        "name": "small_dcgan",
        "inputs": {"real": {"source": "digits", "size": 8}, "z": {"noise": "normal", "shape": [8]}},
        "modules": {
            "G": {"block": "DCGANGenerator", "image_size": 8, "channels": 1, "latent": 8, "width": 8},
            "D": {"block": "DCGANDiscriminator", "image_size": 8, "channels": 1, "width": 8},
        },
        "flow": {"fake": "G(z)"},
        "objectives": {"gan": {"recipe": "adversarial", "critic": "D", "real": "real", "fake": "fake"}},
        "optimizers": {
            "D": {"params": ["D"], "lr": 2e-4, "betas": [0.5, 0.999]},
            "G": {"params": ["G"], "lr": 2e-4, "betas": [0.5, 0.999]},
        },
        "schedule": {"order": ["D", "G"]},
        "train": {"steps": 4, "batch": 8, **train},
        "sample": {"output": "fake", "n": 16},
    }
    return copy.deepcopy(data)


def small_2d_gan(**objective):
    data = {
        "name": "small_2d",
        "inputs": {"real": {"source": "ring", "n": 2000}, "z": {"noise": "normal", "shape": [4]}},
        "modules": {
            "G": {"block": "MLP", "in_features": 4, "hidden": 16, "depth": 2, "out_features": 2},
            "D": {"block": "MLP", "in_features": 2, "hidden": 16, "depth": 2, "out_features": 1},
        },
        "flow": {"fake": "G(z)"},
        "objectives": {"gan": {"recipe": "adversarial", "critic": "D", "real": "real", "fake": "fake",
                               **objective}},
        "optimizers": {"D": {"params": ["D"], "lr": 1e-3}, "G": {"params": ["G"], "lr": 1e-3}},
        "train": {"steps": 3, "batch": 16},
        "sample": {"output": "fake", "n": 32},
        "eval": {"n": 200, "metrics": {"mixture": {}}},
    }
    return copy.deepcopy(data)


def tiny_denoiser(**train):
    """A denoising (VP-SDE DSM) graph on the 25-mode grid: one small TimeMLP."""
    data = {
        "name": "tiny_denoiser",
        "inputs": {"x0": {"source": "grid", "n": 256}},
        "modules": {"eps_net": {"block": "TimeMLP", "features": 2, "hidden": 16, "depth": 1, "time_dim": 8}},
        "objectives": {"dsm": {"recipe": "denoising", "data": "x0", "model": "eps_net"}},
        "optimizers": {"eps_net": {"params": ["eps_net"], "lr": 1e-3}},
        "train": {"steps": 4, "batch": 16, **train},
        "sample": {"objective": "dsm", "n": 8},
    }
    return copy.deepcopy(data)
