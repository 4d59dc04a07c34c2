"""The open vocabulary: data fields, flow ops, multi-input modules, lists in recipe arguments,
term options (weight schedules, periods), declared phases and their checks, with every error
pinned with its message and location."""
import pytest
import torch

from composer import api
from composer.errors import ComposerError, SpecError
from composer.graph.view import format_table
from specs import small_2d_gan, small_dcgan


def cgan(**extra):
    data = small_dcgan()
    data["inputs"]["y_fake"] = {"noise": "categorical", "classes": 10}
    data["modules"]["G"] = {"block": "ConditionalDCGANGenerator", "image_size": 8, "channels": 1, "latent": 8,
                            "num_classes": 10, "width": 8}
    data["modules"]["D"] = {"block": "ConditionalDCGANDiscriminator", "image_size": 8, "channels": 1,
                            "num_classes": 10, "width": 8}
    data["flow"] = {"fake": "G(z, y_fake)"}
    data["objectives"]["gan"].update(real=["real", "real.y"], fake=["fake", "y_fake"], **extra)
    return data


def vae():
    return {
        "name": "vae",
        "inputs": {"x": {"source": "digits", "size": 8}},
        "modules": {"enc": {"block": "MLP", "in_features": 64, "hidden": 16, "depth": 1, "out_features": 8},
                    "dec": {"block": "MLP", "in_features": 4, "hidden": 16, "depth": 1, "out_features": 64}},
        "flow": {"flat": 'rearrange(x, pattern="b c h w -> b (c h w)")', "h": "enc(flat)", "parts": "chunk(h, 2)",
                 "mu": "parts[0]", "logvar": "parts[1]", "z": "reparameterize(mu, logvar)", "out": "dec(z)",
                 "x_rec": 'rearrange(out, pattern="b (c h w) -> b c h w", c=1, h=8, w=8)'},
        "objectives": {"rec": {"recipe": "reconstruction", "prediction": "x_rec", "target": "x", "distance": "l2"},
                       "kl": {"recipe": "kl_divergence", "mean": "mu", "logvar": "logvar",
                              "weight": {"type": "linear", "steps": 10, "end": 0.5}}},
        "optimizers": {"vae": {"params": ["enc", "dec"], "lr": 1e-3}},
        "train": {"steps": 3, "batch": 8},
        "sample": {"output": "x_rec", "n": 4},
    }


# ------------------------------------------------------------------ fields and ops
def test_a_data_input_yields_its_fields_drawn_with_the_same_indices():
    runner = api.runner(api.from_dict(cgan()), cpu=True)
    graph = runner.graph
    assert (graph.nodes["real.y"].kind, graph.nodes["real.y"].inputs) == ("field", ("real",))
    assert graph.shapes["real.y"] == () and graph.shapes["y_fake"] == ()
    record = runner.streams["real"].next()
    table = runner.streams["real"].table
    matches = (table.x.flatten(1)[:, None] == record["x"].flatten(1)[None]).all(-1)
    rows = matches.float().argmax(0)
    assert torch.equal(table.y[rows], record["y"])


def test_the_primary_field_has_an_alias_and_unknown_fields_are_errors():
    data = cgan()
    data["objectives"]["gan"]["real"] = ["real.x", "real.y"]
    plan = api.plan(api.from_dict(data))
    assert plan.graph.nodes["gan.real_logits"].inputs == ("real", "real.y")
    data["objectives"]["gan"]["real"] = ["real", "real.label"]
    with pytest.raises(SpecError, match=r"objectives.gan: 'real.label' is not an input, input field, flow tensor "
                                        r"or objective output \(did you mean 'real.y'\?\)"):
        api.plan(api.from_dict(data))


def test_flow_ops_are_shape_checked_and_shown_in_the_plan():
    plan = api.plan(api.from_dict(vae()))
    assert plan.graph.shapes["parts"] == [(4,), (4,)] and plan.graph.shapes["x_rec"] == (1, 8, 8)
    table = format_table(plan)
    assert "compute  parts     chunk[chunks=2, dim=1](h)" in table and "([B, 4], [B, 4])" in table
    assert "0.5 * linear(steps=10, end=0.5)" not in table          # the weight is 1 x the schedule
    assert "1 * linear(steps=10, end=0.5) * gaussian_kl[sum](mu, logvar)" in table


