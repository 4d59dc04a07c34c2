"""Fuzzing the spec loader and validator (issue 11, "What to build" 2).

Every shipped graph file is parsed, mutated as a hostile or careless user would (delete,
duplicate and rename keys and references, swap value types, extreme numbers, unicode and empty
strings, deep nesting, truncation, YAML anchors / aliases / merge keys / tags, odd encodings),
written back as a file and given to `composer.api.validate`. Each mutant must end in success or
in a ComposerError (a SpecError starting with `FILE:LINE:COL:`), within LIMIT_S seconds; never in
another exception (the idea of grammar-free structured fuzzing: Zalewski's AFL, and Hypothesis,
MacIver et al. JOSS 2019).

A failure is keyed by its signature: (exception type, innermost frame in composer/ blocks/
recipes/ as "path:function"); a SpecError whose text does not start with FILE:LINE:COL is keyed
(LINELESS, frame). A validation past LIMIT_S (SIGALRM, tried twice) is ("Timeout", "validate");
one whose peak memory grows past MEMORY_MB (Linux: VmHWM; the address space is capped so it
cannot fill the machine) is ("Memory", "validate"). KNOWN lists signatures not fixed yet: they
are counted, not failed. Remove an entry once fixed; an unknown signature fails the test, and
Hypothesis shrinks it to a minimal mutant.

CI: ~1,100 derandomized examples (`FUZZ_EXAMPLES` per file; FUZZ_LIMIT_S, FUZZ_MEMORY_MB), about
20 s alone, ~60 s on a loaded 2-core machine. A longer campaign that records every distinct
signature with a reduced reproduction instead of stopping (`--all` adds the reference-size graphs):
    python tests/spec/test_fuzz.py --examples 20000 --seconds 3000 --all --out /tmp/fuzz.json
Every numeric field of every graph set to nan, -1 and 0 in turn (issue 28; the CI mutants draw
these too, as the `numeric` mutation):
    python tests/spec/test_fuzz.py --numeric --out /tmp/numeric.json
"""
from __future__ import annotations

import collections
import copy
import math
import os
import re
import signal
import tempfile
import time
import traceback
from pathlib import Path

import pytest
import yaml

if not hasattr(signal, "setitimer"):
    pytest.skip("the time bound needs POSIX signals", allow_module_level=True)
import resource  # noqa: E402 - POSIX only, like setitimer

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from composer import api  # noqa: E402
from composer.errors import ComposerError, SpecError  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
# Reference-size graphs: each validation takes 0.3-0.6 s here (big models on the meta device),
# the same sections as their small siblings (dcgan, cyclegan, diffusion); the campaign covers them.
SLOW_GRAPHS = {"dcgan_64", "cyclegan_256", "diffusion_32"}
GRAPHS = sorted(p for p in (ROOT / "graphs").glob("*.yaml") if p.stem not in SLOW_GRAPHS)
LIMIT_S = float(os.environ.get("FUZZ_LIMIT_S", "10"))           # seconds per validation (CI: a loaded machine)
MEMORY_MB = float(os.environ.get("FUZZ_MEMORY_MB", "1024"))      # peak memory per validation
EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", -(-1100 // max(1, len(GRAPHS)))))   # >= 1,100 in all
PROJECT = ("composer/", "blocks/", "recipes/")
PROC = Path("/proc/self/clear_refs").exists()   # Linux: memory capped and measured; elsewhere time only

# Signatures not fixed yet -> a reproduction (an edit of a shipped graph). Remove an entry when its
# cause is fixed; the test then fails if the signature comes back.
LINELESS = "SpecError without FILE:LINE:COL"
KNOWN: dict[tuple[str, str], str] = {
    # Over MEMORY_MB or LIMIT_S: keyed by kind only (the frame where the alarm strikes varies).
    ("Memory", "validate"): "bigan.yaml modules.E[2].padding: 256; pix2pix.yaml modules.D.n_layers: 2500",
    ("Timeout", "validate"): "gan_grid.yaml modules.D.depth: 5000 (10 s; 2000: 5 s); diffusion.yaml num_res_blocks: 200 (7 s)",
}


# ---------------------------------------------------------------- mutations of the parsed data
class Tagged:
    """A value written with an explicit YAML tag (`!!python/tuple [1, 2]`, `!!int abc`, `!x 1`)."""

    def __init__(self, tag: str, value):
        self.tag, self.value = tag, value

    def __repr__(self) -> str:
        return f"{self.tag} {self.value!r}"


