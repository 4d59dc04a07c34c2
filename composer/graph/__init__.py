"""The graph layer: a Spec lowered to IR nodes, checked (names, references, cycles, shapes) and
compiled into a Plan of phases."""
from composer.graph.weights import WEIGHT_SCHEDULES

REGISTRIES = {"weight_schedules": WEIGHT_SCHEDULES}   # what this package declares (composer.registry.get)