@pytest.mark.parametrize("flow, message", [
    ('cat(x, pattern=3)', r"flow.bad.pattern: op cat has no argument 'pattern' \(expected one of: dim\)"),
    ('one_hot(x)', r"flow.bad: op one_hot needs argument\(s\): num_classes"),
    ('one_hot(x, num_classes=0)', r"flow.bad: op one_hot: num_classes must be a positive integer, got 0"),
    ('exp(x, y)', r"flow.bad: exp\(x, y\) failed on inputs x \[8, 1, 8, 8\], y \[8, 1, 8, 8\]"),
    ('chunk(x, 3, dim=2)', r"flow.bad: chunk\(x\) failed on inputs x \[8, 1, 8, 8\]: axis 2 of size 8 does not split into 3"),
    ('x + y', r"flow.bad: 'x \+ y': arithmetic is written as ops: add\(a, b\)"),
    ('G(z)[0]', r"flow.bad: 'G\(z\)\[0\]': expected a tensor name at column 1, got 'G\(z\)'"),
    ('foo(x)', r"flow.bad: unknown module or op 'foo'"),
    ('enc(x, width=3)', r"flow.bad: module enc takes tensors only; its arguments \(width\) belong under modules.enc"),
    ('mul(x, 1, 2)', r"flow.bad: 'mul\(x, 1, 2\)': at most one positional constant"),
])
def test_bad_flow_entries_are_errors_at_their_line(flow, message):
    data = vae()
    data["inputs"]["y"] = {"noise": "normal", "like": "x"}
    data["flow"]["bad"] = flow
    with pytest.raises(SpecError, match=message):
        api.plan(api.from_dict(data))


def test_a_list_where_one_tensor_is_expected_is_an_error_not_a_traceback():
    data = vae()
    data["objectives"]["rec"]["prediction"] = ["x_rec", "x"]
    with pytest.raises(SpecError, match=r"objectives.rec.prediction: recipe reconstruction: 'prediction' takes one "
                                        r"tensor name, got \['x_rec', 'x'\] \(a list is accepted only where several"):
        api.plan(api.from_dict(data))
    data = cgan()
    data["objectives"]["gan"]["real"] = {"x": "real"}
    with pytest.raises(SpecError, match=r"objectives.gan.real: recipe adversarial: 'real' takes a tensor name or a "
                                        r"list of them"):
        api.plan(api.from_dict(data))
    data = cgan()
    data["objectives"]["gan"]["fake"] = ["fake"]
    with pytest.raises(SpecError, match=r"objectives.gan: the critic takes 2 tensor\(s\) for real but 1 for fake"):
        api.plan(api.from_dict(data))


def test_a_conditional_critic_sees_labels_and_r1_differentiates_only_the_images():
    plan = api.plan(api.from_dict(cgan(penalty="r1", penalty_weight=1.0)))
    nodes = plan.graph.nodes
    assert nodes["gan.real_logits"].inputs == ("real", "real.y")
    assert nodes["gan.fake_logits"].inputs == ("fake", "y_fake")
    assert nodes["gan.r1"].inputs == ("real", "real.y")
    d, g = plan.phases
    assert ("fake", "gan.fake_logits") in d.cuts and g.frozen == ("D",)
    runner = api.runner(plan, cpu=True)
    logs = runner.step()
    assert set(logs) == {"gan.D_real", "gan.D_fake", "gan.D_r1", "gan.G"}


# ------------------------------------------------------------------ term options
def test_weight_schedules_and_lazy_terms():
    plan = api.plan(api.from_dict(cgan(penalty="r1", terms={"D_r1": {"every": 4}, "G": {"weight": 0.5}})))
    nodes = plan.graph.nodes
    assert nodes["gan.D_r1"].every == 4 and nodes["gan.D_r1"].weight_at(0) == 4 * 10.0
    assert nodes["gan.G"].weight_at(3) == 0.5
    assert "gan.D_r1" in plan.view("D", 0).terms and "gan.D_r1" not in plan.view("D", 1).terms
    assert "gan.r1" not in plan.view("D", 1).needed
    assert "every 4 steps, weight x4" in format_table(plan)
    kl = api.plan(api.from_dict(vae())).graph.nodes["kl.loss"]
    assert [kl.weight_at(s) for s in (0, 5, 10, 20)] == [0.0, 0.25, 0.5, 0.5]