class Raw:
    """YAML text spliced in verbatim where this value would be written (deep nesting)."""

    def __init__(self, text: str):
        self.text = text


class Dumper(yaml.SafeDumper):
    raws: list[str]


def _tagged(dumper, item: Tagged):
    if isinstance(item.value, dict):
        return dumper.represent_mapping(item.tag, item.value)
    if isinstance(item.value, list):
        return dumper.represent_sequence(item.tag, item.value)
    return dumper.represent_scalar(item.tag, str(item.value))


def _raw(dumper, item: Raw):
    dumper.raws.append(item.text)
    return dumper.represent_scalar("tag:yaml.org,2002:str", f"RAW{len(dumper.raws) - 1}RAW")


Dumper.add_representer(Tagged, _tagged)
Dumper.add_representer(Raw, _raw)

TAGS = [f"tag:yaml.org,2002:{t}" for t in ("python/tuple", "python/name:builtins.len", "set", "binary", "timestamp",
                                            "omap", "int", "float", "bool", "null", "str")] + ["!custom", "tag:x.org,2000:x"]
NUMBERS = [0, -1, 1, 2, -1e9, 1e30, -1e30, math.nan, math.inf, -math.inf, 10 ** 30, -(10 ** 30), 2 ** 63,
           10 ** 400, 0.5, -0.0, 1e-300, 3.0]
STRINGS = ["", " ", "ü", "名前", "\u202eevil", "é" * 300, "a" * 10000, "null", "1e5", "~", "x y", "-",
           "G(", "G(z", "(z)", "G(z)(z)", "cat(a,)", "chunk(h, 2)[5]", "h[-1]", "a.b.c", "\t", "0x10"]


def paths(node, path=(), above=()):
    """Every key path in a parsed spec (mapping keys and list indices), root excluded; a value
    that contains itself (an alias cycle) is listed once, not followed."""
    out = []
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for key, value in items:
        out.append(path + (key,))
        if id(value) not in above:
            out.extend(paths(value, path + (key,), above + (id(node),)))
    return out


def names(data) -> list:
    """Every key and identifier of a file: the vocabulary for renamed references."""
    words = {str(p[-1]) for p in paths(data) if isinstance(p[-1], str)}
    for p in paths(data):
        value = _get(data, p)
        if isinstance(value, str):
            words.update(re.findall(r"[A-Za-z_][A-Za-z0-9_.]*", value))
    return sorted(words)


def _get(data, path):
    for key in path:
        data = data[key]
    return data


def value_strategy(vocab):
    leaf = st.one_of(st.sampled_from(NUMBERS), st.sampled_from(STRINGS), st.sampled_from(vocab),
                     st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=12))
    return st.recursive(leaf, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                      st.dictionaries(st.sampled_from(vocab), inner, max_size=3)),
                        max_leaves=6)


def key_strategy(vocab):
    return st.one_of(st.sampled_from(vocab), st.sampled_from(STRINGS[:6]), st.text(max_size=8),
                     st.sampled_from([None, True, 0, -1, 1.5]), st.builds(Tagged, st.sampled_from(TAGS[:3]),
                                                                          st.just("a")))


def _retoken(draw, text: str, vocab) -> str:
    """Rename, drop or duplicate one identifier of a reference string (`G(z)` -> `D(z)`)."""
    tokens = list(re.finditer(r"[A-Za-z_][A-Za-z0-9_.]*", text))
    if not tokens:
        return text + draw(st.sampled_from(["(", ")", ",", "[0]", ".y"]))
    m = draw(st.sampled_from(tokens))
    new = draw(st.one_of(st.sampled_from(vocab), st.sampled_from(["", "nope", "ü", m.group() * 2, "1"])))
    return text[:m.start()] + new + text[m.end():]


def _number(draw, value):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or abs(value) > 1e300:
        return draw(st.sampled_from(NUMBERS))
    return draw(st.sampled_from([-value, 0, value * 10 ** 9, value + 0.5, str(value), [value], {"v": value},
                                 int(value) if math.isfinite(value) else value]))


