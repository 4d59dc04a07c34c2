"""Files a graph file names stay inside its project.

A graph file may read other files: the bases of `extends:`, a module's `weights:`, a bridged
block's `pretrained:` folder or file. Each must resolve (symlinks followed) inside one of:

- the working directory,
- the folder of the graph file (for a run folder's spec.yaml: the run folder),
- a folder the user grants: `--allow-path DIR` (repeatable) on the verbs that read graph files,
  `allow_paths=[...]` in `composer.api.load`/`open_run`, or `COMPOSER_ALLOW_PATHS`
  (folders separated by `os.pathsep`, as in PATH).

Anything else is refused before it is opened, with a message that says where the path leads
and how to grant it, so a graph file from elsewhere cannot reach /etc or a home folder. A path
typed in a `key=value` override on the command line is the user's own choice, as --allow-path
is, and is not restricted (`composer run stage2.yaml modules.vae.pretrained=/data/vae.st`).
Neither is a Spec built in Python (`api.from_dict`, `GraphBuilder`: its file is `<python>` or
`<builder ...>`): the program that builds it can open any file itself; the boundary is the graph
*file*, so a file read from elsewhere goes through `api.load`.
Data folders (`inputs: ... path:`) are the user's data, often on another disk, and are read
only as the images or arrays the source declares, never echoed: they are not restricted.
"""
from __future__ import annotations

import os
import stat
from pathlib import Path

from composer.errors import Loc, SpecError

ENV = "COMPOSER_ALLOW_PATHS"
OVERRIDE = "<override>"      # the location yamlio gives a value set by a key=value override


def granted_roots(granted=()) -> tuple[Path, ...]:
    """The folders the user grants: `granted` (api/CLI) then the environment variable's."""
    listed = [*granted, *os.environ.get(ENV, "").split(os.pathsep)]
    return tuple(Path(str(g)).expanduser().resolve() for g in listed if str(g).strip())


def project_roots(graph_file: str | Path | None, granted=()) -> tuple[Path, ...] | None:
    """Where a graph file's paths may lead: the working directory, the graph file's folder, and
    the granted folders (`granted_roots`), each resolved; None (anywhere) for a Spec built in
    Python, whose file is a `<name>`."""
    if not graph_file or str(graph_file).startswith("<"):
        return None
    roots = [Path.cwd().resolve(), Path(graph_file).parent.resolve()]
    return tuple(dict.fromkeys([*roots, *granted_roots(granted)]))


def is_inside(path: Path, roots) -> bool:
    real = Path(path).resolve()
    return roots is None or any(real == root or real.is_relative_to(root) for root in roots)


def check_inside(path: Path, roots, written: str, key: str, loc: Loc | None) -> Path:
    """`path` resolved (symlinks followed), or a SpecError saying it is outside and how to allow it
    (unless the path was given in a command-line override: `loc` is `<override>`)."""
    real = Path(path).resolve()
    if is_inside(real, roots) or (loc is not None and loc.file == OVERRIDE):
        return real
    raise SpecError(f"'{written}' resolves to {real}, outside the project (allowed: "
                    f"{', '.join(str(r) for r in roots)}); to read it, pass --allow-path "
                    f"{real.parent} (api: allow_paths=[...]) or add the folder to ${ENV}", key, loc)


def check_regular(path: Path, written: str, key: str, loc: Loc | None) -> None:
    """A regular file, found without opening it: a device, a FIFO or a folder is never read."""
    try:
        mode = os.stat(path).st_mode
    except OSError as err:
        raise SpecError(f"'{written}': cannot read {path} ({err.strerror})", key, loc) from None
    if not stat.S_ISREG(mode):
        kind = "a folder" if stat.S_ISDIR(mode) else "a device or a pipe, never read"
        raise SpecError(f"'{written}': {path} is not a regular file ({kind})", key, loc)


def check_pretrained(args: dict, roots, path: tuple, loc: Loc | None) -> dict:
    """A bridged block's `pretrained:` (already made absolute when found beside the graph file,
    `values.graph_relative`) must lie inside the project when it names a file or folder; a name
    that is no path (a hub id) is left to the bridge, which downloads nothing unless allowed."""
    value = args.get("pretrained")
    if isinstance(value, str) and value and Path(value).expanduser().exists():
        check_inside(Path(value).expanduser(), roots, value, ".".join(map(str, (*path, "pretrained"))), loc)
    return args


def weights_file(spec, module) -> Path:
    """A module's `weights:` file: relative to the graph file's folder (a run folder's spec.yaml
    names its own copy, RUN/inputs/), else to the working directory; inside the project, and a
    regular file (checked before it is opened)."""
    given = Path(module.weights).expanduser()
    key, loc = f"modules.{module.name}.weights", spec.loc("modules", module.name, "weights")
    candidates = [given] if given.is_absolute() else [Path(spec.file).parent / given, given]
    path = next((c for c in candidates if c.exists()), None)
    if path is None:
        raise SpecError(f"weights file not found: {module.weights} (looked in "
                        f"{', '.join(str(c) for c in candidates)})", key, loc)
    check_inside(path, project_roots(spec.file, spec.allowed), module.weights, key, loc)
    check_regular(path, module.weights, key, loc)
    return path


def check_spec_path(spec, value: str, *path) -> None:
    """A file a spec names by a plain path (a metric's `weights:`) lies inside the project."""
    key, loc = ".".join(map(str, path)), spec.loc(*path)
    check_inside(Path(value).expanduser(), project_roots(spec.file, spec.allowed), value, key, loc)
