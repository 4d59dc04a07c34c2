"""The `class_agreement` metric: does a class-conditional generator draw the class it is asked for?

Labels 0 .. classes-1 are requested evenly (`arange(n) % classes`), fed to the graph tensor
`labels` (the categorical noise a cGAN's generator reads, Mirza & Osindero 2014; or the condition
of a denoising objective, e.g. `x0.y`), and the project's digits classifier
(`digits_classifier.py`) judges the samples -- the "classification accuracy of generated samples"
of conditional-GAN evaluations (e.g. Odena et al. 2017, AC-GAN §4.1; Miyato & Koyama 2018 §5).

- `agreement`: share of samples predicted as the class they were requested for;
- `agreement_min_class`: that share in the worst class (`worst_class` names it), so one class
  that is never drawn correctly cannot hide behind nine good ones;
- `frechet`: Fréchet distance (Heusel et al. 2017) of the samples to the held-out real digits in
  the classifier's feature space, as the `digits` metric computes it.

With `permute: true` the labels are an unsupervised code, e.g. InfoGAN's categorical latent (Chen
et al. 2016), whose values name no class: each code value is first matched one-to-one to a class
so that the matched pairs agree most often (the Hungarian algorithm, scipy's
`linear_sum_assignment`), the "unsupervised clustering accuracy" of InfoGAN §7.1. The mapping
found is reported as `code_0` ... (the class each code value draws).

For diffusion with classifier-free guidance (Ho & Salimans 2022) `guidance` lists the scales to
compare; with several, every key carries its scale: `agreement@g0`, `frechet@g2`, ... Every
scale draws from the same noise, so the comparison is paired.
"""
from __future__ import annotations

import networkx as nx
import torch

from composer.errors import ComposerError
from composer.data.inputs import reference_table
from composer.metrics.digits_classifier import classifier_for
from composer.metrics.digits_quality import reference_digits
from composer.metrics.frechet import frechet_distance
from composer.graph.nodes import Tensor


def requested_labels(n: int, classes: int) -> torch.Tensor:
    """0, 1, ..., classes-1, 0, 1, ... : `n` int64 labels, every class requested n/classes times."""
    if n < classes or classes < 1:
        raise ComposerError(f"metric 'class_agreement': n={n} samples for classes={classes}; "
                            f"expected n >= classes >= 1")
    return torch.arange(n) % classes


def agreement_scores(predicted: torch.Tensor, requested: torch.Tensor, classes: int) -> dict:
    """Overall and per-class share of `predicted == requested`; the worst class and its share."""
    hits = (predicted.cpu() == requested.cpu()).double()
    per_class = torch.stack([hits[requested == c].mean() for c in range(classes)])
    worst = int(per_class.argmin())
    return {"agreement": float(hits.mean()), "agreement_min_class": float(per_class[worst]),
            "worst_class": worst}


def best_matching(predicted: torch.Tensor, codes: torch.Tensor, classes: int) -> torch.Tensor:
    """[classes] int64: the class matched to each code value, one-to-one, maximising how many
    samples drawn with a code are predicted as its class (Hungarian algorithm)."""
    from scipy.optimize import linear_sum_assignment   # 0.3 s to import: only when a metric permutes

    counts = torch.bincount(codes.cpu() * classes + predicted.cpu(), minlength=classes * classes)
    code_rows, matched = linear_sum_assignment(counts.view(classes, classes).numpy(), maximize=True)
    return torch.as_tensor(matched[code_rows.argsort()], dtype=torch.int64)