def _deep(draw, cap: int) -> Raw:
    depth = draw(st.sampled_from([2, 3, 8, 30, 70, 1000, cap]))   # within and past the loader's limits
    style = draw(st.sampled_from(["[", "{"]))
    return Raw("[" * depth + "]" * depth if style == "[" else "{a: " * depth + "1" + "}" * depth)


def numeric_paths(data) -> list:
    """The paths of every number in a parsed file (a size, a weight, a rate, a count...)."""
    return [p for p in paths(data) if isinstance(_get(data, p), (int, float)) and not isinstance(_get(data, p), bool)]


def _out_of_range(draw, value):
    """Issue 28: nan, infinities, a negative number and zero (a zero size) in a numeric field."""
    return draw(st.sampled_from([math.nan, math.inf, -math.inf, -abs(value) or -1, -1, 0]))


def mutate_once(draw, data, vocab, deep_cap: int) -> str:
    """One mutation of `data` in place; returns its description."""
    op = draw(st.sampled_from(["delete", "duplicate", "rename_key", "swap_type", "number", "reference",
                               "alias", "merge", "tag", "tag_key", "deep", "copy_other"] + ["numeric"] * 4))
    numeric = numeric_paths(data) if op == "numeric" else []
    where = numeric or paths(data)
    path = draw(st.sampled_from(where)) if where else ()
    parent, key = (_get(data, path[:-1]), path[-1]) if path else (None, None)
    dotted = ".".join(str(p) for p in path)
    if parent is None:
        return "noop"
    value = parent[key]
    if op == "delete":
        del parent[key]
    elif op == "duplicate":
        if isinstance(parent, list):
            parent.insert(key, copy.deepcopy(value))
        else:
            parent[draw(st.sampled_from(vocab))] = copy.deepcopy(value)
    elif op == "rename_key" and isinstance(parent, dict):
        new = draw(key_strategy(vocab))
        items = [(new if k == key else k, v) for k, v in parent.items()]
        parent.clear()
        parent.update(items)
        return f"rename_key {dotted} -> {new!r}"
    elif op == "number":
        parent[key] = _number(draw, value)
    elif op == "numeric" and numeric:
        parent[key] = _out_of_range(draw, value)
    elif op == "reference" and isinstance(value, str):
        parent[key] = _retoken(draw, value, vocab)
    elif op in ("alias", "merge", "copy_other"):
        other = draw(st.sampled_from(where))
        _share(op, parent, key, _get(data, other))
        return f"{op} {dotted} <- {'.'.join(map(str, other))}"
    elif op == "tag":
        parent[key] = Tagged(draw(st.sampled_from(TAGS)), value if isinstance(value, (dict, list)) else
                             draw(st.one_of(st.just(value), st.sampled_from(STRINGS[:8]))))
    elif op == "tag_key" and isinstance(parent, dict):
        parent[Tagged(draw(st.sampled_from(TAGS)), "k")] = value
    elif op == "deep":
        parent[key] = _deep(draw, deep_cap)
    else:
        op = "swap_type"
        parent[key] = draw(value_strategy(vocab))
    return f"{op} {dotted} -> {_short(parent[key] if op not in ('delete', 'tag_key') else None)}"


def _share(op: str, parent, key, source):
    """Put another part of the file at parent[key]: a copy, the same object (dumped as an anchor
    and an alias, possibly a cycle) or, into a mapping, a merge key `<<: *anchor`."""
    if op == "copy_other":
        parent[key] = copy.deepcopy(source)
    elif op == "merge" and isinstance(parent[key], dict) and isinstance(source, dict):
        parent[key]["<<"] = source
    else:
        parent[key] = source


def _short(value) -> str:
    text = repr(value.text if isinstance(value, Raw) else value)
    return text if len(text) < 60 else text[:57] + "..."


def dump(data) -> str:
    dumper_raws: list[str] = []

    class _D(Dumper):
        raws = dumper_raws

    text = yaml.dump(data, Dumper=_D, sort_keys=False, allow_unicode=True, width=10 ** 6)
    text = text.replace("'<<':", "<<:")
    for i, raw in enumerate(dumper_raws):
        text = text.replace(f"RAW{i}RAW", raw)
    return text


