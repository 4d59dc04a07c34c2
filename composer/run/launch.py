"""How a run meets its processes: the Accelerator it trains with, and the refusal of a launch
whose world size Accelerate did not see (each process would train its own copy)."""
from __future__ import annotations

import os

from accelerate import Accelerator
from accelerate.utils import DataLoaderConfiguration

from composer.errors import ComposerError

# what Accelerate reads for the world size (accelerate/state.py), in its order
WORLD_SIZE_VARIABLES = ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "MV2_COMM_WORLD_SIZE", "WORLD_SIZE")


def make_accelerator(cpu: bool, precision: str) -> Accelerator:
    """Accelerate keeps one process-wide state; a single process may switch precision between
    runs (API users, notebooks), so reset it there. Under torchrun every run shares it."""
    from accelerate.state import AcceleratorState, PartialState

    if AcceleratorState._shared_state and PartialState().num_processes == 1:
        if AcceleratorState().mixed_precision != precision:
            AcceleratorState._reset_state(reset_partial_state=True)
    return Accelerator(cpu=cpu, mixed_precision=precision,
                       dataloader_config=DataLoaderConfiguration(use_seedable_sampler=True))


def check_launch(num_processes: int, environ=None) -> None:
    """Refuse a process launched as one of several (torchrun, MPI) in which Accelerate set up a
    different number of processes: each would train its own unsynchronised copy, silently (with a
    plain GPU-less `Accelerator()` under torchrun every process reports DistributedType.NO)."""
    environ = os.environ if environ is None else environ
    name = next((v for v in WORLD_SIZE_VARIABLES if environ.get(v)), None)
    if name is None:
        return
    try:
        world = int(environ[name])
    except ValueError:
        raise ComposerError(f"{name}={environ[name]!r} in the environment is not a number of processes") from None
    if world > 1 and num_processes != world:
        raise ComposerError(
            f"this process was launched as one of {name}={world} processes (RANK={environ.get('RANK', '?')}), "
            f"but Accelerate set up {num_processes}: each would train an unsynchronised copy. Launch with "
            "`torchrun --nproc_per_node N -m composer run FILE` (a GPU-less machine gets gloo on the CPU), "
            "or `ACCELERATE_USE_CPU=1 accelerate launch --multi_gpu --num_processes N --num_machines 1 "
            "--mixed_precision no --dynamo_backend no -m composer run FILE` "
            "(`accelerate launch --cpu --num_processes N` starts one process); from Python, pass cpu=True "
            "on a machine without GPUs")
