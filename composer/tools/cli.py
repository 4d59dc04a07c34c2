"""`composer validate | plan | run | sample | eval | list | graph | diff | runs | plot`. Exit codes: 0 ok,
2 bad spec or arguments, 1 other user errors (missing files, bad run folders; `diff`: the files differ),
3 non-finite loss, 130 interrupted."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from composer.errors import ComposerError, SpecError


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="composer", description=__doc__.split(".")[0],
                                     epilog="Any KEY=VALUE argument overrides the graph file (values parse as YAML).")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("validate", help="parse, build and shape-check graph files")
    p.add_argument("files", nargs="+", help="graph files, then optional key=value overrides")
    p.add_argument("--print", action="store_true", dest="print_spec",
                   help="print the resolved spec as YAML: extends applied, ${...} references resolved, "
                   "defaults filled in")
    p = sub.add_parser("plan", help="print the compiled update plan")
    p.add_argument("file")
    p.add_argument("--json", action="store_true", help="print the plan as JSON")
    p = sub.add_parser("run", help="train a graph")
    p.add_argument("file")
    p.add_argument("--out", default=None, help="run folder (default runs/NAME)")
    p.add_argument("--resume", action="store_true", help="continue from the run folder's last checkpoint")
    p.add_argument("--accept-changes", action="store_true",
                   help="with --resume: continue although the spec changed (e.g. more steps, a new lr); recorded")
    p.add_argument("--cpu", action="store_true", help="force the CPU even where a GPU exists")
    p = sub.add_parser("sample", help="generate from a trained run")
    p.add_argument("run_dir")
    p.add_argument("-n", type=int, default=None, help="number of samples")
    p.add_argument("-o", "--output", required=True, help="OUT.png (grid) or OUT.npy (raw samples [N, ...])")
    p.add_argument("--input", action="append", default=[], metavar="NAME=PATH",
                   help="feed a data input from an image folder, an image or a .npy file (translation)")
    p.add_argument("--labels", action="append", default=[], metavar="NAME=LABELS",
                   help="class labels for a graph tensor (3, 0,1,2 or 0:10; repeated to -n): conditional generation")
    p.add_argument("--node", default=None, help="flow tensor to output (default sample.output)")
    p.add_argument("--seed", type=int, default=0)
    p = sub.add_parser("eval", help="compute the graph's declared metrics on fresh samples")
    p.add_argument("run_dir")
    p.add_argument("--json", action="store_true")
    p = sub.add_parser("list", help="what a graph file can name: blocks, recipes, ops, sources, ...")
    p.add_argument("kind", nargs="?", default=None, help="one registry (blocks, recipes, ops, sources, noise, "
                   "samplers, schedules, metrics, optimizers, lr_schedules, weight_schedules, losses, penalties, weightings)")
    p.add_argument("--json", action="store_true")
    p.add_argument("--markdown", action="store_true", help="the reference page (docs/reference.md is made with it)")
    _add_view_parsers(sub)
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
        from composer.run.runner import NonFiniteLoss

        print(f"error: {err}", file=sys.stderr)
        return 3 if isinstance(err, NonFiniteLoss) else 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:      # `composer plan FILE | head`: the reader left; not an error
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


def _split(items):
    files = [i for i in items if "=" not in i]
    return files, [i for i in items if "=" in i]


def cmd_validate(args) -> int:
    from composer.api import validate

    files, overrides = _split(args.files)
    overrides += args.overrides
    for file in files:
        compiled = validate(file, overrides)
        if args.print_spec:
            from composer.spec.dump import to_yaml

            print(("" if len(files) == 1 else f"--- # {file}\n") + to_yaml(compiled.spec), end="")
            continue
        graph = compiled.graph
        total = sum(graph.param_counts.values())
        print(f"{file}: ok ({len(graph.nodes)} nodes, {len(graph.param_counts)} modules, {total:,} parameters, "
              f"{len(compiled.phases)} phase(s))")
    return 0


def cmd_plan(args) -> int:
    from composer.api import plan
    from composer.graph.view import format_table, to_json

    compiled = plan(args.file, args.overrides)
    print(json.dumps(to_json(compiled), indent=2) if args.json else format_table(compiled))
    return 0


def cmd_run(args) -> int:
    from composer.api import train

    train(args.file, args.out, args.overrides, resume=args.resume, cpu=args.cpu or None,
          accept_changes=args.accept_changes)
    return 0


def cmd_sample(args) -> int:
    from composer.api import open_run, read_input, sample

    if args.n is not None and args.n < 1:
        raise SpecError(f"-n {args.n}: the number of samples must be a positive integer")
    run = open_run(args.run_dir, args.overrides)
    feed = {name: read_input(run, name, path) for name, path in (_pair("--input", i) for i in args.input)}
    labels = {name: _labels(text) for name, text in (_pair("--labels", i) for i in args.labels)}
    samples = sample(run, args.n, output=args.node, inputs=feed, labels=labels, seed=args.seed, out=args.output)
    print(f"wrote {args.output} ({tuple(samples.shape)})")
    return 0


def _pair(flag: str, text: str) -> tuple[str, str]:
    if "=" not in text:
        raise SpecError(f"{flag} {text}: expected NAME=VALUE")
    name, value = text.split("=", 1)
    return name, value


def _labels(text: str) -> list[int]:
    """`3`, `0,1,2` or a range `0:10`."""
    try:
        if ":" in text:
            start, stop = text.split(":", 1)
            return list(range(int(start), int(stop)))
        return [int(v) for v in text.split(",")]
    except ValueError:
        raise SpecError(f"--labels: expected integers like 3, 0,1,2 or 0:10, got '{text}'") from None


def cmd_eval(args) -> int:
    from composer.api import evaluate, open_run

    results = evaluate(open_run(args.run_dir, args.overrides))
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        for key, value in results.items():
            print(f"{key:32s} {value}")
    return 0


def cmd_list(args) -> int:
    from composer.api import entries
    from composer.registry import KINDS

    kinds = [args.kind] if args.kind else list(KINDS)
    listing = {kind: entries(kind) for kind in kinds}
    if args.markdown:
        print(reference_markdown(listing))
        return 0
    if args.json:
        print(json.dumps(listing if not args.kind else listing[args.kind], indent=2))
        return 0
    for kind, items in listing.items():
        print(f"{kind}:")
        for item in items:
            arguments = ", ".join(a["name"] + ("" if a["default"] is None else f"={a['default']}")
                                  for a in item["arguments"])
            origin = "" if item["origin"] == "composer" else f"  [{item['origin']}]"
            print(f"  {item['name']}({arguments}){origin}")
            if item["doc"]:
                print(f"      {item['doc']}")
    return 0


def reference_markdown(listing: dict) -> str:
    """The reference page: every registry entry with its arguments and one-line doc."""
    lines = ["# Reference: what a graph file can name", "",
             "Generated by `composer list --markdown` from the registries (do not edit by hand; "
             "tests/test_reference_doc.py checks it is current). Arguments are the YAML keys.", ""]
    for kind, items in listing.items():
        lines += [f"## {kind}", "", "| name | arguments | what |", "|---|---|---|"]
        for item in items:
            arguments = ", ".join(f"`{a['name']}`" + ("" if a["default"] is None else f"={a['default']}")
                                  for a in item["arguments"])
            doc = item["doc"].replace("|", "\\|")
            lines.append(f"| `{item['name']}` | {arguments or '-'} | {doc} |")
        lines.append("")
    return "\n".join(lines)


def _add_view_parsers(sub) -> None:
    """graph, diff, runs, plot: looking at graphs and runs."""
    p = sub.add_parser("graph", help="draw the compiled graph, one panel per phase (DOT, SVG or PNG)")
    p.add_argument("file")
    p.add_argument("-o", "--output", default=None, help="OUT.dot, OUT.svg or OUT.png (an image gets OUT.dot "
                   "beside it); default: the DOT text on stdout")
    p = sub.add_parser("diff", help="what differs between two graph files and their compiled plans")
    p.add_argument("a")
    p.add_argument("b")
    p = sub.add_parser("runs", help="a table of the run folders under DIR")
    p.add_argument("dir", nargs="?", default="runs")
    p.add_argument("--sort", default=None, metavar="COLUMN", help="steps, time, a loss term, or eval.METRIC")
    p.add_argument("--desc", action="store_true", help="sort in descending order")
    p.add_argument("--columns", default=None, metavar="PATTERNS",
                   help="comma-separated column patterns, e.g. 'gan.*,eval.digits.*' (default: losses and the "
                        "first three metrics of each eval metric)")
    p.add_argument("--json", action="store_true")
    p = sub.add_parser("plot", help="loss curves of a run per phase (PNG; needs composer-graphs[plots])")
    p.add_argument("run_dir")
    p.add_argument("-o", "--output", default=None, help="OUT.png (default RUN/loss.png)")


def cmd_graph(args) -> int:
    from composer.api import plan
    from composer.tools.draw import to_dot, write

    compiled = plan(args.file, args.overrides)
    if args.output is None:
        sys.stdout.write(to_dot(compiled))
        return 0
    print("wrote " + ", ".join(str(p) for p in write(compiled, args.output)))
    return 0


def cmd_diff(args) -> int:
    """Exit 0 when the files compile to the same thing, 1 when they differ."""
    from composer.api import plan
    from composer.tools.diff import diff

    lines = diff(plan(args.a, args.overrides), plan(args.b, args.overrides))
    if not lines:
        print(f"{args.a} and {args.b}: no differences")
        return 0
    print(f"{args.a} -> {args.b}: {len(lines)} difference(s)")
    print("\n".join("  " + line for line in lines))
    return 1


def cmd_runs(args) -> int:
    from composer.tools.runs import collect, format_table, jsonable, shown_columns

    rows = collect(args.dir, args.sort, args.desc)
    if args.json:
        print(json.dumps(jsonable(rows), indent=2, allow_nan=False))
    else:
        patterns = [p for p in (args.columns or "").split(",") if p]
        print(format_table(rows, shown_columns(rows, patterns, args.sort)) if rows else f"no runs under {args.dir}")
    return 0


def cmd_plot(args) -> int:
    from composer.run.plots import plot_run

    print(f"wrote {plot_run(args.run_dir, args.output)}")
    return 0


COMMANDS = {
    "validate": cmd_validate,
    "plan": cmd_plan,
    "run": cmd_run,
    "sample": cmd_sample,
    "eval": cmd_eval,
    "list": cmd_list,
    "graph": cmd_graph,
    "diff": cmd_diff,
    "runs": cmd_runs,
    "plot": cmd_plot,
}