def text_mutation(draw, text: str, laughs_cap: int) -> tuple[bytes, str]:
    """A mutation of the written text: truncation, encodings, tabs, duplicated lines, alias bombs."""
    op = draw(st.sampled_from(["none"] * 18 + ["truncate", "utf16", "bom", "latin1", "nul", "tab", "dup_line",
                                              "laughs", "docs"]))
    lines = text.splitlines(keepends=True)
    if op == "truncate":
        cut = draw(st.integers(0, len(text)))
        return text[:cut].encode(), f"truncate at {cut}"
    if op == "utf16":
        return text.encode("utf-16"), op
    if op == "bom":
        return b"\xef\xbb\xbf" + text.encode(), op
    if op in ("latin1", "nul", "tab", "dup_line") and lines:
        i = draw(st.integers(0, len(lines) - 1))
        line = lines[i]
        if op == "latin1":
            return ("".join(lines[:i]) + "# caf\xe9\n" + "".join(lines[i:])).encode("latin-1", "replace"), op
        lines[i] = {"nul": line.replace(":", ":\x00", 1), "tab": "\t" + line, "dup_line": line + line}[op]
        return "".join(lines).encode(), f"{op} line {i + 1}"
    if op == "laughs":
        levels, width = draw(st.integers(1, laughs_cap)), draw(st.integers(2, 9))
        bomb = "a0: &a0 [lol]\n" + "".join(f"a{k}: &a{k} [{', '.join([f'*a{k - 1}'] * width)}]\n"
                                           for k in range(1, levels + 1))
        return (text + bomb).encode(), f"laughs {levels}x{width}"
    if op == "docs":
        return (text + "---\n" + text).encode(), op
    return text.encode(), "none"


@st.composite
def mutants(draw, data, vocab, deep_cap=2000, laughs_cap=4):
    """(file bytes, description) of one mutant of a parsed graph file."""
    data = copy.deepcopy(data)
    log = [mutate_once(draw, data, vocab, deep_cap) for _ in range(draw(st.integers(1, 3)))]
    raw, how = text_mutation(draw, dump(data), laughs_cap)
    return raw, log + ([how] if how != "none" else [])


# ---------------------------------------------------------------- running one mutant
class FuzzTimeout(BaseException):
    """Raised by SIGALRM inside validate: a BaseException so no `except Exception` swallows it."""


def _alarm(signum, frame):
    if frame is not None and frame.f_code.co_name == "gc_callback":   # hypothesis's gc hook swallows it:
        signal.setitimer(signal.ITIMER_REAL, 0.05)                      # strike again right after
        return
    raise FuzzTimeout(f"validate ran past {LIMIT_S} s")


def signature(err: BaseException) -> tuple[str, str]:
    """(type, innermost project frame as 'path:function') of an exception."""
    where = "?"
    for frame in traceback.extract_tb(err.__traceback__):
        rel = Path(frame.filename).resolve()
        rel = str(rel.relative_to(ROOT)) if rel.is_relative_to(ROOT) else ""
        if rel.startswith(PROJECT):
            where = f"{rel}:{frame.name}"
    name = "Timeout" if isinstance(err, FuzzTimeout) else type(err).__name__
    return name, where


def run_one(path: Path, raw: bytes):
    """Validate one mutant file. Returns (outcome, detail): outcome 'ok', 'error' (a proper
    ComposerError) or a failure signature; detail is the message. A timeout counts only if a
    second try times out too (a loaded machine can stall one call)."""
    outcome, detail = _validate(path, raw)
    return _validate(path, raw) if outcome[:1] == ("Timeout",) else (outcome, detail)


def _validate(path: Path, raw: bytes):
    path.write_bytes(raw)
    with _Guard() as guard:
        outcome, detail, err = _classify(path)
    if guard.peak_mb > MEMORY_MB or _refused_allocation(detail) or isinstance(err, MemoryError):
        where = signature(err)[1] if err is not None else "validate succeeded"
        return ("Memory", "validate"), f"peak +{guard.peak_mb:.0f} MB at {where}: {detail}"[:500]
    if isinstance(err, FuzzTimeout):    # where the alarm struck varies from run to run
        return ("Timeout", "validate"), f"at {signature(err)[1]}: {detail}"
    return outcome, detail


def _refused_allocation(detail: str) -> bool:
    """An allocation that failed only under the harness's cap: one a workstation (< 64 GiB) would
    make. An absurd request (terabytes) fails at once anywhere and is a fine located error."""
    asked = re.search(r"tried to allocate (\d+) bytes", detail)
    return bool(asked) and int(asked.group(1)) < 64 * 2 ** 30


