"""Gradient control in graph files: `trains:` on an objective and on one term (adversarial
included), and the `stop_gradient` flow op; the phases follow from them."""
import pytest
import torch

from composer import api
from composer.errors import SpecError
from conftest import modules_stepped


def vae_gan(**gan):
    """An 8x8 VAE whose reconstructions a critic judges: three optimizers (enc, dec, D)."""
    flat = 'rearrange(x, pattern="b c h w -> b (c h w)")'
    return {
        "name": "tiny_vaegan",
        "inputs": {"x": {"source": "digits", "size": 8}},
        "modules": {"enc": {"block": "MLP", "in_features": 64, "hidden": 16, "depth": 1, "out_features": 8},
                    "dec": {"block": "MLP", "in_features": 4, "hidden": 16, "depth": 1, "out_features": 64},
                    "D": {"block": "MLP", "in_features": 64, "hidden": 16, "depth": 1, "out_features": 1}},
        "flow": {"flat": flat, "h": "enc(flat)", "parts": "chunk(h, 2)", "mu": "parts[0]", "logvar": "parts[1]",
                 "z": "reparameterize(mu, logvar)", "x_rec": "dec(z)",
                 "img": 'rearrange(x_rec, pattern="b (c h w) -> b c h w", c=1, h=8, w=8)'},
        "objectives": {"kl": {"recipe": "kl_divergence", "mean": "mu", "logvar": "logvar"},
                       "rec": {"recipe": "reconstruction", "prediction": "x_rec", "target": "flat"},
                       "gan": {"recipe": "adversarial", "critic": "D", "real": "flat", "fake": "x_rec", **gan}},
        "optimizers": {"enc": {"params": ["enc"], "lr": 1e-3}, "dec": {"params": ["dec"], "lr": 1e-3},
                       "D": {"params": ["D"], "lr": 1e-3}},
        "schedule": {"order": ["enc", "dec", "D"]},
        "train": {"steps": 2, "batch": 8},
        "sample": {"output": "img", "n": 4},
    }


def phases(data):
    plan = api.plan(api.from_dict(data))
    return {p.name: (p.terms, p.trains, p.frozen) for p in plan.phases}, plan


def test_without_trains_the_generator_term_moves_the_encoder_too():
    found, _ = phases(vae_gan())
    assert "gan.G" in found["enc"][0]                    # the paper's encoder never sees the GAN loss
    data = vae_gan()
    data["phases"] = {"enc": {"terms": ["kl", "rec"]}, "dec": {"terms": ["rec", "gan.G"]}}
    with pytest.raises(SpecError, match=r"objectives.gan: term 'gan.G' moves 'enc', but no phase minimising it "
                                        r"steps 'enc''s optimizer 'enc'"):
        api.validate(api.from_dict(data))
    data["objectives"]["gan"]["terms"] = {"G": {"trains": ["dec"]}}
    assert [p.name for p in api.plan(api.from_dict(data)).phases] == ["enc", "dec", "D"]


def test_a_term_level_trains_keeps_the_gan_gradient_off_the_encoder():
    data = vae_gan(terms={"G": {"trains": ["dec"]}})
    data["objectives"]["rec"]["trains"] = ["enc", "dec"]
    found, plan = phases(data)
    assert found["enc"][:2] == (("kl.loss", "rec.loss"), ("enc",))
    assert found["dec"][:2] == (("rec.loss", "gan.G"), ("dec",))
    assert found["D"][:2] == (("gan.D_real", "gan.D_fake"), ("D",))
    assert plan.graph.nodes["gan.G"].trains == ("dec",)
    assert ("z", "x_rec") in plan.phase("dec").cuts


def test_every_phase_steps_only_what_trains_lets_it():
    data = vae_gan(terms={"G": {"trains": ["dec"]}})
    runner = api.runner(api.from_dict(data), cpu=True)
    assert modules_stepped(runner) == [("enc", {"enc"}), ("dec", {"dec"}), ("D", {"D"})]


def test_objective_level_trains_applies_to_each_term_and_a_term_entry_wins():
    data = vae_gan(trains=["D"], terms={"G": {"trains": ["dec"]}})
    data["objectives"]["rec"]["trains"] = "enc"          # one name alone is a list of one
    found, plan = phases(data)
    nodes = plan.graph.nodes
    assert (nodes["gan.D_real"].trains, nodes["gan.G"].trains, nodes["rec.loss"].trains) == (("D",), ("dec",), ("enc",))
    assert found["dec"][0] == ("gan.G",)


