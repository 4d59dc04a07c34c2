"""`composer validate | plan | run | sample | eval`. Exit codes: 0 ok, 2 bad spec or arguments,
1 other user errors (missing files, bad run folders), 3 non-finite loss, 130 interrupted."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .errors import ComposerError, SpecError


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="composer", description=__doc__.split(".")[0],
                                     epilog="Any KEY=VALUE argument overrides the graph file (values parse as YAML).")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("validate", help="parse, build and shape-check graph files")
    p.add_argument("files", nargs="+", help="graph files, then optional key=value overrides")
    p = sub.add_parser("plan", help="print the compiled update plan")
    p.add_argument("file")
    p.add_argument("--json", action="store_true", help="print the plan as JSON")
    p = sub.add_parser("run", help="train a graph")
    p.add_argument("file")
    p.add_argument("--out", default=None, help="run folder (default runs/NAME)")
    p.add_argument("--resume", action="store_true", help="continue from the run folder's last checkpoint")
    p.add_argument("--cpu", action="store_true", help="force the CPU even where a GPU exists")
    p = sub.add_parser("sample", help="generate from a trained run")
    p.add_argument("run_dir")
    p.add_argument("-n", type=int, default=None, help="number of samples")
    p.add_argument("-o", "--output", required=True, help="OUT.png (grid) or OUT.npy (raw samples [N, ...])")
    p.add_argument("--input", action="append", default=[], metavar="NAME=PATH",
                   help="feed a data input from an image folder, an image or a .npy file (translation)")
    p.add_argument("--node", default=None, help="flow tensor to output (default sample.output)")
    p.add_argument("--seed", type=int, default=0)
    p = sub.add_parser("eval", help="compute the graph's declared metrics on fresh samples")
    p.add_argument("run_dir")
    p.add_argument("--json", action="store_true")
    return parser


def main(argv=None) -> int:
    parser = _parser()
    args, rest = parser.parse_known_args(argv)
    unknown = [r for r in rest if "=" not in r or r.startswith("-")]
    if unknown:
        parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    args.overrides = [r for r in rest if r not in unknown]
    try:
        return COMMANDS[args.command](args)
    except SpecError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except ComposerError as err:
        from .runtime import NonFiniteLoss

        print(f"error: {err}", file=sys.stderr)
        return 3 if isinstance(err, NonFiniteLoss) else 1
    except KeyboardInterrupt:
        return 130


def _split(items):
    files = [i for i in items if "=" not in i]
    return files, [i for i in items if "=" in i]


def cmd_validate(args) -> int:
    from .api import load
    from .graph import build

    files, overrides = _split(args.files)
    overrides += args.overrides
    for file in files:
        graph = build(load(file, overrides))
        total = sum(graph.param_counts.values())
        print(f"{file}: ok ({len(graph.nodes)} nodes, {len(graph.param_counts)} modules, {total:,} parameters)")
    return 0


def cmd_plan(args) -> int:
    from .api import plan
    from .plan_view import format_table, to_json

    compiled = plan(args.file, args.overrides)
    print(json.dumps(to_json(compiled), indent=2) if args.json else format_table(compiled))
    return 0


def cmd_run(args) -> int:
    from .api import load, plan, runner
    from .train import Trainer

    spec = load(args.file, args.overrides)
    out = Path(args.out or Path("runs") / spec.name)
    run = runner(plan(spec), cpu=args.cpu or None)
    Trainer(run, out, resume=args.resume).run()
    return 0


def open_run(run_dir: str, overrides=()):
    """A Runner restored from a run folder's spec and latest checkpoint."""
    from . import checkpoint
    from .api import plan, runner
    from .spec import load

    folder = Path(run_dir)
    if not (folder / "spec.yaml").exists():
        raise ComposerError(f"{folder} is not a composer run folder (no spec.yaml)")
    latest = checkpoint.latest(folder)
    if latest is None:
        raise ComposerError(f"{folder} has no checkpoint yet")
    run = runner(plan(load(folder / "spec.yaml", overrides)))
    checkpoint.load(run, latest)
    return run


def cmd_sample(args) -> int:
    import numpy as np
    import torch

    from .generate import generate
    from .train import save_grid_or_scatter

    run = open_run(args.run_dir, args.overrides)
    feed = {name: _read_input(path, run, name) for name, path in (_pair(i) for i in args.input)}
    n = args.n or (min(len(v) for v in feed.values()) if feed else run.spec.sample.n)
    samples = generate(run, n, output=args.node, inputs=feed,
                       generator=torch.Generator().manual_seed(args.seed))
    out = Path(args.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix == ".npy":
        np.save(out, samples.numpy())
    elif out.suffix == ".png":
        save_grid_or_scatter(run, samples, out)
    else:
        raise ComposerError(f"-o {out}: expected a .png or .npy file")
    print(f"wrote {out} ({tuple(samples.shape)})")
    return 0


def _pair(text: str) -> tuple[str, str]:
    if "=" not in text:
        raise SpecError(f"--input {text}: expected NAME=PATH")
    name, path = text.split("=", 1)
    return name, path


def _read_input(path: str, run, name: str):
    import numpy as np
    import torch

    from composer.data.images import load_images

    if name not in run.graph.nodes or run.graph.nodes[name].kind != "data":
        inputs = [i.name for i in run.spec.inputs if i.kind == "data"]
        raise SpecError(f"--input {name}: not a data input of the graph (expected one of {inputs})")
    shape = run.graph.shapes[name]
    file = Path(path)
    if not file.exists():
        raise ComposerError(f"--input {name}: no such file or folder: {file}")
    if file.suffix == ".npy":
        return torch.from_numpy(np.load(file, allow_pickle=False)).float()
    return load_images(file, size=shape[-1], channels=shape[0])


def cmd_eval(args) -> int:
    from .evaluate import evaluate

    run = open_run(args.run_dir, args.overrides)
    results = evaluate(run)
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        for key, value in results.items():
            print(f"{key:32s} {value}")
    return 0


COMMANDS = {
    "validate": cmd_validate,
    "plan": cmd_plan,
    "run": cmd_run,
    "sample": cmd_sample,
    "eval": cmd_eval,
}
