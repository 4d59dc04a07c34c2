"""How a run meets its processes: the Accelerator it trains with, the refusal of a launch whose
world size Accelerate did not see (each process would train its own copy), and the warning for a
multi-process `accelerate launch` that started one process."""
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


def launch_warning(num_processes: int, environ=None) -> str | None:
    """The warning for `accelerate launch --num_processes N` (N > 1) that started this one process
    only (`--cpu`, or a MULTI_CPU config: accelerate#2741): its simple launcher sets MASTER_ADDR
    only when asked for several processes, and no world size; every launch of it sets
    ACCELERATE_DYNAMO_BACKEND. None when the run has the processes it was launched with."""
    environ = os.environ if environ is None else environ
    if num_processes > 1 or "ACCELERATE_DYNAMO_BACKEND" not in environ or "MASTER_ADDR" not in environ:
        return None
    if any(environ.get(v) for v in WORLD_SIZE_VARIABLES):
        return None                       # torchrun, MPI: check_launch compares the world size
    return ("warning: `accelerate launch` was asked for several processes, but this run trains in one "
            "(`accelerate launch --cpu --num_processes N` starts one process). For N processes on the CPU use "
            "`torchrun --nproc_per_node N -m composer run FILE`, or `ACCELERATE_USE_CPU=1 accelerate launch "
            "--multi_gpu --num_processes N --num_machines 1 --mixed_precision no --dynamo_backend no -m composer "
            "run FILE`")


def check_method_calls(graph, num_processes: int) -> None:
    """A module's method called from the flow (`vae.encode(x)`) runs inside its DDP wrapper, which
    synchronises `forward` only: with several processes the module must be one no optimizer trains
    (a frozen or pretrained part), else the ranks' copies would drift apart."""
    if num_processes < 2:
        return
    for node in graph.nodes.values():
        if node.kind == "call" and node.args and node.target in graph.owner:
            raise ComposerError(f"flow {node.name}: {node.describe()} calls a method of module {node.target}, which "
                                f"optimizer {graph.owner[node.target]} trains; under {num_processes} processes only "
                                "forward calls are synchronised: call the module itself, or train it in one process")