@pytest.mark.parametrize("edit, message", [
    (lambda o: o["gan"].update(terms={"G": {"trains": ["dec", "D"]}}),
     r"objectives.gan: term 'gan.G' never moves 'D' \(its recipe leaves 'D' to its other terms\); "
     r"trains: lists \['dec', 'D'\]"),
    (lambda o: o["gan"].update(trains=["dec"]),
     r"objectives.gan: term 'gan.D_real' cannot move 'dec': no gradient reaches it from this term "
     r"\(it reaches \['D'\]\)"),
    (lambda o: o["gan"].update(terms={"G": {"trains": ["dek"]}}),
     r"objectives.gan: unknown module 'dek' \(did you mean 'dec'\?\)"),
    (lambda o: o["gan"].update(terms={"G": {"trains": []}}),
     r"objectives.gan.terms.G.trains: expected at least one module name"),
    (lambda o: o["kl"].update(trains={"enc": 1}),
     r"objectives.kl.trains: expected a list of module names, got \{'enc': 1\}"),
    (lambda o: o["gan"].update(terms={"G": {"train": ["dec"]}}),
     r"objectives.gan.terms.G.train: unknown key 'train' \(did you mean 'trains'\?\)"),
])
def test_trains_mistakes_are_pinned(edit, message):
    data = vae_gan()
    edit(data["objectives"])
    with pytest.raises(SpecError, match=message):
        api.validate(api.from_dict(data))


def test_stop_gradient_cuts_the_encoder_off_a_term_and_its_value_is_unchanged():
    data = vae_gan()
    data["flow"]["x_gan"] = "stop_gradient(x_rec)"
    data["objectives"]["gan"]["fake"] = "x_gan"          # D's game on detached reconstructions: no G term moves
    with pytest.raises(SpecError, match=r"term 'gan.G' is minimised by no phase \(it moves no module that an "
                                        r"optimizer updates\)"):
        api.validate(api.from_dict(data))
    data["flow"]["z_seen"] = "stop_gradient(z)"
    data["flow"]["x_dec"] = "dec(z_seen)"                 # dec's own copy: the GAN reaches dec, never enc
    data["objectives"]["gan"]["fake"] = "x_dec"
    found, plan = phases(data)
    assert plan.graph.grad_upstream["x_dec"] == {"dec"} and plan.graph.upstream["x_dec"] == {"enc", "dec"}
    assert found["dec"][0] == ("rec.loss", "gan.G") and found["enc"][0] == ("kl.loss", "rec.loss")
    runner = api.runner(plan, cpu=True)
    logs = runner.step()
    assert set(logs) == {"kl.loss", "rec.loss", "gan.D_real", "gan.D_fake", "gan.G"}


def test_the_elementwise_ops_compute_what_they_are_named():
    from composer.ops.flow import OPS

    a, b = torch.tensor([[4.0, 9.0]]), torch.tensor([[2.0, 3.0]])
    assert torch.equal(OPS["sqrt"]()(None, a), torch.tensor([[2.0, 3.0]]))
    assert torch.equal(OPS["log"]()(None, a), torch.log(a))
    assert torch.equal(OPS["div"]()(None, a, b), torch.tensor([[2.0, 3.0]]))
    assert torch.equal(OPS["div"](value=2.0)(None, a), torch.tensor([[2.0, 4.5]]))
    x = torch.ones(2, requires_grad=True)
    assert not OPS["stop_gradient"]()(None, x * 2).requires_grad
    with pytest.raises(TypeError, match=r"div takes two tensors, or one tensor and a constant: got 2 tensor\(s\) "
                                        r"and a constant"):
        OPS["div"](value=2.0)(None, a, b)


def test_flow_ops_take_no_stray_arguments():
    data = vae_gan(terms={"G": {"trains": ["dec"]}})
    data["flow"]["s"] = "sqrt(x_rec, power=2)"
    with pytest.raises(SpecError, match=r"flow.s.power: op sqrt has no argument 'power'"):
        api.validate(api.from_dict(data))
