"""`extends:` -- a graph file that starts from other graph files.

    extends: base.yaml                 # or a list, applied in order: [base.yaml, wide.yaml]

Each base is complete (its own `extends:` applied) before it is merged; then the file itself.

The merge is JSON Merge Patch (RFC 7396) with one change: mappings merge key by key, recursively;
anything else (a list, a number, a string, null) replaces the base's value whole; the string
`~delete` removes a key (null is a value in graph files -- `grad_clip: null`, a block's
`norm: null` -- so, unlike RFC 7396 and Helm, null never deletes). `name` is not inherited: an
extending file is its own graph, named by its own `name:` or its file name, so its runs never land
in the base's run folder.

Paths are relative to the folder of the file that names them (never the working directory);
absolute paths and URLs are refused, so a folder of graph files can move. A base is a graph file
(`.yaml` or `.yml`), and it must lie inside the project (the working directory, the first file's
folder, or a folder granted with `--allow-path`; `composer.spec.paths`): nothing else is read, so no
error can quote another file. A base's `weights:`
files are rewritten relative to the extending file, so they still name the same files. Every file is read by
`yamlio.load_file` (safe loader, size, depth and alias limits), and every value keeps the location
of the file it came from, so errors point at the line the user wrote, in whichever file.
"""
from __future__ import annotations

import os
from pathlib import Path

from composer.errors import Loc, SpecError, did_you_mean
from composer.spec.paths import check_inside, project_roots
from composer.spec.yamlio import DELETE, Locs, load_file

MAX_FILES = 32        # files read through `extends:` for one graph (a diamond of bases re-reads)
SUFFIXES = (".yaml", ".yml")


def load_graph(path: str | Path, allow_paths=()) -> tuple[dict, Locs]:
    """A graph file with its `extends:` applied: (data, locs), each value located in its own file;
    bases only inside the project or under `allow_paths` (composer.spec.paths)."""
    return _load(Path(path), (), [0], project_roots(path, allow_paths))


def _load(path: Path, chain: tuple[Path, ...], count: list, roots: tuple[Path, ...]) -> tuple[dict, Locs]:
    count[0] += 1
    data, locs = load_file(path)
    if count[0] > MAX_FILES:
        raise SpecError(f"more than {MAX_FILES} files read through 'extends'", "extends",
                        locs.get(("extends",), Loc(str(path), 1, 1)))
    if "extends" not in data:
        _refuse_deletes(data, (), locs, "the file extends nothing")
        return data, locs
    merged, merged_locs = {}, {}
    for base, loc in _bases(path, data.pop("extends"), locs, roots):
        here = (*chain, path.resolve())
        if base.resolve() in here:
            cycle = " -> ".join(str(p) for p in (*here[here.index(base.resolve()):], base.resolve()))
            raise SpecError(f"extends cycle: {cycle}", "extends", loc)
        base_data, base_locs = _load(base, here, count, roots)
        _rebase_weights(base_data, base.parent, path.parent)
        base_data.pop("name", None)                   # an extending file is its own graph
        _drop(base_locs, ("name",))
        merged, merged_locs = merge(merged, merged_locs, base_data, base_locs)
    _drop(locs, ("extends",))
    return merge(merged, merged_locs, data, locs)


def _bases(path: Path, value, locs: Locs, roots) -> list[tuple[Path, Loc]]:
    """The files named by `extends:` (a path or a list of paths), each with where it was named."""
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not items:
        raise SpecError(f"expected a file path or a list of file paths, got {value!r}", "extends",
                        locs.get(("extends",)))
    bases = []
    for i, item in enumerate(items):
        key = ("extends",) if isinstance(value, str) else ("extends", i)
        loc = locs.get(key, locs.get(("extends",)))
        if not isinstance(item, str) or not item.strip():
            raise SpecError(f"expected a file path, got {item!r}", "extends", loc)
        if "://" in item:
            raise SpecError(f"'{item}': extends names a local file; URLs are never read", "extends", loc)
        if Path(item).is_absolute() or item.startswith("~"):
            raise SpecError(f"'{item}': write the path relative to this file's folder (absolute paths "
                            "break when the folder moves)", "extends", loc)
        if Path(item).suffix.lower() not in SUFFIXES:
            raise SpecError(f"'{item}': extends names a graph file (.yaml or .yml)", "extends", loc)
        base = path.parent / item
        check_inside(base, roots, item, "extends", loc)
        if not base.is_file():
            raise SpecError(f"no such file: {base} (extends paths are relative to the folder of "
                            f"{path.name})", "extends", loc)
        bases.append((base, loc))
    return bases


def _rebase_weights(data: dict, base_dir: Path, own_dir: Path) -> None:
    """`weights:` and a block's `pretrained:` paths are relative to the graph file's folder
    (checkpoint.weights_path, values.graph_relative); a base in another folder names its files
    relative to its own, so they are rewritten for this one (`pretrained:` only where the path
    exists there: it may be a hub id)."""
    modules = data.get("modules")
    for module in modules.values() if isinstance(modules, dict) else ():
        for entry in module if isinstance(module, list) else [module]:
            for key in ("weights", "pretrained"):
                value = entry.get(key) if isinstance(entry, dict) else None
                if isinstance(value, str) and value and not Path(value).is_absolute() \
                        and (key == "weights" or (base_dir / value).exists()):
                    entry[key] = os.path.relpath(base_dir / value, own_dir)


def merge(base: dict, base_locs: Locs, over: dict, over_locs: Locs) -> tuple[dict, Locs]:
    """`over` on top of `base` (neither changed): mappings merge, anything else replaces, `~delete`
    removes. The result's locations are those of the file each value came from."""
    data, locs = _copy(base), dict(base_locs)
    if () in over_locs:
        locs[()] = over_locs[()]                      # the file's start: the extending file
    _merge_into(data, over, (), locs, over_locs)
    return data, locs


def _merge_into(data: dict, over: dict, path: tuple, locs: Locs, over_locs: Locs) -> None:
    for key, value in over.items():
        here = path + (key,)
        if value == DELETE:
            if key not in data:
                raise SpecError(f"'{DELETE}' but no base file sets this key{did_you_mean(str(key), data)}",
                                _dotted(here), over_locs.get(here))
            del data[key]
            _drop(locs, here)
        elif isinstance(value, dict) and isinstance(data.get(key), dict):
            if here in over_locs:
                locs[here] = over_locs[here]
            _merge_into(data[key], value, here, locs, over_locs)
        else:
            _refuse_deletes(value, here, over_locs, "no base file sets this key" if key not in data else
                            "it is inside a value that replaces the base's value whole (a list or a scalar)")
            data[key] = _copy(value)
            _drop(locs, here)
            locs.update({k: v for k, v in over_locs.items() if k[:len(here)] == here})


def _refuse_deletes(value, path: tuple, locs: Locs, why: str) -> None:
    """`~delete` only removes a key that a base file sets; anywhere else it is a mistake."""
    if value == DELETE:
        raise SpecError(f"'{DELETE}' has nothing to delete: {why}", _dotted(path), _nearest(locs, path))
    children = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, item in children:
        _refuse_deletes(item, path + (key,), locs, why)


def _drop(locs: Locs, path: tuple) -> None:
    for stale in [k for k in locs if k[:len(path)] == path]:
        del locs[stale]


def _nearest(locs: Locs, path: tuple) -> Loc | None:
    return next((locs[path[:cut]] for cut in range(len(path), -1, -1) if path[:cut] in locs), None)


def _copy(value):
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy(v) for v in value]
    return value


def _dotted(path: tuple) -> str:
    return ".".join(str(p) for p in path)
