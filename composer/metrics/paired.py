"""Measures for paired translation and reconstruction (pix2pix, Isola et al. 2017; BiGAN / ALI,
Donahue et al. 2017, Dumoulin et al. 2017).

`paired` runs a trained graph's flow on the held-out test split of the data it reads, every field
of a data input at the same indices (a pair's input, its target and its label belong together),
and reports:

- `l1`: mean |output − target| over pixels, the paper's L1 to the ground truth (Isola et al. §4);
- `label_preservation`: the FCN-score idea of Isola et al. §4.2 with the project's digits
  classifier: how often the classifier, run on `output`, recovers the true label. For BiGAN,
  output = G(E(x)) and the score measures how much of x's class survives the round trip
  through the latent (Donahue et al. §4 show such reconstructions are semantic, not exact);
- `untranslated_label_preservation`: the same classifier on `input` itself, the score of
  doing nothing (for a reconstruction, where input and output live in one domain, the score of a
  perfect one).
"""
from __future__ import annotations

import torch

from composer.errors import ComposerError
from composer.graph.nodes import Tensor

SEED_OFFSET = 54321  # the metric's own noise stream, apart from training and sampling


def mean_l1(output: torch.Tensor, target: torch.Tensor) -> float:
    """Mean absolute difference over every pixel of every sample."""
    if output.shape != target.shape:
        raise ComposerError(f"metric 'paired': output {tuple(output.shape)} and target "
                            f"{tuple(target.shape)} differ in shape")
    return float((output.detach().cpu().double() - target.detach().cpu().double()).abs().mean())


def agreement(images: torch.Tensor, labels: torch.Tensor, classifier) -> float:
    """Share of `images` whose predicted class (`classifier.predict`) equals `labels`."""
    if len(images) != len(labels) or len(labels) == 0:
        raise ComposerError(f"metric 'paired': {len(images)} images and {len(labels)} labels; "
                            "expected equal numbers, > 0")
    return float((classifier.predict(images).cpu() == labels.cpu().long()).double().mean())


def paired(*, runner, input: Tensor, output: Tensor, target: Tensor | None = None,
           labels: Tensor | None = None, n: int | None = None) -> dict[str, float]:
    """Score `output` against `target` (l1) and `labels` (label preservation, with the
    untranslated `input` as the baseline) on the held-out data, EMA weights where kept.

    Every tensor named must be computed from the data inputs that `output` reads (e.g. input:
    pair, output: fake, target: pair.target, labels: pair.y). `n` caps the held-out samples
    (default: the whole test split). Noise the flow reads is drawn from a fixed seed.
    """
    from composer.metrics.digits_classifier import classifier_for

    names = [input, output] + [t for t in (target, labels) if t is not None]
    feed = held_out_feed(runner, output, names, n)
    generator = torch.Generator().manual_seed(runner.spec.train.seed + SEED_OFFSET)
    values = dict(zip(names, runner.run_flow(len(next(iter(feed.values()))), names, feed, generator)))
    results: dict[str, float] = {}
    if target is not None:
        results["l1"] = mean_l1(values[output], values[target])
    if labels is not None:
        judge = classifier_for(values[output])
        results["label_preservation"] = agreement(values[output], values[labels], judge)
        results["untranslated_label_preservation"] = agreement(values[input], values[labels], judge)
    return results


def held_out_feed(runner, output: str, names: list, n: int | None, metric: str = "paired") -> dict[str, torch.Tensor]:
    """Every field of every data input `output` reads, from its held-out split, the first `n`
    samples; checks that each of `names` is computed from those inputs alone."""
    from composer.data.inputs import reference_table

    graph, spec = runner.graph, runner.spec
    sources = set(graph.data_inputs(output))
    if not sources:
        raise ComposerError(f"metric '{metric}': '{output}' reads no data input; it needs held-out data")
    for name in names:
        extra = graph.data_inputs(name) - sources
        if extra:
            raise ComposerError(f"metric '{metric}': '{name}' reads {sorted(extra)}, which '{output}' does "
                                f"not; every tensor must come from the same held-out draw as '{output}'")
    feed = {}
    for source in sorted(sources):
        for field, column in reference_table(spec, spec.input(source)).columns().items():
            node = source if field == "x" else f"{source}.{field}"
            if node in graph.nodes:
                feed[node] = column[:n] if n else column
    return feed
