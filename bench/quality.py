"""Sample quality of the shipped CPU graphs over seeds, beside the published numbers (issue 9).

Trains each graph once per seed as trials of composer's sweep (`composer run FILE --out
RUNS/NAME/seed_S train.seed=S`, one process at a time, composer.run.sweep.run_trial), reads the metrics its `eval` section declares from `eval.json`, and writes a
Markdown table (mean ± standard error over seeds, then every seed's value) and PNG figures:

- 2D mixtures (PacGAN/VEEGAN protocol, 2,500 samples, 3σ): modes, high-quality fraction, reverse
  KL, mode width / σ (mean and worst) and the sliced Wasserstein distance to fresh data (in σ),
  beside PacGAN's Table 1 and VEEGAN's rows; a scatter plot over the true modes (3σ circles);
- digits: Fréchet ratio to the real-vs-real baseline, class shares, confident fraction; a grid;
- conditional digits (graphs with `class_agreement`): the requested class kept (overall and the
  worst class) at the graph's sample guidance, beside the digits columns;
- CycleGAN: label preservation both ways beside the untranslated images and the exact
  translations (the judge's ceiling), Fréchet ratio of the translations to the real target
  domain; input | translation | reconstruction triptychs.

    python bench/quality.py                                   # 2D graphs, 10 seeds
    python bench/quality.py --graphs gan_ring --seeds 3
    python bench/quality.py --graphs dcgan diffusion --seeds 1 --out bench/results/digits.md
    python bench/quality.py --graphs gan_ring:10 dcgan:3                # seeds per graph
    python bench/quality.py --reuse ...                       # score runs already trained
    python bench/quality.py --smoke     # CI: gan_ring, 1 seed, 20 steps, in a temporary folder

Train time is the wall time of the run and its CPU time (user + system, all threads), which
does not grow with the load of a shared machine.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
MIXTURES = ("gan_ring", "gan_grid", "diffusion_2d")
OVERRIDES = {"cyclegan": ["eval.metrics.translation.frechet=true"]}
SMOKE = {"graphs": ["gan_ring"], "seeds": 1, "first_seed": 0, "reuse": False}
SMOKE_TRAIN = ["train.steps=20", "train.log_every=10"]

# PacGAN (Lin et al. 2018) Table 1 and VEEGAN (Srivastava et al. 2017) Table 1, as quoted there:
# (modes, high-quality %, reverse KL); VEEGAN reports no reverse KL.
PUBLISHED = {
    "ring": [("GAN (PacGAN Table 1)", 6.3, 98.2, 0.45), ("PacGAN2", 7.9, 95.6, 0.07),
             ("PacGAN4", 7.8, 95.9, 0.07), ("VEEGAN", 8.0, 52.9, None)],
    "grid": [("GAN (PacGAN Table 1)", 17.3, 94.8, 0.70), ("PacGAN2", 23.8, 91.3, 0.13),
             ("PacGAN4", 24.8, 93.6, 0.04), ("VEEGAN", 24.6, 40.0, None)],
}
DIGIT_COLUMNS = [("digits.confident_fraction", "confident %", "{:.1f}", 100),
                 ("digits.frechet_ratio", "Fréchet ratio", "{:.2f}", 1),
                 ("digits.class_share_min", "min class %", "{:.1f}", 100),
                 ("digits.class_share_max", "max class %", "{:.1f}", 100)]
COLUMNS = {  # eval.json key -> (column title, format, scale)
    "mixture": [("mixture.modes", "modes", "{:.1f}", 1), ("mixture.hq_fraction", "high quality %", "{:.1f}", 100),
                ("mixture.reverse_kl", "reverse KL", "{:.3f}", 1), ("mixture.width_mean", "width / σ", "{:.3f}", 1),
                ("mixture.width_worst", "worst width / σ", "{:.3f}", 1),
                ("mixture.sliced_wasserstein_sigma", "sliced W₂ / σ", "{:.2f}", 1)],
    "class_agreement": [("class_agreement.agreement", "requested class kept %", "{:.1f}", 100),
                        ("class_agreement.agreement_min_class", "worst class kept %", "{:.1f}", 100),
                        *DIGIT_COLUMNS],
    "digits": [("digits.class_coverage", "classes", "{:.1f}", 1), *DIGIT_COLUMNS[:2],
               ("digits.frechet_distance", "Fréchet (test)", "{:.2f}", 1), *DIGIT_COLUMNS[2:]],
    "translation": [("translation.A_to_B", "A→B kept %", "{:.1f}", 100),
                    ("translation.A_to_B_untranslated", "A untranslated %", "{:.1f}", 100),
                    ("translation.A_to_B_ideal", "A exactly translated %", "{:.1f}", 100),
                    ("translation.B_to_A", "B→A kept %", "{:.1f}", 100),
                    ("translation.B_to_A_untranslated", "B untranslated %", "{:.1f}", 100),
                    ("translation.B_to_A_ideal", "B exactly translated %", "{:.1f}", 100),
                    ("translation.frechet_ratio_A_to_B", "Fréchet ratio A→B", "{:.2f}", 1),
                    ("translation.frechet_ratio_B_to_A", "Fréchet ratio B→A", "{:.2f}", 1)],
}


def kind(results: dict) -> str:
    """The table a graph's results go to; an unsupervised code scored by `class_agreement`
    (permute, e.g. InfoGAN) keeps an unconditional graph among the digits."""
    if "class_agreement.code_0" in results:
        return "digits"
    return next(k for k in COLUMNS if any(key.startswith(k + ".") for key in results))


def train(name: str, seed: int, runs: Path, reuse: bool, extra: list[str]) -> dict:
    """Train `graphs/NAME.yaml` with `train.seed=SEED` as one trial of composer's sweep (its own
    process, timed; or, with `reuse`, take the run already there); its metrics, evaluated afresh
    from the last checkpoint with the graph file's current `sample` and `eval` sections, and its
    times."""
    from composer.run.sweep import Trial, run_trial

    out = runs / name / f"seed_{seed}"
    trial = Trial(f"seed_{seed}", {}, seed, out, (*OVERRIDES.get(name, []), *extra))
    if not (reuse and (out / "eval.json").exists()):
        if out.exists():
            shutil.rmtree(out)           # trained again as the graph file is now
        run_trial(ROOT / "graphs" / f"{name}.yaml", trial, runs / "logs")
    return {**evaluate(open_as_shipped(name, seed, out, extra)), **times_of(out)}


def times_of(run_dir: Path) -> dict:
    """Wall and CPU seconds of the trial and the load average at its end (a run trained by an
    earlier version of this script kept them in bench_times.json)."""
    swept = run_dir / "sweep_times.json"
    if swept.is_file():
        times = json.loads(swept.read_text())
        return {"wall_s": times["wall_seconds"], "cpu_s": times["cpu_seconds"], "load": times["load"]}
    return json.loads((run_dir / "bench_times.json").read_text())


def open_as_shipped(name: str, seed: int, run_dir: Path, extra: list[str]):
    """A Runner built from `graphs/NAME.yaml` as it is now, with the weights of `run_dir`'s last
    checkpoint. A run trained with other training keys is refused: only `sample`, `eval` and the
    keys that do not change training (`train.UNTRAINED`) may differ, so a reused run scores the
    graph file as shipped."""
    import yaml

    from composer import api
    from composer.run import checkpoint
    from composer.run.trainer import spec_changes

    threads = [] if any(o.startswith("train.threads=") for o in extra) else ["train.threads=1"]
    spec = api.load(ROOT / "graphs" / f"{name}.yaml",     # each key once: a repeated override is an error
                    [f"train.seed={seed}", *OVERRIDES.get(name, []), *extra, *threads])
    changes = spec_changes(yaml.safe_load((run_dir / "spec.yaml").read_text()) or {}, spec.data)
    if changes:
        raise SystemExit(f"{run_dir} was trained with another graph file ({'; '.join(changes)}): "
                         "train it again (without --reuse)")
    run = api.runner(spec)
    checkpoint.load_latest(run, run_dir, resume=False)
    return run


def evaluate(run) -> dict:
    """The metrics the graph declares, on fresh samples from the run's (EMA) weights; a metric
    scored at several guidance scales (`KEY@gS`) is also given under `KEY` at the graph's own
    `sample.guidance`, the scale it samples with."""
    from composer import api

    results = api.evaluate(run)
    suffix = f"@g{run.spec.sample.options.get('guidance', 0.0):g}"
    return {**results, **{k[:-len(suffix)]: v for k, v in results.items() if k.endswith(suffix)}}


def mean_se(values: list[float]) -> tuple[float, float]:
    """Mean and standard error (sample std / √n; 0 for one value)."""
    array = np.asarray(values, dtype=float)
    return float(array.mean()), float(array.std(ddof=1) / math.sqrt(len(array))) if len(array) > 1 else 0.0


def graph_rows(name: str, per_seed: list[dict]) -> list[str]:
    """One mean ± SE row and one row listing every seed's value, in the columns of its kind."""
    columns = COLUMNS[kind(per_seed[0])]
    mean_cells, seed_cells = [], []
    for key, _, fmt, scale in columns + [("cpu_s", "", "{:.0f}", 1 / 60), ("wall_s", "", "{:.0f}", 1 / 60)]:
        values = [r[key] * scale for r in per_seed]
        mean, se = mean_se(values)
        mean_cells.append(f"{fmt.format(mean)} ± {fmt.format(se)}" if len(values) > 1 else fmt.format(mean))
        seed_cells.append(", ".join(fmt.format(v) for v in values))
    seeds = len(per_seed)
    return [f"| `{name}.yaml` ({seeds} seed{'s' * (seeds > 1)}) | " + " | ".join(mean_cells) + " |",
            f"| every seed | " + " | ".join(seed_cells) + " |"]


