"""Whole-phase compilation (`train.compile: phase`, composer/run/phase_compile.py): which nodes
each phase compiles (composer/graph/regions.py), without compiling; then compiled-phase training
against eager training of the same graph within 1e-5 (the parity tests compile: slow)."""
import pytest
import torch

from composer import api
from composer.graph.nodes import Node, Op
from composer.graph.regions import split
from composer.run import fast, partition
from composer.run.phase_compile import PhaseTraining
from conftest import GRAPHS
from specs import tiny_denoiser


def gan_ring(*overrides):
    return api.runner(GRAPHS / "gan_ring.yaml", ["train.batch=16", "train.ema={}", "train.threads=1",
                                                 "modules.G.hidden=16", "modules.D.hidden=16", *overrides], cpu=True)


def splits(plan):
    names = plan.rounds(plan.active(0))[0]
    return {name: split(nodes, plan.phase(name).cuts)
            for name, nodes in zip(names, plan.evaluated(names, 0))}


def names(nodes) -> list:
    return [n.name for n in nodes]


def test_r1_phase_compiles_its_loss_and_keeps_the_penalty_and_the_later_phases_fake_eager():
    parts = splits(api.plan(GRAPHS / "gan_ring.yaml"))
    d, g = parts["D"], parts["G"]
    # R1 differentiates the loss term's D(real) (shared call, composer/graph/sharing.py): that call
    # stays eager with the penalty; the loss term reading its logits is compiled
    shared = ("gan.real_logits:grad:real", "gan.real_logits", "gan.r1", "gan.D_r1")
    assert names(d.region) == ["gan.fake_logits", "gan.D_real", "gan.D_fake"]
    assert names(d.before) == ["real", "z", "fake", *shared] and d.after == ()
    assert d.eager == shared
    assert names(g.region) == ["gan.fake_logits", "gan.G"] and g.eager == ()
    assert d.describe() == f"region of 3 nodes, eager: {', '.join(shared)}" and g.describe() == "region of 2 nodes"


def test_denoiser_phase_draws_outside_and_compiles_the_rest():
    (parts,) = splits(api.plan(GRAPHS / "diffusion_2d.yaml")).values()
    assert names(parts.before) == ["x0", "dsm.u", "dsm.eps"]
    assert names(parts.region) == ["dsm.t", "dsm.x_t", "dsm.pred", "dsm.loss"]


class Penalty(Op):
    double_backward = True


def test_a_phase_whose_only_term_reads_a_penalty_is_not_compiled():
    nodes = [Node("x", "data", "ring"), Node("p", "fn", inputs=("x",), op=Penalty()),
             Node("t", "term", inputs=("p",))]
    parts = split(nodes, ())
    assert parts.region == () and parts.describe() == "per module (no loss term outside its gradient penalties)"
    assert split(nodes, (), fed=("x",)).eager == ("p", "t")


def test_a_region_that_would_read_a_later_value_is_not_compiled():
    """c -> a (off the loss path) -> cut edge -> t: `a` reads the region and the region reads `a`."""
    nodes = [Node("x", "data", "ring"), Node("c", "fn", inputs=("x",)), Node("a", "fn", inputs=("c",)),
             Node("t", "term", inputs=("c", "a"))]
    assert split(nodes, ()).region != ()
    parts = split(nodes, (("c", "a"), ("a", "t")))
    assert parts.region == () and "would read a value computed after it" in parts.reason


def test_phase_scope_parses_with_and_without_options():
    assert fast.compile_scope("phase") == "phase" and fast.compile_options("phase") == {}
    spec = api.plan(GRAPHS / "gan_ring.yaml", ["train.compile={scope: phase, mode: max-autotune}"]).spec
    assert fast.compile_scope(spec.train.compile) == "phase"
    assert fast.compile_options(spec.train.compile) == {"mode": "max-autotune"}
    assert fast.compile_scope(True) == "module" and fast.compile_scope({"mode": "default"}) == "module"
    assert fast.compile_scope(None) is None and fast.compile_scope(False) is None


def test_the_cpu_partitioner_replaces_mode_by_its_inductor_options():
    options = partition.for_device({"mode": "max-autotune-no-cudagraphs"}, torch.device("cpu"))
    assert "mode" not in options and options["options"]["max_autotune"] is True
    assert isinstance(options["options"]["custom_partitioner_fn"], partition.SaveInputs)
    assert partition.for_device({"backend": "aot_eager"}, torch.device("cpu")) == {"backend": "aot_eager"}
    assert partition.for_device({}, torch.device("cuda")) == {}


def test_phase_scope_installs_the_phase_interpreter_and_nothing_compiles_before_a_step():
    runner = gan_ring("train.compile=phase")
    assert isinstance(runner.interpreter, PhaseTraining) and runner.interpreter.regions == {}
    assert set(runner.compiled) == {"G", "D"}     # per-module forwards serve the eager parts
    assert not isinstance(gan_ring().interpreter, PhaseTraining)


def max_gap(a, b, modules) -> float:
    return max(float((p - q).detach().abs().max()) for n in modules
               for p, q in zip(a.raw[n].parameters(), b.raw[n].parameters()))


@pytest.mark.slow
def test_r1_gan_with_phase_regions_equals_eager_within_1e_6_through_dynamo_and_aot_autograd():
    """The same capture and autograd split as inductor without its code generation (aot_eager):
    the D phase's region beside R1's eager double backward, the G phase whole; the fake that
    G's phase backpropagates through was computed in D's phase outside its region."""
    eager, compiled = gan_ring(), gan_ring("train.compile={scope: phase, backend: aot_eager}")
    for _ in range(3):
        ref, logs = eager.step(), compiled.step()
        assert {k: float(v) for k, v in logs.items()} == pytest.approx({k: float(v) for k, v in ref.items()},
                                                                       rel=1e-5, abs=1e-7)
    assert max_gap(eager, compiled, ("G", "D")) < 1e-6      # 3 Adam steps of lr 8e-4 move ~2e-3
    assert compiled.forward_calls == eager.forward_calls
    assert {k: v.describe() for k, v in compiled.interpreter.splits.items()} == {
        "D": "region of 3 nodes, eager: gan.real_logits:grad:real, gan.real_logits, gan.r1, gan.D_r1", "G": "region of 2 nodes"}


@pytest.mark.slow
def test_denoiser_phase_compiled_by_inductor_equals_eager_within_1e_5():
    """Inductor's code (fused elementwise work, its own reduction order): 1e-5 on the weights."""
    eager = api.runner(api.from_dict(tiny_denoiser(threads=1)), cpu=True)
    compiled = api.runner(api.from_dict(tiny_denoiser(threads=1, compile="phase")), cpu=True)
    for _ in range(3):
        ref, logs = eager.step(), compiled.step()
        assert float(logs["dsm.loss"]) == pytest.approx(float(ref["dsm.loss"]), rel=1e-5)
    assert max_gap(eager, compiled, ("eps_net",)) < 1e-5
    assert compiled.interpreter.splits["eps_net"].describe() == "region of 3 nodes"   # t is drawn


def test_the_printed_plan_says_what_each_phase_compiles_only_under_phase_scope():
    printed = api.format_table(api.plan(GRAPHS / "gan_ring.yaml", ["train.compile=phase"]))
    assert "compiled per phase: D region of 3 nodes, eager: gan.real_logits:grad:real, gan.real_logits, gan.r1, gan.D_r1; G region of 2 nodes" in printed
    assert "compiled per phase" not in api.format_table(api.plan(GRAPHS / "gan_ring.yaml", ["train.compile=true"]))
