"""Value checks of the spec's simple sections (`train`, `sample`, `eval`): ranges of numbers,
finiteness, kinds, and the `train:` keys that need more than a type (precision, compile options,
EMA decays, trackers). Used by the parser in spec.py; `p` is that parser (its `fail`, `mapping`,
`keys` locate an error at its YAML line)."""
from __future__ import annotations

import math
from pathlib import Path

from composer.errors import did_you_mean
from composer import registry

PRECISIONS = ("no", "bf16", "fp16", "fp8")
MAX_SEED = 2**53   # seed * 1000 + a stream offset stays within torch.manual_seed's 64 bits
COMPILE_KEYS = ("scope", "mode", "dynamic", "fullgraph", "backend")   # scope, then torch.compile's options
COMPILE_SCOPES = ("module", "phase")   # each trained module / each phase's forward and loss as one region
COMPILE_MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")
RANGES = {   # key path -> (bound, strict, what is expected)
    ("train", "steps"): (1, False, "a positive number of steps"),
    ("train", "batch"): (1, False, "a positive batch size"),
    ("train", "seed"): (0, False, "a seed >= 0"),   # and <= MAX_SEED, below
    ("train", "log_every"): (0, False, "0 (never) or a positive number of steps"),
    ("train", "sample_every"): (0, False, "0 (never) or a positive number of steps"),
    ("train", "checkpoint_every"): (0, False, "0 (only at the end) or a positive number of steps"),
    ("train", "keep_checkpoints"): (1, False, "at least 1 checkpoint kept"),
    ("train", "standing_stats"): (0, False, "0 (keep the trained module's statistics) or a positive number of batches"),
    ("train", "grad_clip"): (0, True, "a positive gradient norm (or null for none)"),
    ("train", "threads"): (1, False, "a positive number of threads (or null for torch's default)"),
    ("sample", "n"): (1, False, "a positive number of samples"),
    ("sample", "nrow"): (1, False, "a positive number of images per row"),
    ("eval", "n"): (1, False, "a positive number of samples"),
}


def check_train(p, path: tuple, body: dict) -> None:
    """precision, compile, EMA decays, trackers and callback names of the `train:` section (a
    callback name is checked against the registry when the trainer starts: plugins add them)."""
    if body.get("precision", "no") not in PRECISIONS:
        raise p.fail(f"unknown precision '{body['precision']}'{did_you_mean(str(body['precision']), PRECISIONS)}",
                     path + ("precision",))
    check_compile(p, path + ("compile",), body.get("compile"))
    for module, decay in (body.get("ema") or {}).items():
        if not isinstance(decay, (int, float)) or isinstance(decay, bool) or not 0 <= decay < 1:
            raise p.fail(f"an EMA decay is a number in [0, 1), got {decay!r}", path + ("ema", module))
    for k, name in enumerate(body.get("log_with") or []):
        problem = name_problem(name, body["log_with"][:k])
        if problem:
            raise p.fail(problem, path + ("log_with", k))
    for k, name in enumerate(body.get("callbacks") or []):
        if not isinstance(name, str):
            raise p.fail(f"a callback name is a string, got {name!r}", path + ("callbacks", k))
        if name in body["callbacks"][:k]:
            raise p.fail(f"callback '{name}' is named twice", path + ("callbacks", k))


def check_compile(p, path: tuple, value) -> None:
    """`train.compile`: null/false (off), true, a scope (`phase`), or torch.compile keyword
    arguments with an optional `scope`."""
    if value is None or isinstance(value, bool):
        return
    if isinstance(value, str):
        check_scope(p, path, value)
        return
    body = p.mapping(path, value, "true, false, phase or torch.compile options such as mode")
    p.keys(path, body, COMPILE_KEYS)
    if "scope" in body:
        check_scope(p, path + ("scope",), body["scope"])
    if body.get("mode", "default") not in COMPILE_MODES:
        mode = str(body["mode"])
        raise p.fail(f"unknown compile mode '{mode}'{did_you_mean(mode, COMPILE_MODES)}", path + ("mode",))
    for key, allowed in (("dynamic", (bool, type(None))), ("fullgraph", bool), ("backend", str)):
        if key in body and not isinstance(body[key], allowed):
            raise p.fail(f"expected {'a backend name' if key == 'backend' else 'true or false'}, "
                         f"got {body[key]!r}", path + (key,))


def check_scope(p, path: tuple, value) -> None:
    if value not in COMPILE_SCOPES:
        raise p.fail(f"unknown compile scope {value!r}{did_you_mean(str(value), COMPILE_SCOPES)}", path)


