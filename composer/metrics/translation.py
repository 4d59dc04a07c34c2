"""Measures for unpaired image-to-image translation (CycleGAN, Zhu et al. 2017).

`label_preservation` follows the FCN-score idea of pix2pix / CycleGAN (Isola et al. 2017 §4.2;
Zhu et al. 2017 §5.1.1): a classifier trained on real images of the *target* domain labels the
translated images; the score is how often it recovers the label of the source image.
`cycle_l1` is the cycle-consistency error ‖x − F(G(x))‖₁ averaged over pixels.
`frechet_ratio_*` is the Fréchet distance of the translations to the real target domain's train
split, in the target classifier's feature space, over that of the target's held-out test split
(`frechet.frechet_ratio`; ≈ 1: as close as real target images the models never saw). The
translated images are the held-out split's, so they keep its class proportions, like the
baseline's rows (generated samples, drawn at random, are scored with `frechet_ratio_iid`).
`translation` is the `eval.metrics` entry: it runs a trained graph's flow on the held-out test
split of both domains and reports both measures in both directions.
"""
from __future__ import annotations

import torch

from composer.errors import ComposerError


def label_preservation(translated: torch.Tensor, labels: torch.Tensor, classifier) -> float:
    """Share of `translated` images whose predicted class (`classifier.predict`) equals `labels`."""
    if len(translated) != len(labels) or len(labels) == 0:
        raise ComposerError(
            f"label_preservation: {len(translated)} images and {len(labels)} labels; expected equal, > 0"
        )
    predicted = classifier.predict(translated).cpu()
    return float((predicted == labels.cpu()).double().mean())


def cycle_l1(x: torch.Tensor, reconstruction: torch.Tensor) -> float:
    """Mean absolute difference between images and their round-trip reconstructions."""
    if x.shape != reconstruction.shape:
        raise ComposerError(f"cycle_l1: shapes differ, {tuple(x.shape)} vs {tuple(reconstruction.shape)}")
    return float((x.detach().cpu().double() - reconstruction.detach().cpu().double()).abs().mean())


def target_classifier(spec, item):
    """The judge of images translated *into* the domain of data input `item`: the project's
    classifier of that domain (`domain_classifier` for `digit_styles`, `digits_classifier` for
    `digits`), or None for sources without one (user folders)."""
    from composer.metrics.digits_classifier import digits_classifier, domain_classifier

    if item.target == "digit_styles":
        args = item.args
        return domain_classifier(args.get("domain", "A"), args.get("style", "thick"),
                                 args.get("size", 16), args.get("seed", 0))
    if item.target == "digits":
        return digits_classifier(item.args.get("size", 8))
    return None


def translation(*, runner, A: str, B: str, A_to_B: str, B_to_A: str, rec_A: str | None = None,
                rec_B: str | None = None, n: int | None = None, frechet: bool = False) -> dict[str, float]:
    """Translate the held-out test split of both domains with the trained flow (EMA weights
    where kept) and score it.

    A, B name the data inputs of the two domains; A_to_B, B_to_A the flow tensors translating
    them (computed from A, resp. B, alone); rec_A, rec_B the round trips. Reports `A_to_B` and
    `B_to_A`, the label preservation judged by the classifier of the target domain;
    `A_to_B_untranslated` and `B_to_A_untranslated`, the same classifiers on the untranslated
    images (the score of doing nothing); `A_to_B_ideal` and `B_to_A_ideal`, on the exact
    translations where the task knows them (`digit_styles`: the judge's ceiling); with
    `frechet: true`, `frechet_ratio_A_to_B` and `frechet_ratio_B_to_A`, the translations against
    the real target domain; and `cycle_l1_A`, `cycle_l1_B`, the round-trip errors.
    Label preservation needs a labelled digits source (`digits`, `digit_styles`); for other
    sources only the cycle errors are reported. `n` caps the test images per domain.
    """
    generator = torch.Generator().manual_seed(runner.spec.train.seed + 54321)
    results: dict[str, float] = {}
    for direction, source, target, out, rec in (("A_to_B", A, B, A_to_B, rec_A), ("B_to_A", B, A, B_to_A, rec_B)):
        results.update(_direction(runner, direction, source, target, out, rec, n, generator, frechet))
    return results


def _direction(runner, direction, source, target, out, rec, n, generator, frechet) -> dict[str, float]:
    from composer.data.inputs import reference_table

    spec, item = runner.spec, _data_input(runner, source, [out, rec])
    table = reference_table(spec, item)
    x = table.x[:n] if n else table.x
    values = runner.run_flow(len(x), [out] + ([rec] if rec else []), {source: x}, generator)
    results = {}
    target_item = _data_input(runner, target, [])
    judge = target_classifier(spec, target_item)
    if judge is not None and table.y is not None:
        y = table.y[:len(x)]
        results[direction] = label_preservation(values[0], y, judge)
        results[f"{direction}_untranslated"] = label_preservation(x, y, judge)
        ideal = ideal_translation(item, target_item)
        if ideal is not None:
            results[f"{direction}_ideal"] = label_preservation(ideal[:len(x)], y, judge)
        if frechet:
            results[f"frechet_ratio_{direction}"] = target_frechet_ratio(values[0], spec, target_item, judge)
    if rec:
        results[f"cycle_l1_{direction[0]}"] = cycle_l1(x, values[1])
    return results


def ideal_translation(item, target_item) -> torch.Tensor | None:
    """The exact translation of `item`'s held-out images into `target_item`'s domain where the
    task knows it (the two domains of one `digit_styles` task: `digit_styles.counterparts`),
    else None. The judge's score of it is the ceiling of label preservation."""
    import inspect

    from composer.data.digit_styles import counterparts

    if item.target != "digit_styles" or target_item.target != "digit_styles":
        return None
    defaults = {k: p.default for k, p in inspect.signature(counterparts).parameters.items()}
    source, target = ({**defaults, **i.args, "split": "test"} for i in (item, target_item))
    if source["domain"] == target["domain"] or {**source, "domain": None} != {**target, "domain": None}:
        return None
    return counterparts(**source).x


def target_frechet_ratio(translated: torch.Tensor, spec, target_item, judge) -> float:
    """`frechet.frechet_ratio` of `translated` in `judge`'s features: the target input's train
    table (its `split` as declared) is the reference, its held-out split the baseline."""
    from composer.data.inputs import load_table, reference_table
    from composer.metrics.frechet import frechet_ratio

    train, held_out = load_table(spec, target_item), reference_table(spec, target_item)
    ratio, _ = frechet_ratio(judge.features(translated), judge.features(held_out.x), judge.features(train.x))
    return ratio


def _data_input(runner, name: str, outputs: list):
    """The data input `name`, checking that each of `outputs` is computed from it alone."""
    item = next((i for i in runner.spec.inputs if i.name == name and i.kind == "data"), None)
    if item is None:
        names = [i.name for i in runner.spec.inputs if i.kind == "data"]
        raise ComposerError(f"metric 'translation': '{name}' is not a data input (expected one of {names})")
    for output in (o for o in outputs if o):
        if output not in runner.graph.nodes:
            raise ComposerError(f"metric 'translation': '{output}' is not a tensor of the graph")
        if runner.graph.data_inputs(output) != {name}:
            raise ComposerError(f"metric 'translation': '{output}' is computed from "
                                f"{sorted(runner.graph.data_inputs(output))}, expected from '{name}' alone")
    return item
