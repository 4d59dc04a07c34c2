"""Classification accuracy of a module's logits on held-out data: a classifier trained beside a
generative model, or DANN's label classifier on the target domain (Ganin et al. 2016), scored on
the test split of the data input the logits are computed from.

    eval.metrics: {accuracy: {logits: cls_target, labels: target.y}}      -> accuracy.top1

The flow runs on every field of that input's held-out split at the same indices (so `labels`
names one of its fields, e.g. `target.y`), with EMA weights where kept and the metric's own
fixed noise seed; `n` caps the samples (default: the whole split), `top` counts a sample right
when its label is among the `top` largest logits.
"""
from __future__ import annotations

import torch

from composer.errors import ComposerError
from composer.graph.nodes import Tensor

SEED_OFFSET = 65432  # the metric's own noise stream, apart from training, sampling and `paired`


def top_k_accuracy(logits: torch.Tensor, labels: torch.Tensor, top: int = 1) -> float:
    """Share of rows of `logits` [N, K] whose label [N] is among its `top` largest entries."""
    if logits.dim() != 2:
        raise ComposerError(f"metric 'accuracy': logits have shape {list(logits.shape[1:])} per sample; "
                            "expected one vector of class logits [K] (name the classifier head, e.g. D(x) then [1])")
    if not 1 <= top <= logits.shape[1]:
        raise ComposerError(f"metric 'accuracy': top={top}, but the logits have {logits.shape[1]} classes; "
                            f"expected 1 <= top <= {logits.shape[1]}")
    labels = labels.reshape(-1)
    if len(labels) != len(logits) or not torch.equal(labels, labels.round()):
        raise ComposerError(f"metric 'accuracy': {len(labels)} labels for {len(logits)} logits; expected one "
                            "integer class label per sample (a data field such as `x.y`)")
    best = logits.topk(top, dim=1).indices
    return float((best == labels.long()[:, None]).any(1).double().mean())


def accuracy(*, runner, logits: Tensor, labels: Tensor, n: int | None = None, top: int = 1) -> dict[str, float]:
    """Accuracy of `logits` [B, K] against integer `labels` on the held-out split of the data
    input the logits read: `{"top1": share}` (`top{k}` with top: k).

    Example: `eval.metrics: {accuracy: {logits: logits, labels: x.y}}`
    """
    from composer.metrics.paired import held_out_feed

    feed = held_out_feed(runner, logits, [logits, labels], n, metric="accuracy")
    generator = torch.Generator().manual_seed(runner.spec.train.seed + SEED_OFFSET)
    values = runner.run_flow(len(next(iter(feed.values()))), [logits, labels], feed, generator)
    return {f"top{top}": top_k_accuracy(*values, top=top)}
