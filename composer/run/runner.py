"""The runtime: the coordinator of one training run over the compiled Plan, on HuggingFace
Accelerate.

`Runner.step()` runs one training step: for each round, for each phase, it sets which modules
are frozen, runs the phase's nodes through the training interpreter (composer/run/training.py:
compute or reuse, detach on cut edges, loss terms reduced with their weights at this step),
checks the loss and then the gradients are finite (composer/run/finite.py), steps the phase's
optimizers and calls the hooks. Its other jobs live beside it: the launch checks and the
Accelerator (launch.py), EMA copies (ema.py, the default hook), data streams (feeds.py), fp16
scaling (precision.py), fast modes (fast.py). There is no generated code, and nothing here
names a recipe or a model.
"""
from __future__ import annotations

import warnings

import torch
from accelerate import Accelerator

from composer.data.inputs import load_table
from composer.graph.interpreter import Context
from composer.graph.modules import build_modules
from composer.graph.plan import Plan
from composer.run import fast, finite
from composer.run.ema import EMA
from composer.run.feeds import BatchStream
from composer.run.finite import NonFiniteLoss  # noqa: F401 -- importers name it composer.run.runner.NonFiniteLoss
from composer.run.launch import check_launch, check_method_calls, launch_warning, make_accelerator
from composer.run.optim import make_lr_schedule, make_optimizer
from composer.run.precision import Precision
from composer.run.training import Training


