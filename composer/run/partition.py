"""The autograd split inductor gets on the CPU: the backward reads the activations' inputs that
the forward saved, not boolean masks recomputed from them.

Inductor's default partitioner (min-cut rematerialisation) saves `x > 0` of a ReLU / LeakyReLU as
a bool tensor, the smallest thing to keep. Its CPU code stores a vector mask into bool memory one
element at a time behind a branch (at::vec::VecMask::store, torch 2.13, AVX2 and AVX-512 alike):
on a 256x256 activation that store takes ~1 ms where the whole eager activation takes ~15 us, and
a compiled MLP step ran at 1.76x its eager time (gan_ring, bench/fast_modes.py). AOTAutograd's
`default_partition` saves the forward's tensors as they are, which the CPU kernels store at full
speed (compiled D loss of gan_ring: 10.5 -> 4.1 ms, eager 4.2 ms). On CUDA the min-cut stays.
"""
from __future__ import annotations

import torch
from torch._functorch.partitioners import default_partition
from torch._inductor.custom_graph_pass import CustomPartitionerFn


class SaveInputs(CustomPartitionerFn):
    """AOTAutograd's `default_partition`: the backward reads what the forward computed."""

    def __call__(self, gm, joint_inputs, **kwargs):
        kwargs.pop("compiler", None)
        kwargs.pop("static_lifetime_input_indices", None)
        return default_partition(gm, joint_inputs, **kwargs)

    def uuid(self):
        return "composer-save-inputs-1"


def for_device(options: dict, device: torch.device) -> dict:
    """torch.compile keyword arguments with the CPU partitioner added (inductor only: another
    backend takes no inductor options); `mode` becomes its inductor options, as torch.compile
    takes one or the other."""
    if device.type != "cpu" or options.get("backend", "inductor") != "inductor":
        return options
    options = dict(options)
    mode = options.pop("mode", None)
    inductor = dict(torch._inductor.list_mode_options(mode)) if mode else {}
    options["options"] = {**inductor, **options.get("options", {}), "custom_partitioner_fn": SaveInputs()}
    return options
