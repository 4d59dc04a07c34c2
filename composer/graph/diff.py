"""`composer diff A B`: what differs between two graph files, in sentences: first what was
written (sections of the spec, as the user wrote them with overrides applied), then what that
changes in the compiled plans (phases, what each trains, freezes and cuts, schedule repeats, term
weights, forward calls and parameters per step).

    >>> diff(plan_a, plan_b)
    ['objectives.cycle_A.weight 10 -> 5', 'optimizer G now also trains E', ...,
     'term cycle_A.loss weight 10 -> 5', 'phase D steps 1 -> 5 times per G step',
     'D forward calls 3 -> 4 per step']

Every function is pure and returns a list of strings; an empty list means equal.
"""
from __future__ import annotations

from composer.graph.plan import Phase, Plan
from composer.spec.schema import Spec

NAMED = ("inputs", "modules", "flow", "objectives", "optimizers", "phases")
"""Sections whose entries are named things: added and removed entries are said as such."""
SINGULAR = {"inputs": "input", "modules": "module", "flow": "flow", "objectives": "objective",
            "optimizers": "optimizer", "phases": "declared phase"}


def diff(a: Plan, b: Plan) -> list[str]:
    """The spec differences, then the plan differences."""
    return diff_specs(a.spec, b.spec) + diff_plans(a, b)


def diff_specs(a: Spec, b: Spec) -> list[str]:
    """What was written differently, section by section in the order of the sections."""
    old, new = a.data, b.data
    out = []
    for section in _union(old, new):
        x, y = old.get(section), new.get(section)
        if x == y:
            continue
        if section in NAMED and isinstance(x or {}, dict) and isinstance(y or {}, dict):
            out += _named(section, x or {}, y or {})
        else:
            out += _values((section,), x, y)
    return out


def _named(section: str, old: dict, new: dict) -> list[str]:
    word, out = SINGULAR[section], []
    for name in _union(old, new):
        x, y = old.get(name), new.get(name)
        if x == y:
            continue
        if x is None or y is None:
            out.append(f"{word} {name} {'added' if x is None else 'removed'}{_what(section, y if x is None else x)}")
        elif section == "optimizers" and isinstance(x, dict) and isinstance(y, dict):
            out += _trains(name, x.get("params") or [], y.get("params") or [])
            out += _values((section, name), _without(x, "params"), _without(y, "params"))
        else:
            out += _values((section, name), x, y)
    return out


def _what(section: str, entry) -> str:
    """A short description of an added or removed entry: `: G(z)`, ` (block MLP)`, ..."""
    if not isinstance(entry, dict):
        return f": {_show(entry)}"
    for key in ("block", "recipe", "source", "noise"):
        if key in entry:
            return f" ({key} {_show(entry[key])})"
    if section == "optimizers":
        return f" (params {_show(entry.get('params'))})"
    return ""


def _trains(name: str, old: list, new: list) -> list[str]:
    added, removed = [m for m in new if m not in old], [m for m in old if m not in new]
    out = [f"optimizer {name} now also trains {', '.join(added)}"] if added else []
    return out + ([f"optimizer {name} no longer trains {', '.join(removed)}"] if removed else [])


def _values(path: tuple, old, new) -> list[str]:
    """`a.b.c old -> new` for each leaf that differs (lists are leaves)."""
    if isinstance(old, dict) and isinstance(new, dict):
        return [line for key in _union(old, new) for line in _values(path + (key,), old.get(key), new.get(key))]
    if old == new:
        return []
    return [f"{'.'.join(map(str, path))} {_show(old)} -> {_show(new)}"]


def diff_plans(a: Plan, b: Plan) -> list[str]:
    """What the compiler made differently: phases, terms, forward calls, parameters."""
    return _phases(a, b) + _terms(a, b) + _calls(a, b) + _parameters(a, b)