@pytest.mark.parametrize("edit, message", [
    (lambda o: o.update(terms={"Gx": {"every": 2}}), r"objectives.gan.terms.Gx: objective 'gan' has no term 'Gx' \(did you mean 'G'\?\)"),
    (lambda o: o.update(every=0), r"objectives.gan.every: expected a positive integer, got 0"),
    (lambda o: o.update(weight={"steps": 3}), r"objectives.gan.weight: a weight schedule needs 'type'"),
    (lambda o: o.update(weight={"type": "linaer", "steps": 3}), r"objectives.gan.weight.type: unknown weight schedule 'linaer' \(did you mean 'linear'\?\)"),
    (lambda o: o.update(weight={"type": "linear"}), r"objectives.gan.weight: weight schedule linear needs argument\(s\): steps"),
    (lambda o: o.update(weight=".nan"), r"objectives.gan.weight: expected a number or a weight schedule mapping"),
])
def test_bad_term_options(edit, message):
    data = small_dcgan()
    edit(data["objectives"]["gan"])
    with pytest.raises(SpecError, match=message):
        api.plan(api.from_dict(data))


# ------------------------------------------------------------------ phases
def aae():
    data = vae()
    data["inputs"]["prior"] = {"noise": "normal", "shape": [4]}
    data["modules"]["Dz"] = {"block": "MLP", "in_features": 4, "hidden": 16, "depth": 1, "out_features": 1}
    data["objectives"] = {
        "rec": {"recipe": "reconstruction", "prediction": "x_rec", "target": "x"},
        "reg": {"recipe": "adversarial", "critic": "Dz", "real": "prior", "fake": "mu"}}
    data["optimizers"]["Dz"] = {"params": ["Dz"], "lr": 1e-3}
    data["phases"] = {"recon": {"terms": ["rec"], "optimizers": ["vae"]},
                      "D": {"terms": ["reg.D_real", "reg.D_fake"], "optimizers": ["Dz"]},
                      "G": {"terms": ["reg.G"], "optimizers": ["vae"]}}
    return data


def test_declared_phases_let_one_optimizer_serve_two_phases():
    plan = api.plan(api.from_dict(aae()))
    assert [(p.name, p.optimizers, p.terms) for p in plan.phases] == [
        ("recon", ("vae",), ("rec.loss",)), ("D", ("Dz",), ("reg.D_real", "reg.D_fake")), ("G", ("vae",), ("reg.G",))]
    recon, d, g = plan.phases
    assert ("mu", "reg.fake_logits") in d.cuts and g.frozen == ("Dz",) and "dec" not in {
        m for n in g.live for m in plan.graph.nodes[n].uses}
    table = format_table(plan)
    assert "phase G   optimizer vae (adam lr 0.001)   trains: enc   frozen: Dz" in table
    runner = api.runner(plan, cpu=True)
    before = {k: v.clone() for k, v in runner.raw["dec"].named_parameters()}
    runner.ctx.step = 0
    assert set(runner.step()) == {"rec.loss", "reg.D_real", "reg.D_fake", "reg.G"}
    assert any(not torch.equal(before[k], v) for k, v in runner.raw["dec"].named_parameters())


@pytest.mark.parametrize("edit, message", [
    (lambda p: p["G"].update(terms=["reg.D_real"]),
     r"phases.G.terms: phase 'G' lists term 'reg.D_real', which moves \['Dz'\], but steps only \['dec', 'enc'\]"),
    (lambda p: p["D"].update(terms=["reg.D_fake"]), r"objectives.reg: term 'reg.D_real' is minimised by no phase"),
    (lambda p: p["G"].update(optimizers=["vae", "vae"]), r"phases.G.optimizers.1: optimizer 'vae' is listed twice"),
    (lambda p: p["G"].update(optimizers=["vea"]), r"phases.G.optimizers.0: unknown optimizer 'vea' \(did you mean 'vae'\?\)"),
    (lambda p: p["G"].update(terms=["reg.Gx"]), r"phases.G.terms.0: unknown term or objective 'reg.Gx' \(did you mean 'reg.G'\?\)"),
    (lambda p: p["G"].update(redraw=["zz"]), r"phases.G.redraw.0: 'zz' is not an input \(data or noise\)"),
    (lambda p: p.update(E={"terms": ["rec"]}), r"phases.E: phase 'E' needs 'optimizers' \(it is not the name of an optimizer\)"),
    (lambda p: p.update(Dz={"terms": ["reg.D_real"], "optimizers": ["vae"]}),
     r"phases.Dz: phase 'Dz' has the name of optimizer 'Dz' but does not step it"),
    (lambda p: p["recon"].update(bogus=1), r"phases.recon.bogus: unknown key 'bogus'"),
])
def test_phase_mistakes_are_caught_statically(edit, message):
    data = aae()
    edit(data["phases"])
    with pytest.raises(SpecError, match=message):
        api.validate(api.from_dict(data))