class Runner:
    """Trains the plan's modules one step at a time.

    Hooks: `hooks` is a list of objects with `after_phase(runner, phase, trained)`, called in
    order right after a phase's optimizer step (not when the step was skipped: fp16 overflow)
    with the phase's name and the modules it trained. With `train.ema` set, the EMA copies
    (composer/run/ema.py) are the first hook; append your own to the list.
    """

    def __init__(self, plan: Plan, accelerator: Accelerator | None = None, cpu: bool | None = None):
        spec = self.spec = plan.spec
        self.plan, self.graph = plan, plan.graph
        if spec.train.threads:
            torch.set_num_threads(spec.train.threads)
        if cpu is None:   # without a GPU, cpu=True is what makes torchrun give MULTI_CPU (gloo)
            cpu = not torch.cuda.is_available()
        precision = spec.train.precision   # fp16's scaling is composer's own (precision.py)
        self.accelerator = accelerator or make_accelerator(bool(cpu), "no" if precision == "fp16" else precision)
        check_launch(self.accelerator.num_processes)
        if (warning := launch_warning(self.accelerator.num_processes)) is not None:
            print(warning, flush=True)
        check_method_calls(plan.graph, self.accelerator.num_processes)
        rank = self.accelerator.process_index
        self.raw = raw = _build(spec, rank)
        self.averages = EMA(raw, spec.train.ema)
        self.ema = self.averages.copies                      # module -> its EMA copy
        self.standing_copies = self.averages.standing        # module -> (step, standing-statistics copy)
        self.hooks: list = [self.averages] if spec.train.ema else []
        self._prepare(raw)
        self.generator = torch.Generator().manual_seed(spec.train.seed * 1000 + 17 + rank)
        self.streams = {i.name: BatchStream(load_table(spec, i), spec.batch_of(i.name),
                                            spec.train.seed * 1000 + 31 * (k + 1) + rank)
                        for k, i in enumerate(spec.inputs) if i.kind == "data"}
        self.state: dict = {}
        self.step_count = 0
        self._frozen: frozenset = frozenset()
        self._params: dict[str, list] = {}     # each trained module's parameters, listed once (_freeze)
        self.forward_calls = {m: 0 for m in raw}
        self.ctx = Context(self.modules, self.generator, self.device, self._draw, spec.batch_of, self.state)
        self.interpreter = Training(self.ctx, self.forward_calls)
        self._static = None
        self._static = self._schedule(0) if _constant(plan) else None
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
        self.modules = self._placed(raw)
        self.schedulers = {opt.name: make_lr_schedule(opt, self.optimizers[opt.name], spec.train.steps)
                           for opt in spec.optimizers}
        for name, module in raw.items():
            if name not in self.graph.owner:
                module.requires_grad_(False)
                if self.graph.param_counts[name]:   # fixed weights (`weights:`): fixed statistics
                    module.eval()                   # too, no batch norm updates, no dropout

    def _placed(self, raw: dict) -> dict:
        """The modules on the device through Accelerate (DDP-wrapped under several processes);
        a module without parameters (a vector quantiser's EMA codebook: buffers only) is moved
        as it is, since DDP refuses a module with nothing to synchronise."""
        with_params = [name for name in raw if self.graph.param_counts[name]]
        prepared = self.accelerator.prepare(*(raw[name] for name in with_params)) if with_params else ()
        prepared = dict(zip(with_params, prepared if isinstance(prepared, (list, tuple)) else (prepared,)))
        return {name: prepared[name] if name in prepared else raw[name].to(self.device) for name in raw}

    @property
    def device(self) -> torch.device:
        return self.accelerator.device

    # ------------------------------------------------------------------ one step
    def step(self, feed: dict | None = None) -> dict[str, float]:
        """One compiled training step; `feed` gives input tensors explicitly (else they are drawn).
        Returns the mean of every loss term evaluated in this step, as 0-dim tensors on the
        training device (read them with float(): nothing waits for the device each step)."""
        logs: dict = {}
        feed = dict(feed or {})
        self.ctx.step = self.step_count
        try:
            for phases in self._schedule(self.step_count):
                self._round(phases, feed, logs)
        finally:
            self._freeze(())
        if self.step_count:   # torch checks the order only at a scheduler's first step
            for scheduler in self.schedulers.values():
                scheduler.step()
        else:
            with warnings.catch_warnings():   # a phase skipped by `every` has not stepped yet: harmless
                warnings.filterwarnings("ignore", message="Detected call of `lr_scheduler.step")
                for scheduler in self.schedulers.values():
                    scheduler.step()
        self.step_count += 1
        return logs

    def _schedule(self, step: int) -> tuple:
        """Per round of `step`, per phase: (name, the phase as it runs, the nodes it evaluates);
        taken once when nothing in the plan depends on the step (no `every`)."""
        if self._static is not None:
            return self._static
        plan = self.plan
        return tuple(tuple(zip(names, [plan.view(n, step) for n in names], plan.evaluated(names, step)))
                     for names in plan.rounds(plan.active(step)))

    def _round(self, phases, feed, logs) -> None:
        env: dict = {}
        self.ctx.records.clear()
        for name, phase, nodes in phases:
            self.ctx.phase, self.ctx.grad_scale = name, self.precision.grad_scale(name)
            self._freeze(phase.frozen)
            optimizers = [self.optimizers[o] for o in phase.optimizers]
            for optimizer in optimizers:
                optimizer.zero_grad(set_to_none=True)
            with self.precision.autocast():
                loss = self._run_ops(phase, nodes, env, feed, logs)
            if finite.check_loss(self, name, phase, loss, logs):
                self._update(name, phase, loss, optimizers, lambda: self._rerun(phase, nodes, env, feed))

    def _update(self, name, phase, loss, optimizers, rerun) -> None:
        self.precision.backward(name, loss)
        if self.spec.train.grad_clip:
            self.precision.unscale(name, optimizers)
            params = [p for m in phase.trains for p in self.modules[m].parameters()]
            self.accelerator.clip_grad_norm_(params, self.spec.train.grad_clip)
        finite.check_gradients(self, name, phase, optimizers, rerun)
        self.precision.step(name, optimizers)
        for hook in self.hooks:
            hook.after_phase(self, name, phase.trains)

    def _run_ops(self, phase, nodes, env, feed, logs) -> torch.Tensor:
        """The phase's computed nodes through the training interpreter; its loss."""
        return self.interpreter.phase(phase, nodes, env, feed, logs)

    def _rerun(self, phase, nodes, env, feed) -> tuple[dict, list]:
        """The phase evaluated again from the same inputs (its draws fed back), for a message on the
        stopping path only: (its environment, its nodes)."""
        drawn = {n.name: env[n.name] for n in nodes if n.kind in ("data", "field", "noise")}
        again = {k: v for k, v in env.items() if k not in {n.name for n in nodes}}
        with self.precision.autocast():
            self.interpreter.phase(phase, nodes, again, {**feed, **drawn}, {})
        return again, list(nodes)

    def _draw(self, name: str) -> dict:
        return self.streams[name].next()

    def _freeze(self, frozen) -> None:
        """Modules in `frozen` get no gradients, the others do; only modules whose state changes
        are touched (the last phase's choice holds until the step ends, then all are unfrozen)."""
        for name in self.graph.owner:
            if (name in frozen) != (name in self._frozen):
                params = self._params.get(name)
                if params is None:          # Module.requires_grad_ walks the module tree: 80 us a call
                    params = self._params[name] = list(self.modules[name].parameters())
                for p in params:
                    p.requires_grad_(name not in frozen)
        self._frozen = frozenset(frozen)

    def check_state(self) -> None:
        """Weights, EMA copies and optimizer moments are finite (before a checkpoint is written, so
        the last checkpoint is always a good one); NonFiniteLoss names the first bad tensor."""
        finite.check_state(self)

    def unwrapped(self, name: str, ema: bool = True) -> torch.nn.Module:
        """The module for generation: its EMA copy when there is one, with its batch-norm
        statistics re-estimated for its own weights once per step (composer/run/standing.py)."""
        if ema and name in self.ema:
            return self.averages.for_generation(self, name)
        return self.accelerator.unwrap_model(self.modules[name])


def _constant(plan) -> bool:
    """Every phase and every term runs at every step: the step's schedule never changes."""
    nodes = plan.graph.nodes
    return all(p.every == 1 and all(nodes[t].every == 1 for t in p.terms) for p in plan.phases)


def _build(spec, rank: int) -> dict:
    """The modules, with identical initial weights on every rank, and fixed weights (`weights:`)
    loaded; then each rank gets its own global RNG (dropout masks), as it has its own noise."""
    from composer.run.checkpoint import load_module_weights

    torch.manual_seed(spec.train.seed)
    raw = build_modules(spec)
    if rank:
        torch.manual_seed(spec.train.seed * 1000 + 59 * rank)
    for module in spec.modules:
        if module.weights:
            load_module_weights(spec, module, raw[module.name])
    return raw
