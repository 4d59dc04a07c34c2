"""Mixed precision per phase: the forward's autocast, and in fp16 one gradient scaler per phase.

bf16 needs no loss scaling and runs through Accelerate's autocast. fp16 does: its small range
underflows gradients unless the loss is multiplied by a large factor before the backward and the
gradients divided by it before the optimizer step (Micikevicius et al. 2018, "Mixed Precision
Training"). Adversarial phases have gradients of very different size (D's and G's), so each
phase keeps its own `torch.amp.GradScaler` (in a derived plan, one per optimizer), as PyTorch's AMP
notes advise for several losses. A phase whose scaled gradients overflow skips its optimizer step
and lowers its scale; the other phases are not affected.

Gradients taken *inside* the graph (R1, WGAN-GP: `torch.autograd.grad` of the critic) are fp16
too: `Context.grad_scale` is the phase's current scale, by which such ops multiply the output
before differentiating and divide the gradients after (AMP's gradient-penalty recipe), so the
penalty sees unscaled gradients that did not underflow. An overflow there makes the loss
non-finite: the phase then skips its step and halves the scale, like an overflow in the
backward; only when the scale is down to 1 is a non-finite loss a real divergence.

Accelerate's own fp16 mode keeps one scaler for all optimizers and only on GPUs; composer runs
Accelerate without mixed precision for fp16 and does the above itself, on any device that has
fp16 autocast (CUDA, and the CPU, where the tests run it).
"""
from __future__ import annotations

import contextlib

import torch


class Precision:
    def __init__(self, precision: str, accelerator, phases):
        self.fp16 = precision == "fp16"
        self.accelerator = accelerator
        device = accelerator.device.type
        self.scalers = {p: torch.amp.GradScaler(device) for p in phases} if self.fp16 else {}
        # Accelerate's backward is loss / accumulation steps, then loss.backward(), unless it
        # holds a scaler or a DeepSpeed / Megatron engine: without those, the division by 1 is
        # two tensor ops per phase (forward and backward) for the same numbers
        self.plain_backward = (accelerator.gradient_accumulation_steps == 1 and accelerator.scaler is None
                               and accelerator.distributed_type not in ("DEEPSPEED", "MEGATRON_LM"))

    def autocast(self):
        if self.fp16:
            return torch.autocast(self.accelerator.device.type, dtype=torch.float16)
        return self.accelerator.autocast() if self.accelerator.mixed_precision != "no" else contextlib.nullcontext()

    def grad_scale(self, phase: str) -> float:
        """The factor in-graph gradients are taken at (1 without fp16)."""
        scaler = self.scalers.get(phase)
        return scaler.get_scale() if scaler is not None else 1.0

    def backward(self, phase: str, loss: torch.Tensor) -> None:
        scaler = self.scalers.get(phase)
        loss = scaler.scale(loss) if scaler is not None else loss
        if self.plain_backward:
            loss.backward()
        else:
            self.accelerator.backward(loss)

    def unscale(self, phase: str, optimizers) -> None:
        """Before gradient clipping: the true gradients."""
        scaler = self.scalers.get(phase)
        if scaler is not None:
            for optimizer in optimizers:
                scaler.unscale_(optimizer)

    def step(self, phase: str, optimizers) -> None:
        scaler = self.scalers.get(phase)
        if scaler is None:
            for optimizer in optimizers:
                optimizer.step()
            return
        for optimizer in optimizers:     # skipped when its unscaled gradients are not finite
            scaler.step(optimizer)
        scaler.update()

    def overflowed(self, phase: str) -> bool:
        """A non-finite loss in fp16 with room to lower the scale: halve it and skip the step."""
        scaler = self.scalers.get(phase)
        if scaler is None or scaler.get_scale() <= 1.0:
            return False
        scaler.scale(torch.zeros((), device=self.accelerator.device))   # its scale exists before the
        scaler.update(scaler.get_scale() * scaler.get_backoff_factor())   # first step
        return True

    def state_dict(self) -> dict:
        return {phase: scaler.state_dict() for phase, scaler in self.scalers.items()}

    def load_state_dict(self, state: dict) -> None:
        for phase, scaler in self.scalers.items():
            if phase in state:
                scaler.load_state_dict(state[phase])
