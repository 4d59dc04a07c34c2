"""An example composer plugin: one block, one loss-term recipe, one data source and one metric.

composer finds this package through the entry point `example` in the group `composer.plugins`
(see pyproject.toml) and calls `register` once, when a graph file says `plugins: [example]`.
Importing the package registers nothing by itself.
"""
from composer.extend import Source, point_fields

from .energy import energy_distance, energy_metric
from .siren import SirenMLP
from .spiral import spiral


def register(r) -> None:
    """Add this plugin's entries to composer's registries (one line each)."""
    r.blocks.add("SirenMLP", SirenMLP)
    r.recipes.add("energy_distance", energy_distance)
    r.sources.add("spiral", Source(spiral, lambda args: point_fields()))
    r.metrics.add("energy", energy_metric)


__all__ = ["SirenMLP", "energy_distance", "energy_metric", "register", "spiral"]