def check_range(p, path: tuple, value) -> None:
    """Numbers must be finite and within the key's range (RANGES)."""
    if isinstance(value, (int, float)) and not isinstance(value, bool) and not finite(value):
        raise p.fail(f"expected a finite number, got {value!r}", path)
    rule = RANGES.get(path)
    if rule is None or value is None:
        return
    low, strict, what = rule
    if not isinstance(value, (int, float)) or isinstance(value, bool) or (value <= low if strict else value < low):
        raise p.fail(f"expected {what}, got {value!r}", path)
    if path == ("train", "seed") and value > MAX_SEED:
        raise p.fail(f"expected a seed <= 2**53 (composer derives per-rank, per-stream seeds from it for "
                     f"torch.manual_seed), got {value!r}", path)


def finite(value) -> bool:
    """A number that converts to a finite float (not a bool, not 10**400, not nan)."""
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return False
    try:
        return math.isfinite(float(value))
    except OverflowError:
        return False


def same_kind(default, value) -> bool:
    if isinstance(default, bool):
        return isinstance(value, bool)
    if isinstance(default, int):
        return isinstance(value, int) and not isinstance(value, bool)
    if isinstance(default, float):
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    return isinstance(value, type(default))


def tracker_names() -> list[str]:
    """Every tracker Accelerate knows (installed or not)."""
    from accelerate.tracking import LOGGER_TYPE_TO_CLASS

    return sorted(LOGGER_TYPE_TO_CLASS)


def name_problem(name, before=()) -> str | None:
    """What is wrong with one entry of `train.log_with` (None when nothing is)."""
    if not isinstance(name, str):
        return f"a tracker name is a string, got {name!r}"
    if name in before:
        return f"tracker '{name}' is named twice"
    known = tracker_names()
    if name not in known:
        return f"unknown tracker '{name}'{did_you_mean(name, known)}"
    return None


def check_optimizer(spec, opt, total: int) -> None:
    """Build-time check of an optimizer's type and arguments (by torch's own checks) and of its
    LR schedule over the run, so that bad values fail before training, at their YAML line. The
    name tables are the run layer's registries (`optimizers`, `lr_schedules`)."""
    optimizers, schedules = registry.get("optimizers"), registry.get("lr_schedules")
    if not isinstance(opt.lr_schedule.get("type", "constant"), str):
        raise spec.error(f"expected a schedule name, got {opt.lr_schedule['type']!r}",
                         "optimizers", opt.name, "lr_schedule", "type")
    if opt.type not in optimizers:
        raise spec.error(optimizers.unknown(opt.type), "optimizers", opt.name, "type")
    args = {k: tuple(v) if isinstance(v, list) else v for k, v in opt.args.items()}
    try:   # torch's optimizers check their arguments before their parameters: an empty list is
        optimizers[opt.type]([], lr=opt.lr, **args)   # then the only error left (and no dynamo import)
    except ValueError as err:
        if "empty parameter list" not in str(err):
            raise spec.error(f"optimizer {opt.type}: {err}", "optimizers", opt.name) from None
    except Exception as err:  # noqa: BLE001 -- torch's own checks fail in many ways on odd values
        raise spec.error(f"optimizer {opt.type}: {type(err).__name__}: {err}", "optimizers", opt.name) from None
    options = dict(opt.lr_schedule)
    kind = options.pop("type", "constant")
    if kind not in schedules:
        raise spec.error(schedules.unknown(kind), "optimizers", opt.name, "lr_schedule", "type")
    try:
        factors = [schedules[kind](step, total=total, **options) for step in (0, total // 2, total)]
    except (TypeError, ValueError, ZeroDivisionError) as err:
        raise spec.error(f"lr schedule {kind}: {err}", "optimizers", opt.name, "lr_schedule") from None
    if not all(isinstance(f, (int, float)) and math.isfinite(f) and f >= 0 for f in factors):
        raise spec.error(f"lr schedule {kind} gives factors {factors}: expected finite numbers >= 0",
                         "optimizers", opt.name, "lr_schedule")


def graph_relative(args: dict, file: str) -> dict:
    """A block's `pretrained:` path is relative to the graph file's folder, as `weights:` is
    (composer/run/checkpoint.py weights_path): a relative path found there is made absolute for
    the block; anything else (a path from the working directory, a hub id) is passed unchanged."""
    value = args.get("pretrained")
    if not isinstance(value, str) or not value or Path(value).expanduser().is_absolute():
        return args
    found = Path(file).parent / value
    return {**args, "pretrained": str(found.resolve())} if found.exists() else args