def _classify(path: Path):
    try:
        api.validate(path)
        return "ok", "", None
    except SpecError as err:
        if not re.match(rf"{re.escape(str(path))}:[1-9]\d*:[1-9]\d*: ", str(err)):
            return (LINELESS, signature(err)[1]), str(err), err
        return "error", str(err), err
    except ComposerError as err:
        return "error", str(err), err
    except (Exception, FuzzTimeout, RecursionError) as err:   # noqa: BLE001 - the point of the test
        return signature(err), f"{type(err).__name__}: {err}"[:500], err


class _Guard:
    """Bounds one validation: SIGALRM after LIMIT_S; the address space capped at its size now plus
    4 x MEMORY_MB (an allocation past it fails at once instead of filling the machine); the peak
    resident memory (VmHWM, reset through /proc/self/clear_refs) measured."""

    def __enter__(self):
        self.handler, self.peak_mb = signal.signal(signal.SIGALRM, _alarm), 0.0
        if PROC:
            self.limit = resource.getrlimit(resource.RLIMIT_AS)
            cap, hard = int(_status("VmSize") + 4 * MEMORY_MB * 2 ** 20), self.limit[1]
            resource.setrlimit(resource.RLIMIT_AS, (cap if hard == resource.RLIM_INFINITY else min(cap, hard), hard))
            Path("/proc/self/clear_refs").write_text("5")
            self.base = _status("VmRSS")
        signal.setitimer(signal.ITIMER_REAL, LIMIT_S)
        return self

    def __exit__(self, *exc):
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, self.handler)
        if PROC:
            resource.setrlimit(resource.RLIMIT_AS, self.limit)
            self.peak_mb = (_status("VmHWM") - self.base) / 2 ** 20
        return False


def _status(field: str) -> int:
    """A /proc/self/status memory field in bytes."""
    return int(re.search(rf"{field}:\s+(\d+) kB", Path("/proc/self/status").read_text()).group(1)) * 1024


# ---------------------------------------------------------------- the CI test
def warm_up(graph: Path):
    """Validate the unmutated file once, unbounded: torch imports modules (torch._dynamo) lazily
    on first use, and an alarm or memory cap striking mid-import would leave a half-initialised
    module behind that fails every later call."""
    import torch._dynamo  # noqa: F401 - what the meta kernels and optimizers import lazily

    try:
        api.validate(graph)
    except ComposerError:
        pass


@pytest.mark.parametrize("graph", GRAPHS, ids=lambda p: p.stem)
def test_mutants_end_in_success_or_a_located_error(graph, tmp_path):
    data = yaml.safe_load(graph.read_text())
    vocab = names(data)
    target = tmp_path / graph.name
    warm_up(graph)

    @settings(max_examples=EXAMPLES, derandomize=True, database=None, deadline=(2 * LIMIT_S + 5) * 1000,
              suppress_health_check=list(HealthCheck), print_blob=False)
    @given(mutants(data, vocab))
    def check(mutant):
        raw, log = mutant
        outcome, detail = run_one(target, raw)
        tally[outcome if isinstance(outcome, str) else "known"] += 1
        if isinstance(outcome, tuple):
            assert outcome in KNOWN, (f"{graph.name}: {outcome} after {log}\n{detail}\n--- mutant ---\n"
                                      f"{raw[:3000].decode('utf-8', 'replace')}")

    tally = collections.Counter()
    check()
    print(f"{graph.stem}: {dict(tally)}")
    assert sum(tally.values()) >= EXAMPLES, tally    # the >= 1,100 examples in all really ran


# ---------------------------------------------------------------- the long campaign
def reduce(path: Path, raw: bytes, sig) -> bytes:
    """Greedily delete keys / list items of a mutant while it keeps the same signature."""
    try:
        with _Guard():
            data = yaml.load(raw.decode("utf-8"), Loader=yaml.SafeLoader)
        assert isinstance(data, dict) and run_one(path, dump(data).encode())[0] == sig
    except (Exception, FuzzTimeout):  # noqa: BLE001 - not reducible as data (encodings, tags, bombs)
        return raw
    changed = True
    while changed:
        changed = False
        for p in sorted(paths(data), key=len):
            trial = copy.deepcopy(data)
            try:
                del _get(trial, p[:-1])[p[-1]]
            except (KeyError, IndexError, TypeError):
                continue
            if run_one(path, dump(trial).encode())[0] == sig:
                data, changed = trial, True
                break
    return dump(data).encode()


