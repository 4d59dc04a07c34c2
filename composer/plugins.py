"""Plugins: user packages that add blocks, recipes, ops, data sources, noise kinds, samplers,
schedules, metrics, ... without touching composer.

A plugin is an installed package with an entry point in the group `composer.plugins` naming one
registration function:

    # the plugin's pyproject.toml
    [project.entry-points."composer.plugins"]
    mine = "my_package.composer_plugin:register"

    # my_package/composer_plugin.py
    def register(r):
        r.blocks.add("Reparam", Reparam)
        r.recipes.add("kl_to_prior", kl_to_prior)
        r.sources.add("my_points", my_points)

A graph file names the plugins it needs (`plugins: [mine]`): only names of installed entry
points, never import paths, so a graph still executes nothing the user did not install. The
names stay in the run's spec.yaml, so `composer sample`, `eval` and `--resume` load them again.
From Python, `register_plugin("mine", register)` makes a plugin known to this process only.
"""
from __future__ import annotations

from importlib.metadata import entry_points

from composer import registry
from composer.errors import ComposerError, SpecError

GROUP = "composer.plugins"

_loaded: set[str] = set()
_in_process: dict = {}


class Registries:
    """What a registration function receives: `r.<kind>.add(name, entry)` for every registry
    kind (`composer list` names them), recorded as coming from this plugin."""

    def __init__(self, plugin: str):
        self._plugin = plugin

    def __getattr__(self, kind: str):
        if kind.startswith("_"):
            raise AttributeError(kind)
        return _Scoped(registry.get(kind), self._plugin)


class _Scoped:
    def __init__(self, target: registry.Registry, origin: str):
        self._target, self._origin = target, f"plugin {origin}"

    def add(self, name: str, entry, *, doc: str | None = None, example: str | None = None):
        return self._target.add(name, entry, doc=doc, origin=self._origin, example=example)

    def register(self, name: str | None = None, *, doc: str | None = None, example: str | None = None):
        return self._target.register(name, doc=doc, origin=self._origin, example=example)


def installed() -> dict:
    """Installed plugins: name -> entry point."""
    return {ep.name: ep for ep in entry_points(group=GROUP)}


def register_plugin(name: str, register) -> None:
    """Make a plugin known to this process (no package needed); a graph still names it in
    `plugins:`. Runs saved from it reopen only in a process that registered it again."""
    _in_process[name] = register


def load(name: str) -> None:
    """Run a plugin's registration function once per process; ComposerError when it is not
    installed or fails."""
    if name in _loaded:
        return
    found = installed()
    if name in _in_process:
        register = _in_process[name]
    elif name in found:
        try:
            register = found[name].load()
        except Exception as err:  # noqa: BLE001 -- any import failure of a user package
            raise ComposerError(f"plugin '{name}' ({found[name].value}) failed to import: {err}") from None
    else:
        known = sorted(set(found) | set(_in_process))
        raise ComposerError(f"plugin '{name}' is not installed: install the package that provides it "
                            f"(pip install <package>), which declares an entry point '{name}' in the group "
                            f"'{GROUP}'; installed plugins: {', '.join(known) or 'none'}")
    try:
        register(Registries(name))
    except Exception as err:  # noqa: BLE001 -- undo what it registered, then report
        unload(name)
        if isinstance(err, ComposerError):
            raise
        raise ComposerError(f"plugin '{name}': its registration function failed: {err}") from None
    _loaded.add(name)


def unload(name: str) -> None:
    """Remove every entry a plugin registered (a failed registration; tests)."""
    for kind in registry.KINDS:
        target = registry.get(kind)
        for entry in [n for n, o in target.origin.items() if o == f"plugin {name}"]:
            target.remove(entry)
    _loaded.discard(name)


def load_plugins(spec) -> None:
    """Load the plugins a graph names, with errors at the `plugins:` line."""
    for i, name in enumerate(spec.plugins):
        try:
            load(name)
        except ComposerError as err:
            raise SpecError(str(err), f"plugins.{i}", spec.loc("plugins", i)) from None


def load_installed() -> None:
    """Load every installed plugin (for listings)."""
    for name in installed():
        load(name)
