"""The one interpreter: a method per node kind, and training, shape inference and generation all
evaluate their nodes through it."""
import pytest
import torch
from torch import nn

from composer import api
from composer.graph.interpreter import Context, Interpreter
from composer.graph.nodes import KINDS, Loss, Node, Op
from composer.graph.shapes import ShapeProp
from composer.run.generate import Generating, generate
from composer.run.training import Training
from specs import small_dcgan

B = 4


class Double(Op):
    def __call__(self, ctx, x):
        return 2 * x


def _context(**modules) -> Context:
    def draw(name):
        return {"x": torch.arange(B * 2.0).reshape(B, 2), "label": torch.arange(B)}

    return Context(modules, torch.Generator().manual_seed(0), torch.device("cpu"), draw, lambda name: B)


def test_the_interpreter_has_one_method_per_node_kind_and_no_other():
    passes = {"run", "run_node", "evaluate"}
    methods = {name for name, value in vars(Interpreter).items() if callable(value) and not name.startswith("_")}
    assert methods - passes == set(KINDS)
    assert set(Interpreter(_context()).methods) == set(KINDS)


def test_a_node_of_an_unknown_kind_is_refused_with_the_kinds():
    with pytest.raises(ValueError, match=r"node 'x' has kind 'loop'; the node kinds are data, field, noise, call, fn, term"):
        Node("x", "loop")


def test_each_kind_evaluates_in_a_run():
    lin = nn.Linear(2, 3)
    nodes = [Node("real", "data", target="src"), Node("label", "field", target="label", inputs=("real",)),
             Node("z", "noise", target="normal", args={"shape": [2]}), Node("h", "call", target="lin", inputs=("z",)),
             Node("twice", "fn", op=Double(), inputs=("real",)),
             Node("t", "term", op=Loss(lambda h: h.pow(2).sum(1), "sq"), inputs=("h",))]
    env = Interpreter(_context(lin=lin)).run(nodes, {})
    assert list(env) == [n.name for n in nodes]
    assert torch.equal(env["real"], torch.arange(B * 2.0).reshape(B, 2)) and torch.equal(env["label"], torch.arange(B))
    assert torch.equal(env["z"], torch.randn(B, 2, generator=torch.Generator().manual_seed(0)))
    assert torch.equal(env["h"], lin(env["z"])) and torch.equal(env["twice"], 2 * env["real"])
    assert env["t"].shape == (B,) and torch.equal(env["t"], env["h"].pow(2).sum(1))


def test_a_term_must_give_one_value_per_sample():
    term = Node("t", "term", op=Loss(lambda x: x, "identity"), inputs=("x",))
    with pytest.raises(ValueError, match=r"a loss term must return one value per sample, shape \[B\], got \[4, 2\]"):
        Interpreter(_context()).evaluate(term, [torch.zeros(B, 2)])


def test_a_field_without_its_draw_names_what_to_give():
    node = Node("label", "field", target="label", inputs=("real",))
    with pytest.raises(KeyError, match=r"'label' is a field of 'real', whose value was given without its fields"):
        Interpreter(_context()).evaluate(node, [torch.zeros(B, 2)])


def test_a_pass_overrides_a_kind_on_the_meta_device():
    ctx = Context({}, None, torch.device("meta"), None, lambda name: B)
    value = Interpreter(ctx).evaluate(Node("z", "noise", target="normal", args={"shape": [5]}), [])
    assert value.is_meta and value.shape == (B, 5) and value.dtype == torch.float32


def test_training_shape_inference_and_generation_all_go_through_the_interpreter(monkeypatch):
    seen = []
    real_call = Interpreter.call

    def call(self, node, inputs):
        seen.append((type(self), node.name))
        return real_call(self, node, inputs)

    monkeypatch.setattr(Interpreter, "call", call)   # bound into `methods` when a pass is made
    plan = api.plan(api.from_dict(small_dcgan()))
    assert {name for kind, name in seen if kind is ShapeProp} == {"fake", "gan.real_logits", "gan.fake_logits"}
    runner = api.runner(plan, cpu=True)
    seen.clear()
    runner.step()
    assert [name for kind, name in seen if kind is Training] == ["fake", "gan.real_logits", "gan.fake_logits",
                                                                  "gan.fake_logits"]
    assert runner.forward_calls == {"G": 1, "D": 3}
    seen.clear()
    assert generate(runner, 3).shape == (3, 1, 8, 8)
    assert seen == [(Generating, "fake")]


def test_training_detaches_cut_edges_and_sums_the_terms():
    runner = api.runner(api.from_dict(small_dcgan()), cpu=True)
    seen, real_call = [], runner.interpreter.methods["call"]

    def call(node, inputs):
        seen.append((runner.ctx.phase, node.name, inputs[0].requires_grad))
        return real_call(node, inputs)

    runner.interpreter.methods["call"] = call
    logs = runner.step()
    assert ("D", "gan.fake_logits", False) in seen and ("G", "gan.fake_logits", True) in seen   # the cut G -> D
    assert set(logs) == {"gan.D_real", "gan.D_fake", "gan.G"}
    phase = runner.plan.phase("D")
    (nodes,) = runner.plan.evaluated(("D",))
    logs = {}
    loss = runner.interpreter.phase(phase, nodes, {}, {}, logs)
    assert set(logs) == {"gan.D_real", "gan.D_fake"}
    assert torch.equal(loss, logs["gan.D_real"] + logs["gan.D_fake"])


def test_the_evaluated_nodes_are_the_program_without_reuses():
    plan = api.plan(api.from_dict(small_dcgan()))
    names = tuple(p.name for p in plan.phases)
    programs = plan.program(names)
    assert any(op.action == "reuse" for ops in programs for op in ops)
    for ops, nodes in zip(programs, plan.evaluated(names)):
        assert [n.name for n in nodes] == [op.node for op in ops if op.action != "reuse"]