def campaign(examples: int, seconds: float, out: str, files: list[Path], seed: int = 0):
    import json

    found, counts, start = {}, {"ok": 0, "error": 0, "failure": 0}, time.time()
    work = Path(tempfile.mkdtemp(prefix="fuzz-"))
    per_file = max(1, examples // len(files))
    for k, graph in enumerate(files):
        stop = start + seconds * (k + 1) / len(files)   # an equal share of the time for each file
        data = yaml.safe_load(graph.read_text())
        target = work / graph.name
        warm_up(graph)

        @hypothesis.seed(seed)
        @settings(max_examples=per_file, database=None, deadline=None, derandomize=False,
                  suppress_health_check=list(HealthCheck), phases=[hypothesis.Phase.generate])
        @given(mutants(data, names(data), deep_cap=20000, laughs_cap=7))
        def explore(mutant):
            if time.time() > stop:
                return
            raw, log = mutant
            t0 = time.time()
            outcome, detail = run_one(target, raw)
            if not isinstance(outcome, tuple):
                counts[outcome] += 1
                return
            counts["failure"] += 1
            entry = found.setdefault(repr(outcome), {"signature": outcome, "count": 0, "files": {}, "examples": []})
            entry["count"] += 1
            entry["files"][graph.stem] = entry["files"].get(graph.stem, 0) + 1
            if len(entry["examples"]) < 3:
                entry["examples"].append({"file": graph.name, "mutations": log, "message": detail,
                                          "seconds": round(time.time() - t0, 2),
                                          "reduced": reduce(target, raw, outcome).decode("utf-8", "replace")[:4000]})

        explore()
        print(f"{graph.stem}: {counts} distinct={len(found)} t={time.time() - start:.0f}s", flush=True)
        Path(out).write_text(json.dumps({"counts": counts, "seconds": time.time() - start,
                                         "found": list(found.values())}, indent=1, default=str))


def numeric_sweep(files: list[Path], out: str, values=(math.nan, -1, 0)) -> dict:
    """Every numeric field of every file set to each of `values` in turn (issue 28): counts of
    'ok', 'error' and failure signatures, written to `out`."""
    import json

    counts, failures, work = collections.Counter(), [], Path(tempfile.mkdtemp(prefix="fuzz-numeric-"))
    for graph in files:
        data = yaml.safe_load(graph.read_text())
        warm_up(graph)
        for path in numeric_paths(data):
            for value in values:
                trial = copy.deepcopy(data)
                _get(trial, path[:-1])[path[-1]] = value
                outcome, detail = run_one(work / graph.name, dump(trial).encode())
                counts[outcome if isinstance(outcome, str) else "failure"] += 1
                if isinstance(outcome, tuple):
                    failures.append({"file": graph.name, "path": ".".join(map(str, path)), "value": repr(value),
                                     "signature": outcome, "message": detail})
        print(f"{graph.stem}: {dict(counts)}", flush=True)
    Path(out).write_text(json.dumps({"counts": counts, "failures": failures}, indent=1, default=str))
    return counts


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description="long fuzz campaign over graphs/*.yaml")
    parser.add_argument("--examples", type=int, default=20000)
    parser.add_argument("--seconds", type=float, default=3000)
    parser.add_argument("--out", default="fuzz.json")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--only", nargs="*", help="graph names (default all)")
    parser.add_argument("--limit", type=float, default=5.0, help="seconds per validation")
    parser.add_argument("--all", action="store_true", help="include the reference-size graphs")
    parser.add_argument("--numeric", action="store_true", help="every numeric field set to nan, -1 and 0 in turn")
    args = parser.parse_args()
    LIMIT_S = args.limit
    import torch

    torch.set_num_threads(1)
    files = sorted((ROOT / "graphs").glob("*.yaml")) if args.all else GRAPHS
    files = [f for f in files if not args.only or f.stem in args.only]
    if args.numeric:
        numeric_sweep(files, args.out)
    else:
        campaign(args.examples, args.seconds, args.out, files, args.seed)
