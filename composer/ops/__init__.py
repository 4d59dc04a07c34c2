"""Flow ops: the small closed set of tensor operations a flow entry may apply (`composer list ops`),
each an `Op` with a name and keyword arguments, shape-checked like blocks and shown in the plan."""
from composer.ops.flow import OPS

REGISTRIES = {"ops": OPS}   # what this package declares (composer.registry.get)
