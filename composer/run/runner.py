"""The runtime: a small interpreter over the compiled Plan, on HuggingFace Accelerate.

`Runner.step()` runs one training step: for each round, for each phase, it sets which modules
are frozen, runs the phase's nodes through the training interpreter (composer/run/training.py: compute
or reuse; detach on cut edges), reduces the loss terms with their weights at this step, and steps the phase's
optimizers. There is no generated code, and nothing here names a recipe or a model.
"""
from __future__ import annotations

import copy
import warnings

import torch
from accelerate import Accelerator
from accelerate.utils import DataLoaderConfiguration

from composer.run import fast, standing
from composer.errors import ComposerError
from composer.graph.interpreter import Context
from composer.run.feeds import BatchStream
from composer.data.sources import load_table
from composer.run.optim import make_lr_schedule, make_optimizer
from composer.graph.plan import Plan
from composer.run.precision import Precision
from composer.graph.modules import build_modules
from composer.run.training import Training


class Runner:
    def __init__(self, plan: Plan, accelerator: Accelerator | None = None, cpu: bool | None = None):
        spec = self.spec = plan.spec
        self.plan, self.graph = plan, plan.graph
        if spec.train.threads:
            torch.set_num_threads(spec.train.threads)
        if cpu is None:   # without a GPU, cpu=True is what makes torchrun give MULTI_CPU (gloo)
            cpu = not torch.cuda.is_available()
        precision = spec.train.precision   # fp16's scaling is composer's own (precision.py)
        self.accelerator = accelerator or _accelerator(bool(cpu), "no" if precision == "fp16" else precision)
        check_launch(self.accelerator.num_processes)
        rank = self.accelerator.process_index
        torch.manual_seed(spec.train.seed)            # identical initial weights on every rank
        raw = build_modules(spec)
        if rank:   # then each rank its own global RNG (dropout masks), as it has its own noise
            torch.manual_seed(spec.train.seed * 1000 + 59 * rank)
        self._load_fixed_weights(raw)
        self.raw = raw
        self.ema = {m: copy.deepcopy(raw[m]).requires_grad_(False) for m in spec.train.ema}
        self.standing_copies: dict = {}   # EMA module -> (step, its copy with batch-norm statistics estimated then)
        self._prepare(raw)
        self.generator = torch.Generator().manual_seed(spec.train.seed * 1000 + 17 + rank)
        self.streams = {i.name: BatchStream(load_table(spec, i), spec.batch_of(i.name),
                                            spec.train.seed * 1000 + 31 * (k + 1) + rank)
                        for k, i in enumerate(spec.inputs) if i.kind == "data"}
        self.state: dict = {}
        self.step_count = 0
        self._frozen: frozenset = frozenset()
        self.forward_calls = {m: 0 for m in raw}
        self.ctx = Context(self.modules, self.generator, self.device, self._draw, spec.batch_of, self.state)
        self.interpreter = Training(self.ctx, self.forward_calls)
        self.precision = Precision(precision, self.accelerator, [p.name for p in plan.phases])
        fast.apply(self)   # streams on the device; opt-in channels-last and torch.compile

    def _prepare(self, raw: dict) -> None:
        """Optimizers, modules on the device (DDP-wrapped under several processes), LR schedules;
        modules no optimizer trains are frozen. Only the modules go through Accelerate: its
        optimizer wrapper serves gradient accumulation, its own fp16 scaler and XLA, none of which
        composer uses, and cost ~0.3 ms per step (docs/benchmarks.md); the plain optimizers see
        the same parameters, moved in place."""
        spec = self.spec
        self.optimizers = {opt.name: make_optimizer(opt, [p for m in opt.params for p in raw[m].parameters()])
                           for opt in spec.optimizers}
        prepared = self.accelerator.prepare(*raw.values())
        prepared = prepared if isinstance(prepared, (list, tuple)) else (prepared,)
        self.modules = dict(zip(raw, prepared))
        self.schedulers = {opt.name: make_lr_schedule(opt, self.optimizers[opt.name], spec.train.steps)
                           for opt in spec.optimizers}
        for name, module in raw.items():
            if name not in self.graph.owner:
                module.requires_grad_(False)
                if self.graph.param_counts[name]:   # fixed weights (`weights:`): fixed statistics
                    module.eval()                   # too, no batch norm updates, no dropout

    @property
    def device(self) -> torch.device:
        return self.accelerator.device

    def _load_fixed_weights(self, raw) -> None:
        from composer.run.checkpoint import load_module_weights

        for module in self.spec.modules:
            if module.weights:
                load_module_weights(self.spec, module, raw[module.name])

    # ------------------------------------------------------------------ one step
    def step(self, feed: dict | None = None) -> dict[str, float]:
        """One compiled training step; `feed` gives input tensors explicitly (else they are drawn).
        Returns the mean of every loss term evaluated in this step, as 0-dim tensors on the
        training device (read them with float(): nothing waits for the device each step)."""
        logs: dict = {}
        feed = dict(feed or {})
        self.ctx.step = self.step_count
        try:
            for names in self.plan.rounds(self.plan.active(self.step_count)):
                self._round(names, feed, logs)
        finally:
            self._freeze(())
        with warnings.catch_warnings():   # a phase skipped by `every` has not stepped yet: harmless
            warnings.filterwarnings("ignore", message="Detected call of `lr_scheduler.step")
            for scheduler in self.schedulers.values():
                scheduler.step()
        self.step_count += 1
        return logs

    def _round(self, names, feed, logs) -> None:
        env: dict = {}
        self.ctx.records.clear()
        for name, nodes in zip(names, self.plan.evaluated(names, self.step_count)):
            phase = self.plan.view(name, self.step_count)
            self.ctx.phase, self.ctx.grad_scale = name, self.precision.grad_scale(name)
            self._freeze(phase.frozen)
            optimizers = [self.optimizers[o] for o in phase.optimizers]
            for optimizer in optimizers:
                optimizer.zero_grad(set_to_none=True)
            with self.precision.autocast():
                loss = self._run_ops(phase, nodes, env, feed, logs)
            if self._check_finite(name, phase, loss, logs):
                self._update(name, phase, loss, optimizers)

    def _update(self, name, phase, loss, optimizers) -> None:
        self.precision.backward(name, loss)
        if self.spec.train.grad_clip:
            self.precision.unscale(name, optimizers)
            params = [p for m in phase.trains for p in self.modules[m].parameters()]
            self.accelerator.clip_grad_norm_(params, self.spec.train.grad_clip)
        self.precision.step(name, optimizers)
        self._update_ema(phase.trains)

    def _run_ops(self, phase, nodes, env, feed, logs) -> torch.Tensor:
        """The phase's computed nodes through the training interpreter; its loss."""
        return self.interpreter.phase(phase, nodes, env, feed, logs)

    def _draw(self, name: str) -> dict:
        return self.streams[name].next()

    def _freeze(self, frozen) -> None:
        """Modules in `frozen` get no gradients, the others do; only modules whose state changes
        are touched (the last phase's choice holds until the step ends, then all are unfrozen)."""
        for name in self.graph.owner:
            if (name in frozen) != (name in self._frozen):
                self.modules[name].requires_grad_(name not in frozen)
        self._frozen = frozenset(frozen)

    def _check_finite(self, name, phase, loss, logs) -> bool:
        """Stop before the optimizer step when the phase's loss is not finite: one host read per
        phase (the ranks agree on it, so none waits in a backward the others skipped); the terms
        are looked at only then, to name the culprits. In fp16, an overflow the phase's scale
        caused skips the step instead (False)."""
        finite = torch.isfinite(loss.detach()).float()
        if self.accelerator.num_processes > 1:
            finite = self.accelerator.reduce(finite, reduction="sum") / self.accelerator.num_processes
        if bool(finite == 1):
            return True
        if self.precision.overflowed(name):
            return False
        bad = {t: float(logs[t]) for t in phase.terms if t in logs and not torch.isfinite(logs[t])}
        terms = ", ".join(f"{t}={v}" for t, v in bad.items()) or "the weighted sum (here or on another process)"
        raise NonFiniteLoss(f"non-finite loss in phase {name} at step {self.step_count}: {terms}")

    def check_state(self) -> None:
        """Weights, EMA copies and optimizer moments are finite (before a checkpoint is written, so
        the last checkpoint is always a good one); NonFiniteLoss names the first bad tensor."""
        for name, module in list(self.raw.items()) + [(f"ema.{n}", m) for n, m in self.ema.items()]:
            for key, value in module.state_dict().items():
                if value.is_floating_point() and not bool(torch.isfinite(value).all()):
                    raise NonFiniteLoss(f"module {name}: {key} is not finite at step {self.step_count}")
        for opt_name, optimizer in self.optimizers.items():
            for state in optimizer.state.values():
                for key, value in state.items():
                    if torch.is_tensor(value) and value.is_floating_point() and not bool(torch.isfinite(value).all()):
                        raise NonFiniteLoss(f"optimizer {opt_name}: its {key} state is not finite at step "
                                            f"{self.step_count} (the learning rate may be too high)")

    @torch.no_grad()
    def _update_ema(self, trained) -> None:
        for name in trained:
            if name not in self.ema:
                continue
            decay = float(self.spec.train.ema[name])
            source = self.accelerator.unwrap_model(self.modules[name])
            for p_ema, p in zip(self.ema[name].parameters(), source.parameters()):
                p_ema.lerp_(p.detach(), 1 - decay)
            for b_ema, b in zip(self.ema[name].buffers(), source.buffers()):
                b_ema.copy_(b)

    def _standing_copy(self, name: str) -> torch.nn.Module:
        """The EMA copy of `name` with batch-norm statistics estimated for its weights at this step
        (the EMA module itself when it has no batch norm or `train.standing_stats` is 0)."""
        batches = self.spec.train.standing_stats
        if not batches or not standing.batch_norms(self.ema[name]):
            return self.ema[name]
        step, copy = self.standing_copies.get(name, (None, None))
        if step != self.step_count:
            self.standing_copies[name] = (self.step_count, self.ema[name])   # what the estimate's own forward sees
            self.standing_copies[name] = (self.step_count, standing.estimate(self, name, batches, into=copy))
        return self.standing_copies[name][1]

    def unwrapped(self, name: str, ema: bool = True) -> torch.nn.Module:
        """The module for generation: its EMA copy when there is one, with its batch-norm
        statistics re-estimated for its own weights once per step (composer/standing.py)."""
        if ema and name in self.ema:
            return self._standing_copy(name)
        return self.accelerator.unwrap_model(self.modules[name])


def _accelerator(cpu: bool, precision: str) -> Accelerator:
    """Accelerate keeps one process-wide state; a single process may switch precision between
    runs (API users, notebooks), so reset it there. Under torchrun every run shares it."""
    from accelerate.state import AcceleratorState, PartialState

    if AcceleratorState._shared_state and PartialState().num_processes == 1:
        if AcceleratorState().mixed_precision != precision:
            AcceleratorState._reset_state(reset_partial_state=True)
    return Accelerator(cpu=cpu, mixed_precision=precision,
                       dataloader_config=DataLoaderConfiguration(use_seedable_sampler=True))


# what Accelerate reads for the world size (accelerate/state.py), in its order
WORLD_SIZE_VARIABLES = ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "MV2_COMM_WORLD_SIZE", "WORLD_SIZE")


def check_launch(num_processes: int, environ=None) -> None:
    """Refuse a process launched as one of several (torchrun, MPI) in which Accelerate set up a
    different number of processes: each would train its own unsynchronised copy, silently (with a
    plain GPU-less `Accelerator()` under torchrun every process reports DistributedType.NO)."""
    import os

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


class NonFiniteLoss(ComposerError):
    """A loss term became NaN or infinite; raised before the optimizer step, so weights are intact."""
