"""Feature matching (Salimans et al. 2016, sec. 3.1): the generator matches the mean of a critic's
intermediate features on real data, ||E f(x) - E f(G(z))||^2, instead of (or besides) fooling it.

`features` is a module (usually sharing layers with the critic, or the critic's trunk loaded
with its weights); the term moves what produced `fake`, never `features`. The statistic is over
the batch: every sample carries the batch value, so the mean the runtime takes is that value.
"""
from __future__ import annotations

import torch

from composer.graph.nodes import Loss, Node, Tensors
from composer.ops.flow import call_output, module_output


def mean_feature_distance(real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """||mean_batch f(real) - mean_batch f(fake)||^2, repeated for every sample ([B])."""
    gap = real.detach().float().flatten(1).mean(0) - fake.float().flatten(1).mean(0)
    return gap.pow(2).sum().expand(fake.shape[0])


def feature_matching(name, /, *, features: str, real: Tensors, fake: Tensors) -> list[Node]:
    """Call `features` (a module, or `D[i]`: output i of a module with several heads) on `real`
    and on `fake` (tensor names or lists, as the critic takes them) and add the term `NAME.G`:
    the squared distance of their batch means."""
    real = (real,) if isinstance(real, str) else tuple(real)
    fake = (fake,) if isinstance(fake, str) else tuple(fake)
    return [
        *call_output(f"{name}.real_features", features, real),
        *call_output(f"{name}.fake_features", features, fake),
        Node(f"{name}.G", "term", "feature_matching", (f"{name}.real_features", f"{name}.fake_features"),
             op=Loss(mean_feature_distance, "feature_matching"), exclude=(module_output(features)[0],)),
    ]