def test_a_term_whose_gradient_would_be_lost_is_an_error():
    data = aae()
    data["optimizers"] = {"E": {"params": ["enc"], "lr": 1e-3}, "Dec": {"params": ["dec"], "lr": 1e-3},
                          "Dz": {"params": ["Dz"], "lr": 1e-3}}
    data["phases"] = {"recon": {"terms": ["rec"], "optimizers": ["Dec"]},
                      "D": {"terms": ["reg.D_real", "reg.D_fake"], "optimizers": ["Dz"]},
                      "G": {"terms": ["reg.G"], "optimizers": ["E"]}}
    with pytest.raises(SpecError, match=r"objectives.rec: term 'rec.loss' moves 'enc', but no phase minimising it "
                                        r"steps 'enc''s optimizer 'E': its gradient would be lost"):
        api.validate(api.from_dict(data))


def test_redraw_gives_a_phase_fresh_inputs():
    data = small_2d_gan(loss="wgan", penalty="wgan_gp")
    data["schedule"] = {"repeat": {"D": 3}}
    data["phases"] = {"G": {"redraw": ["z"]}}
    plan = api.plan(api.from_dict(data))
    last_round = plan.program(("D", "G"))
    g_ops = {op.node: op.action for op in last_round[1]}
    assert g_ops["z"] == "compute" and g_ops["fake"] == "compute"
    del data["phases"]
    plain = api.plan(api.from_dict(data))
    assert {op.node: op.action for op in plain.program(("D", "G"))[1]}["z"] == "reuse"
    assert plan.forward_calls()["G"] == plain.forward_calls()["G"] + 1


def test_validate_runs_the_scheduler_checks():
    data = small_dcgan()
    data["schedule"]["repeat"] = {"critic": 5}
    with pytest.raises(SpecError, match=r"schedule.repeat.critic: unknown phase 'critic'"):
        api.validate(api.from_dict(data))


# ------------------------------------------------------------------ API fixes
def test_overrides_apply_to_a_spec_too():
    spec = api.from_dict(small_dcgan())
    assert api.plan(spec, ["optimizers.G.lr=0.5"]).spec.optimizers[1].lr == 0.5
    assert api.runner(spec, ["train.batch=3"], cpu=True).spec.train.batch == 3


def test_builder_writes_ops_and_dotted_inputs():
    g = api.GraphBuilder("b")
    g.data_input("real", "digits", size=8)
    g.noise("z", shape=[8])
    g.flow("onehot", "one_hot", "real.y", num_classes=10)
    g.flow("flat", "rearrange", "real", pattern="b c h w -> b (c h w)")
    g.flow("joint", "cat", "flat", "onehot", dim=1)
    assert g.data["flow"]["onehot"] == "one_hot(real.y, num_classes=10)"
    spec = g.spec()
    assert spec.flow[2].target == "cat" and spec.flow[2].args == {"dim": 1}


def test_fed_data_without_its_fields_is_a_clear_error():
    runner = api.runner(api.from_dict(cgan()), cpu=True)
    with pytest.raises(KeyError, match=r"'real.y' is a field of 'real', whose value was given without its fields"):
        runner.step({"real": torch.zeros(8, 1, 8, 8)})
    runner.step({"real": torch.zeros(8, 1, 8, 8), "real.y": torch.zeros(8, dtype=torch.int64)})


def test_generation_feeds_labels():
    runner = api.runner(api.from_dict(cgan()), cpu=True)
    a = api.sample(runner, 6, labels={"y_fake": 3}, seed=1)
    b = api.sample(runner, 6, labels={"y_fake": [3]}, seed=1)
    c = api.sample(runner, 6, labels={"y_fake": [4]}, seed=1)
    assert torch.equal(a, b) and not torch.equal(a, c) and a.shape == (6, 1, 8, 8)
    with pytest.raises(ComposerError, match=r"labels must be integers, got \['a'\]"):
        api.sample(runner, 6, labels={"y_fake": ["a"]})


def test_ops_see_the_step_and_the_phase():
    from composer import plugins
    from composer.graph.nodes import Op

    seen = []

    class Spy(Op):
        """Records where training is; returns its input."""

        def __call__(self, ctx, x):
            seen.append((ctx.step, ctx.phase))
            return x

    plugins.register_plugin("spy_plugin", lambda r: r.ops.add("spy", Spy))
    data = small_dcgan()
    data["plugins"] = ["spy_plugin"]
    data["flow"] = {"z2": "spy(z)", "fake": "G(z2)"}
    runner = api.runner(api.from_dict(data), cpu=True)
    runner.step()
    runner.step()
    assert seen == [(0, None), (0, "D"), (1, "D")]      # the shape check, then two training steps
    plugins.unload("spy_plugin")
