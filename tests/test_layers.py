"""The layers hold and nothing imports in a circle (DESIGN.md, "Layers and layout").

`lint-imports` checks the contracts in pyproject.toml over the `composer` folder; the folders
blocks/ and recipes/ install as composer.blocks / composer.recipes, which its module finder does
not follow, so the import graph here is read from the source of all three with `ast`, imports
inside functions included, and checked for cycles and for the same layer rules."""
from __future__ import annotations

import ast
import shutil
import subprocess
from pathlib import Path

import networkx as nx

ROOT = Path(__file__).resolve().parents[1]
FOLDERS = {"composer": "composer", "blocks": "composer.blocks", "recipes": "composer.recipes"}
LAYERS = ("spec", "graph", "run", "api", "tools")          # bottom to top
EXTENSION = ("blocks", "recipes", "data", "metrics", "ops")  # below run, beside graph
SHARED_GRAPH = ("composer.graph.nodes", "composer.graph.interpreter")   # the IR extensions build


def modules() -> dict[str, Path]:
    found = {}
    for folder, package in FOLDERS.items():
        for path in (ROOT / folder).rglob("*.py"):
            parts = list(path.relative_to(ROOT / folder).with_suffix("").parts)
            parts = parts[:-1] if parts[-1] == "__init__" else parts
            found[".".join([package, *parts])] = path
    return found


def imported(name: str, path: Path, known: dict) -> list[tuple[str, int]]:
    """(module, line) for every composer module `name` imports, anywhere in the file."""
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    out = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            base = package[:len(package) - node.level + 1] if node.level else []
            module = ".".join(base + ([node.module] if node.module else []))
            targets = [f"{module}.{a.name}" if f"{module}.{a.name}" in known else module for a in node.names]
        elif isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        else:
            continue
        for target in targets:
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target and target != name:
                out.append((target, node.lineno))
    return out


def import_graph() -> nx.DiGraph:
    known = modules()
    graph = nx.DiGraph()
    graph.add_nodes_from(known)
    for name, path in known.items():
        for target, line in imported(name, path, known):
            graph.add_edge(name, target, line=f"{path.relative_to(ROOT)}:{line}")
    return graph


def stage(module: str) -> str:
    parts = module.split(".")
    if len(parts) > 1 and parts[1] in LAYERS + EXTENSION:
        return parts[1]
    if module in ("composer.__main__",):
        return "tools"
    if module == "composer.extend":
        return "api"
    return "base"


def violation(source: str, target: str) -> str | None:
    """Why `source` may not import `target` (None when it may)."""
    a, b = stage(source), stage(target)
    if a == b or b == "base":
        return None
    if a == "base":
        return "the base (errors, registry, plugins) imports no stage"
    if a in EXTENSION:
        if b in EXTENSION or target in SHARED_GRAPH:
            return None
        return f"an extension package ({a}) imports only the base, the IR ({', '.join(SHARED_GRAPH)}) and other extensions"
    if b in EXTENSION:
        return None if a != "spec" else "the spec layer reads no extension package (use composer.registry)"
    if LAYERS.index(b) > LAYERS.index(a):
        return f"{a} is below {b}"
    return None


def test_no_import_cycles():
    cycles = sorted(nx.simple_cycles(import_graph()), key=len)
    assert not cycles, "import cycles (imports inside functions count):\n" + "\n".join(" -> ".join(c) for c in cycles)


def test_imports_point_down():
    graph = import_graph()
    bad = [f"{data['line']}: {a} -> {b}: {why}" for a, b, data in graph.edges(data=True)
           if (why := violation(a, b))]
    assert not bad, "imports that point up:\n" + "\n".join(sorted(bad))


def test_the_checker_sees_function_level_imports_and_extensions():
    graph = import_graph()
    assert graph.has_edge("composer.recipes", "composer.recipes.adversarial")     # a folder outside composer/
    assert graph.has_edge("composer.api", "composer.run.runner")                  # imported inside a function
    assert violation("composer.recipes.denoising", "composer.run.generate")
    assert violation("composer.spec.values", "composer.run.optim")
    assert violation("composer.graph.build", "composer.graph.plan") is None


def test_import_linter_contracts():
    result = subprocess.run([shutil.which("lint-imports") or "lint-imports"], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert "0 broken" in result.stdout