def _phases(a: Plan, b: Plan) -> list[str]:
    old, new = [p.name for p in a.phases], [p.name for p in b.phases]
    out = [f"phase {n} added (steps {', '.join(b.phase(n).optimizers)}; trains {', '.join(b.phase(n).trains)})"
           for n in new if n not in old]
    out += [f"phase {n} removed" for n in old if n not in new]
    kept_old, kept_new = [n for n in old if n in new], [n for n in new if n in old]
    if kept_old != kept_new:
        out.append(f"phase order {' -> '.join(kept_old)} now {' -> '.join(kept_new)}")
    for name in kept_new:
        out += _phase(a.phase(name), b.phase(name), b)
    return out


def _phase(x: Phase, y: Phase, b: Plan) -> list[str]:
    out = []
    if x.optimizers != y.optimizers:
        out.append(f"phase {y.name} steps {', '.join(y.optimizers)} (was {', '.join(x.optimizers)})")
    for field, more, fewer in (("trains", "now also trains", "no longer trains"),
                               ("frozen", "now freezes", "no longer freezes"),
                               ("terms", "now minimises", "no longer minimises"),
                               ("redraw", "now redraws", "no longer redraws")):
        out += _members(y.name, getattr(x, field), getattr(y, field), more, fewer)
    cuts_x, cuts_y = [f"{s} -> {d}" for s, d in x.cuts], [f"{s} -> {d}" for s, d in y.cuts]
    out += _members(y.name, cuts_x, cuts_y, "now cuts (detaches)", "no longer cuts")
    if x.repeat != y.repeat:
        others = [p.name for p in b.phases if p.name != y.name and p.repeat == 1]
        per = f"per {others[0]} step" if len(others) == 1 else "per training step"
        out.append(f"phase {y.name} steps {x.repeat} -> {y.repeat} times {per}")
    if x.every != y.every:
        out.append(f"phase {y.name} runs every {x.every} -> {y.every} steps")
    return out


def _members(phase: str, old, new, more: str, fewer: str) -> list[str]:
    added, removed = [m for m in new if m not in old], [m for m in old if m not in new]
    out = [f"phase {phase} {more} {', '.join(added)}"] if added else []
    return out + ([f"phase {phase} {fewer} {', '.join(removed)}"] if removed else [])


def _terms(a: Plan, b: Plan) -> list[str]:
    old, new = {t.name: t for t in a.graph.terms}, {t.name: t for t in b.graph.terms}
    out = [f"term {n} added ({new[n].weight:g} * {new[n].op!r})" for n in new if n not in old]
    out += [f"term {n} removed" for n in old if n not in new]
    for name in (n for n in new if n in old):
        x, y = old[name], new[name]
        if x.weight != y.weight:
            out.append(f"term {name} weight {x.weight:g} -> {y.weight:g}")
        if x.every != y.every:
            out.append(f"term {name} every {x.every} -> {y.every} steps")
        if repr(x.op) != repr(y.op):
            out.append(f"term {name} loss {x.op!r} -> {y.op!r}")
    return out


def _calls(a: Plan, b: Plan) -> list[str]:
    old, new = a.forward_calls(), b.forward_calls()
    return [f"{m} forward calls {old[m]} -> {new[m]} per step" for m in new if m in old and old[m] != new[m]]


def _parameters(a: Plan, b: Plan) -> list[str]:
    old, new = a.graph.param_counts, b.graph.param_counts
    out = [f"{m} parameters {old[m]:,} -> {new[m]:,}" for m in new if m in old and old[m] != new[m]]
    calls = b.forward_calls()
    out += [f"{m} is a new module: {new[m]:,} parameters, {calls.get(m, 0)} forward call(s) per step"
            for m in new if m not in old]
    if sum(old.values()) != sum(new.values()):
        out.append(f"parameters in all {sum(old.values()):,} -> {sum(new.values()):,}")
    return out


def _union(old: dict, new: dict) -> list:
    """Keys of both mappings: the old order, then keys only the new one has."""
    return list(old) + [k for k in new if k not in old]


def _without(entry: dict, key: str) -> dict:
    return {k: v for k, v in entry.items() if k != key}


def _show(value) -> str:
    if value is None:
        return "(none)"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_show(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_show(v)}" for k, v in value.items()) + "}"
    return str(value)