def table(kind_name: str, rows: list[str], published: str | None) -> list[str]:
    titles = [title for _, title, _, _ in COLUMNS[kind_name]] + ["CPU min", "wall min"]
    lines = ["| graph | " + " | ".join(titles) + " |", "|---|" + "---:|" * len(titles), *rows]
    for source in ([published] if published else []):
        for label, modes, hq, kl in PUBLISHED[source]:
            cells = [str(modes), str(hq), "—" if kl is None else f"{kl:.2f}"] + [""] * (len(titles) - 3)
            lines.append(f"| {label}, {source} | " + " | ".join(cells) + " |")
    return lines


def exact_reference(source: str) -> list[str]:
    """The row of 2,500 exact samples: what an ideal generator scores (sampling noise included)."""
    from composer.data.mixtures import grid, ring
    from composer.metrics.mixture import PROTOCOL_SAMPLES, mixture

    make = {"ring": ring, "grid": grid}[source]
    per_seed = [{f"mixture.{k}": v for k, v in mixture(make(n=PROTOCOL_SAMPLES, seed=s).x, make(n=10)).items()}
                | {"cpu_s": 0.0, "wall_s": 0.0} for s in range(1, 11)]
    row = graph_rows(source, per_seed)[0]
    return [row.replace(f"`{source}.yaml` (10 seeds)", f"exact {source} samples (10 draws)")]


