"""A module's methods in the flow: `h: vae.encode(x)` (the bridges' multi-output views)."""
import pytest
import torch
from torch import nn

from composer import api, plugins
from composer.errors import SpecError
from composer.spec import flowexpr


class TinyAE(nn.Module):
    """An autoencoder offering encode (-> mean, logvar) and decode to the flow."""

    flow_methods = ("encode", "decode")

    def __init__(self, *, features: int = 4, latent: int = 2):
        super().__init__()
        self.enc, self.dec = nn.Linear(features, 2 * latent), nn.Linear(latent, features)

    def encode(self, x):
        return tuple(self.enc(x).chunk(2, dim=1))

    def decode(self, h):
        return self.dec(h)

    def forward(self, x):
        return self.decode(self.encode(x)[0])


def graph(**flow):
    return {
        "name": "methods", "plugins": ["tiny_ae"],
        "inputs": {"x": {"source": "ring", "n": 256}},
        "modules": {"ae": {"block": "TinyAE", "features": 2, "latent": 3}},
        "flow": {"h": "ae.encode(x)", "mu": "h[0]", "rec": "ae.decode(mu)", "again": "ae.encode(x)", **flow},
        "objectives": {"rec": {"recipe": "reconstruction", "target": "x", "prediction": "rec", "distance": "l2"}},
        "optimizers": {"ae": {"params": ["ae"], "lr": 0.01}},
        "train": {"steps": 2, "batch": 8},
    }


@pytest.fixture
def tiny_ae(scratch):
    plugins.register_plugin("tiny_ae", lambda r: r.blocks.add("TinyAE", TinyAE))


def test_the_parser_reads_a_method_call():
    assert flowexpr.parse("vae.encode(x)") == flowexpr.Call("vae.encode", ("x",), {})
    with pytest.raises(flowexpr.FlowSyntaxError, match=r"or a module's method, e.g. 'vae.encode\(x\)'"):
        flowexpr.parse("a.b.c(x)")


def test_methods_are_calls_of_the_module_shape_checked_and_merged(tiny_ae):
    plan = api.plan(api.from_dict(graph()))
    nodes = plan.graph.nodes
    assert nodes["h"].describe() == "ae.encode(x)" and nodes["rec"].describe() == "ae.decode(mu)"
    assert plan.graph.shapes["mu"] == (3,) and plan.graph.shapes["rec"] == (2,)
    assert nodes["again"].target == "same" and nodes["again"].inputs == ("h",)    # the same call, computed once
    assert "ae.encode(x)" in api.format_table(plan)
    assert plan.forward_calls() == {"ae": 2}


def test_a_method_call_trains_like_the_module_would(tiny_ae):
    run = api.runner(api.from_dict(graph()), cpu=True)
    ae = run.modules["ae"]
    before = [p.detach().clone() for p in ae.parameters()]
    logs = run.step()
    assert all(torch.isfinite(v) for v in logs.values())
    assert all(not torch.equal(a, p) for a, p in zip(before, ae.parameters()))   # encoder and decoder both moved
    assert run.forward_calls == {"ae": 2}


def test_an_unknown_method_is_refused_with_the_offered_ones(tiny_ae):
    with pytest.raises(SpecError, match=r"flow.h: module ae has no flow method 'encod' \(did you mean 'encode'\?\): "
                                        r"it offers encode, decode"):
        api.validate(api.from_dict(graph(h="ae.encod(x)")))


def test_a_block_without_flow_methods_offers_none(tiny_ae):
    data = graph()
    data["modules"]["G"] = {"block": "MLP", "in_features": 2, "hidden": 4, "depth": 1, "out_features": 2}
    data["flow"]["g"] = "G.forward(x)"
    with pytest.raises(SpecError, match=r"module G has no flow method 'forward': its block offers none"):
        api.validate(api.from_dict(data))


def test_an_autoencoder_kl_offers_encode_and_decode_to_the_flow():
    pytest.importorskip("diffusers")
    vae = {"block": "diffusers.AutoencoderKL", "in_channels": 1, "out_channels": 1, "latent_channels": 2,
           "block_out_channels": [8, 16], "down_block_types": ["DownEncoderBlock2D"] * 2,
           "up_block_types": ["UpDecoderBlock2D"] * 2, "layers_per_block": 1, "norm_num_groups": 4,
           "sample_size": 8}
    data = {"name": "vae", "inputs": {"x": {"source": "digits", "size": 8}},
            "modules": {"vae": vae},
            "flow": {"h": "vae.encode(x)", "mean": "h[0]", "logvar": "h[1]", "rec": "vae.decode(mean)"},
            "objectives": {"rec": {"recipe": "reconstruction", "target": "x", "prediction": "rec"},
                           "kl": {"recipe": "kl_divergence", "mean": "mean", "logvar": "logvar", "weight": 1e-3}},
            "optimizers": {"vae": {"params": ["vae"], "lr": 1e-3}}, "train": {"steps": 1, "batch": 4}}
    plan = api.plan(api.from_dict(data))
    assert plan.graph.shapes["mean"] == (2, 4, 4) and plan.graph.shapes["rec"] == (1, 8, 8)
    assert "vae.encode(x)" in api.format_table(plan) and "shapes: checked" in api.format_table(plan)
    logs = api.runner(plan, cpu=True).step()
    assert set(logs) == {"rec.loss", "kl.loss"} and all(torch.isfinite(v) for v in logs.values())