def score_samples(samples: torch.Tensor, requested: torch.Tensor, classes: int, reference: torch.Tensor,
                  classifier=None, permute: bool = False) -> dict:
    """`agreement_scores` of the classifier's predictions (after `best_matching` of the codes
    with `permute`), and `frechet` of the samples' features to those of the real `reference` images."""
    if samples.dim() != 4 or len(samples) != len(requested):
        raise ComposerError(f"metric 'class_agreement': expected {len(requested)} images [N, C, H, W], "
                            f"got {tuple(samples.shape)}")
    classifier = classifier or classifier_for(samples)
    predicted = classifier.predict(samples).cpu()
    matched = best_matching(predicted, requested, classes) if permute else torch.arange(classes)
    scores = agreement_scores(predicted, matched[requested], classes)
    if permute:
        scores.update({f"code_{code}": int(c) for code, c in enumerate(matched)})
    scores["frechet"] = frechet_distance(classifier.features(samples), classifier.features(reference))
    return scores


def class_agreement(*, runner, labels: Tensor, output: Tensor | None = None, n: int = 1000, classes: int = 10,
                    guidance: list | None = None, permute: bool = False) -> dict[str, float]:
    """Generate `n` samples for evenly requested labels fed to `labels` -- the flow tensor
    `output` (GANs), or the generating objective's sampler when `output` is None and
    `sample.objective` is set, once per scale in `guidance` (default: `sample.guidance`) -- and
    score them (module docstring)."""
    spec = runner.spec
    from_recipe = output is None and bool(spec.sample.objective)
    scales = _scales(spec, from_recipe, guidance)
    if not isinstance(permute, bool):
        raise ComposerError(f"metric 'class_agreement': permute takes true or false, got {permute!r}")
    _check_conditioned(runner, labels, output or spec.sample.objective or spec.sample.output)
    requested = requested_labels(n, classes)
    results: dict[str, float] = {}
    reference = None
    for scale in scales:
        options = {"guidance": scale} if from_recipe else {}
        samples = runner.generate(n, output=output, inputs={labels: requested}, **options)
        if reference is None:
            reference = _reference_images(runner, samples.shape[-1])
        suffix = f"@g{scale:g}" if len(scales) > 1 else ""
        scores = score_samples(samples, requested, classes, reference, permute=permute)
        results.update({f"{key}{suffix}": value for key, value in scores.items()})
    return results


def _scales(spec, from_recipe: bool, guidance: list | None) -> list:
    """The guidance scales to score: `guidance`, else the spec's; [None] for flow samples."""
    if not from_recipe:
        if guidance is not None:
            raise ComposerError("metric 'class_agreement': guidance applies to a generating objective "
                                "(sample.objective); this graph samples a flow tensor")
        return [None]
    if guidance is None:
        return [spec.sample.options.get("guidance", 0.0)]
    if not isinstance(guidance, list) or not guidance or not all(
            isinstance(g, (int, float)) and not isinstance(g, bool) and g >= 0 for g in guidance):
        raise ComposerError(f"metric 'class_agreement': guidance takes a non-empty list of scales >= 0, "
                            f"got {guidance!r}")
    return list(guidance)


def _check_conditioned(runner, labels: str, generated) -> None:
    """`labels` must feed what is generated (a flow tensor, or a node of the objective)."""
    dag = runner.graph.dag
    below = nx.descendants(dag, labels)
    targets = [generated] if isinstance(generated, str) else list(generated or [])
    if not any(t in below or any(d.startswith(f"{t}.") for d in below) for t in targets):
        raise ComposerError(f"metric 'class_agreement': '{labels}' does not feed {targets}: "
                            "the samples would not depend on the requested labels")


def _reference_images(runner, size: int) -> torch.Tensor:
    """The held-out real digits at the samples' size (split settings of the reference input)."""
    spec = runner.spec
    name = spec.eval.reference or next((i.name for i in spec.inputs if i.kind == "data"), None)
    item = spec.input(name) if name else None
    table = reference_table(spec, item) if item is not None and item.kind == "data" else None
    return reference_digits(table, size).x if table is not None else _default_digits(size)


def _default_digits(size: int) -> torch.Tensor:
    from composer.data.digits import digits

    return digits(split="test", size=size).x