def real_digit_rows() -> list[str]:
    """The `digits` metric of the real held-out digits at 8×8 and 16×16: the judge's confidence in
    real digits it never saw, and the Fréchet ratio of a stratified split (a random draw of real
    digits scores 1 by construction of the baseline)."""
    from composer.data.digits import digits
    from composer.metrics.digits_quality import digit_quality

    rows = []
    for size in (8, 16):
        scores = digit_quality(digits(split="test", size=size).x, digits(split="train", size=size))
        row = graph_rows("real", [{f"digits.{k}": v for k, v in scores.items()} | {"cpu_s": 0.0, "wall_s": 0.0}])[0]
        rows.append(row.replace("`real.yaml` (1 seed)", f"held-out test digits, {size}×{size} (stratified by class)"))
    return rows


def figure(name: str, run, out: Path) -> Path:
    """A scatter over the true modes (2D), a digit grid, or translation triptychs (the graph's
    `sample.output`), from the trained run's EMA weights."""
    from composer import api

    samples = api.sample(run, 2500 if name in MIXTURES else None)
    path = out / f"{name}_seed{run.spec.train.seed}.png"
    if name in MIXTURES:
        return scatter(samples, run, path)
    return api.write_samples(run, samples, path)


def scatter(samples: torch.Tensor, run, path: Path) -> Path:
    """Left: the samples over the true modes (3σ circles). Right: every sample's offset from its
    nearest mode in σ units, with the 1σ and 3σ circles of the true modes: a shrunk or widened
    mode shows at a glance, which the left view cannot at σ = 0.01."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from composer.run.evaluate import reference_table_of

    info = reference_table_of(run).info
    centers, std = np.asarray(info["centers"]), float(info["std"])
    x = samples.detach().cpu().double().numpy()
    nearest = np.linalg.norm(x[:, None, :] - centers[None], axis=2).argmin(axis=1)
    offsets = (x - centers[nearest]) / std
    figure, (left, right) = plt.subplots(1, 2, figsize=(8, 4), dpi=100)
    left.scatter(x[:, 0], x[:, 1], s=1, alpha=0.4, color="tab:blue")
    for c in centers:
        left.add_patch(plt.Circle(c, 3 * std, fill=False, color="tab:red", lw=0.8))
    half = np.abs(centers).max() * 1.25 + 3 * std
    left.set(xlim=(-half, half), ylim=(-half, half), aspect="equal", title=f"{run.spec.name}: 2,500 samples")
    right.scatter(offsets[:, 0], offsets[:, 1], s=1, alpha=0.3, color="tab:blue")
    for radius in (1, 3):
        right.add_patch(plt.Circle((0, 0), radius, fill=False, color="tab:red", lw=0.8))
    right.set(xlim=(-5, 5), ylim=(-5, 5), aspect="equal", title="offset from nearest mode / σ (1σ, 3σ)")
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)
    return path


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--graphs", nargs="+", default=list(MIXTURES),
                        help="graph names, each optionally NAME:SEEDS (its own number of seeds)")
    parser.add_argument("--seeds", type=int, default=10, help="train seeds 0..N-1 (graphs without :SEEDS)")
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--runs", default=str(ROOT / "runs" / "quality"))
    parser.add_argument("--figures", default=str(RESULTS))
    parser.add_argument("--out", default=str(RESULTS / "quality.md"))
    parser.add_argument("--reuse", action="store_true", help="score runs already trained instead of retraining")
    parser.add_argument("--smoke", action="store_true", help="one 2D graph, 1 seed, 20 steps, a temporary folder (CI)")
    parser.add_argument("overrides", nargs="*", help="k=v overrides for every graph")
    args = parser.parse_args(argv)
    if not args.smoke:
        return run_all(args)
    with tempfile.TemporaryDirectory() as tmp:
        vars(args).update(SMOKE, runs=tmp, figures=tmp, out=str(Path(tmp) / "quality.md"),
                          overrides=[*SMOKE_TRAIN, *args.overrides])
        return run_all(args)


def run_all(args) -> int:
    """Train (or reuse) every graph and seed, draw its figure, write and print the report."""
    runs, figures = Path(args.runs), Path(args.figures)
    figures.mkdir(parents=True, exist_ok=True)
    by_kind: dict[str, list[str]] = {}
    for name, seeds in map(lambda g: graph_and_seeds(g, args.seeds), args.graphs):
        per_seed = []
        for seed in range(args.first_seed, args.first_seed + seeds):
            per_seed.append(train(name, seed, runs, args.reuse, args.overrides))
            print(name, seed, {k: round(v, 4) for k, v in per_seed[-1].items()}, flush=True)
        first = runs / name / f"seed_{args.first_seed}"
        figure(name, open_as_shipped(name, args.first_seed, first, args.overrides), figures)
        by_kind.setdefault(kind(per_seed[0]), []).extend(graph_rows(name, per_seed))
    text = report(by_kind, args)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(text + "\n")
    print(text)
    return 0


def graph_and_seeds(text: str, default: int) -> tuple[str, int]:
    """`gan_ring:10` -> ("gan_ring", 10); `gan_ring` -> ("gan_ring", default)."""
    name, _, seeds = text.partition(":")
    if not (ROOT / "graphs" / f"{name}.yaml").is_file():
        raise SystemExit(f"--graphs: no graphs/{name}.yaml")
    if seeds and not (seeds.isdigit() and int(seeds) > 0):
        raise SystemExit(f"--graphs {text}: expected NAME or NAME:SEEDS with SEEDS a positive integer")
    return name, int(seeds) if seeds else default


def report(by_kind: dict[str, list[str]], args) -> str:
    lines = ["# Sample quality of the shipped graphs (bench/quality.py)", "",
             f"Seeds from {args.first_seed} (each graph's count in its row); mean ± standard error, then every "
             "seed's value. CPU min: user + system time of the training process (all threads); wall min "
             f"on the shared {os.cpu_count()}-core machine. Command: `python bench/quality.py "
             f"{' '.join(sys.argv[1:])}`", ""]
    for kind_name, rows in by_kind.items():
        if kind_name == "mixture":
            for source in ("ring", "grid"):
                mine = [r for i, r in enumerate(rows) if _source_of(rows, i) == source]
                if mine:
                    lines += [f"## 2D {source} (2,500 samples, 3σ)", "",
                              *table("mixture", mine + exact_reference(source), source), ""]
        else:
            reference = real_digit_rows() if kind_name == "digits" else []
            lines += [f"## {kind_name}", "", *table(kind_name, rows + reference, None), ""]
    return "\n".join(lines)


def _source_of(rows: list[str], index: int) -> str:
    """ring for gan_ring rows, grid for the grid graphs (a row and its 'every seed' line)."""
    head = rows[index - (index % 2)]
    return "ring" if "ring" in head else "grid"


if __name__ == "__main__":
    raise SystemExit(main())
