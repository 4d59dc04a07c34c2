"""Latent diffusion: the one-graph plan (two phases, the cut at the encoder's latent) and the
two-graph variant (a second graph's modules initialised from the first run's weights, fixed)."""
import copy

import torch
from safetensors.torch import load_file

from composer import api
from composer.run.generate import generate
from composer.graph.view import format_table
from conftest import GRAPHS

QUIET_RUN = ["train.steps=2", "train.batch=8", "train.log_every=0", "train.sample_every=0",
             "train.checkpoint_every=0", "sample.n=4", "sample.steps=2", "eval.metrics={}"]


def tiny_latent():
    """digits 8x8 -> unit-variance latents [2, 4, 4]; the autoencoder and the denoiser each with
    its own optimizer."""
    return {
        "name": "tiny_latent",
        "inputs": {"x": {"source": "digits", "size": 8}},
        "modules": {
            "enc": {"block": "ConvEncoder", "in_channels": 1, "latent_channels": 2, "width": 4,
                    "normalize_latents": True},
            "dec": {"block": "ConvDecoder", "out_channels": 1, "latent_channels": 2, "width": 4},
            "eps_net": {"block": "UNet", "channels": 2, "width": 8, "channel_mults": [1], "num_res_blocks": 1,
                        "groups": 4},
        },
        "flow": {"z": "enc(x)", "x_rec": "dec(z)"},
        "objectives": {
            "rec": {"recipe": "reconstruction", "prediction": "x_rec", "target": "x"},
            "dsm": {"recipe": "denoising", "data": "z", "model": "eps_net"},
        },
        "optimizers": {"ae": {"params": ["enc", "dec"]}, "eps_net": {"params": ["eps_net"]}},
        "train": {"steps": 2, "batch": 8},
        "sample": {"objective": "dsm", "decode": "dec", "steps": 2, "n": 4},
    }


def second_stage(weights):
    """The two-graph variant: enc and dec from the first run's weights, no optimizer (fixed)."""
    data = tiny_latent()
    data["name"] = "tiny_latent_stage2"
    for name in ("enc", "dec"):
        data["modules"][name]["weights"] = str(weights)
    data["flow"] = {"z": "enc(x)"}
    del data["objectives"]["rec"]
    data["optimizers"] = {"eps_net": {"params": ["eps_net"]}}
    return data


def test_latent_diffusion_plan_has_two_phases_and_the_cut():
    plan = api.plan(GRAPHS / "latent_diffusion.yaml")
    ae, diffusion = plan.phases
    assert (ae.name, ae.trains, ae.frozen) == ("ae", ("enc", "dec"), ())
    assert (diffusion.name, diffusion.trains) == ("eps_net", ("eps_net",))
    # the DSM loss reads the latent detached: the encoder is off its gradient path, so it is
    # neither trained nor frozen there (nothing to freeze), and the AE phase trains it
    assert diffusion.frozen == ()
    assert ("z", "dsm.loss") in diffusion.cuts and ("dsm.x_t", "dsm.pred") in diffusion.cuts
    assert not any("enc" in plan.graph.nodes[n].uses for n in diffusion.live)
    program = dict(zip(("ae", "eps_net"), plan.program(("ae", "eps_net"))))
    assert [op.action for op in program["eps_net"] if op.node == "z"] == ["reuse"]
    assert plan.forward_calls() == {"enc": 1, "dec": 1, "eps_net": 1}
    table = format_table(plan)
    assert "2 phase(s) per step, in order ae -> eps_net" in table
    assert "detach z" in table and "detach dsm.x_t" in table


def test_encoder_gradient_comes_from_the_reconstruction_term_only():
    runner = api.runner(api.from_dict(tiny_latent()), cpu=True)
    enc, dec = copy.deepcopy(runner.raw["enc"]), copy.deepcopy(runner.raw["dec"])
    x = runner.streams["x"].next()["x"]
    runner.step({"x": x})
    (dec(enc(x)) - x).abs().flatten(1).mean(1).mean().backward()
    for (key, compiled), hand in zip(runner.raw["enc"].named_parameters(), enc.parameters()):
        assert torch.equal(compiled.grad, hand.grad), f"enc.{key}: the DSM term reached the encoder"


def test_latents_have_unit_scale_and_generation_decodes():
    runner = api.runner(api.from_dict(tiny_latent()), cpu=True)
    z = runner.raw["enc"](runner.streams["x"].next()["x"])
    assert z.shape == (8, 2, 4, 4)
    assert z.mean().abs() < 1e-5 and (z.std() - 1).abs() < 0.05
    samples = generate(runner, 3, steps=2)
    assert samples.shape == (3, 1, 8, 8) and torch.isfinite(samples).all() and samples.abs().max() <= 1


def test_second_graph_starts_from_first_runs_weights_and_keeps_them_fixed(tmp_path):
    first = tmp_path / "first"
    api.train(api.from_dict(tiny_latent()), out=first, overrides=QUIET_RUN, quiet=True)
    saved = load_file(first / "weights.safetensors")
    plan = api.plan(api.from_dict(second_stage(first / "weights.safetensors")))
    # enc (fixed weights, no optimizer) computes the data of the DSM loss: frozen there
    assert [(p.name, p.trains, p.frozen) for p in plan.phases] == [("eps_net", ("eps_net",), ("enc",))]
    runner = api.runner(plan, cpu=True)
    for name in ("enc", "dec"):
        module = runner.raw[name]
        assert not module.training and not any(p.requires_grad for p in module.parameters())
        for key, value in module.state_dict().items():
            assert torch.equal(value, saved[f"{name}.{key}"]), f"{name}.{key} not loaded"
    runner.step()
    runner.step()
    for key, value in runner.raw["enc"].state_dict().items():
        assert torch.equal(value, saved[f"enc.{key}"]), f"enc.{key} moved"
    samples = generate(runner, 3)
    assert samples.shape == (3, 1, 8, 8) and torch.isfinite(samples).all()
