import torch
import yaml

from composer import api
from composer.api import GraphBuilder
from composer.graph.view import format_table
from conftest import GRAPHS


def dcgan_in_code() -> GraphBuilder:
    g = GraphBuilder("dcgan")
    g.data_input("real", "digits", size=16, split="train")
    g.noise("z", shape=[32])
    g.module("G", "DCGANGenerator", image_size=16, channels=1, latent=32, width=64)
    g.module("D", "DCGANDiscriminator", image_size=16, channels=1, width=32, norm="none")
    g.flow("fake", "G", "z")
    g.objective("gan", "adversarial", loss="non_saturating", critic="D", real="real", fake="fake",
                penalty="r1", penalty_weight=1.0)
    g.optimizer("D", ["D"], type="adam", lr=2e-4, betas=[0.5, 0.999])
    g.optimizer("G", ["G"], type="adam", lr=2e-4, betas=[0.5, 0.999])
    g.schedule(order=["D", "G"])
    g.train(steps=3000, batch=64, seed=0, log_every=100, sample_every=500, checkpoint_every=1000,
            ema={"G": 0.999})
    g.sample(output="fake", n=100, nrow=10)
    g.eval(n=1000, reference="real", metrics={"digits": {}})
    return g


def test_builder_gives_the_same_plan_as_the_yaml_file():
    from_code = format_table(api.plan(dcgan_in_code().spec()))
    from_file = format_table(api.plan(GRAPHS / "dcgan.yaml"))
    assert from_code == from_file


def test_round_trip_api_yaml_api():
    spec = dcgan_in_code().spec()
    again = api.from_dict(yaml.safe_load(api.to_yaml(spec)))
    assert again == spec
    assert api.load(GRAPHS / "dcgan.yaml") == api.from_dict(yaml.safe_load(api.to_yaml(api.load(GRAPHS / "dcgan.yaml"))))


def test_step_with_explicit_feed_returns_term_means():
    runner = api.runner(dcgan_in_code().spec(["train.batch=4"]), cpu=True)
    logs = runner.step({"real": torch.zeros(4, 1, 16, 16), "z": torch.randn(4, 32)})
    assert set(logs) == {"gan.D_real", "gan.D_fake", "gan.D_r1", "gan.G"}
    assert all(torch.isfinite(torch.tensor(v)) for v in logs.values())
    assert runner.step_count == 1


def test_training_without_a_sample_section_writes_no_grid(tmp_path):
    g = GraphBuilder("tiny")
    g.data_input("real", "ring", n=500)
    g.noise("z", shape=[4])
    g.module("G", "MLP", in_features=4, hidden=8, depth=1, out_features=2)
    g.module("D", "MLP", in_features=2, hidden=8, depth=1, out_features=1)
    g.flow("fake", "G", "z")
    g.objective("gan", "adversarial", critic="D", real="real", fake="fake")
    g.optimizer("D", ["D"], lr=1e-3)
    g.optimizer("G", ["G"], lr=1e-3)
    results = api.train(g.spec(["train.steps=2", "train.batch=8"]), tmp_path, quiet=True)
    assert results["step"] == 2
    assert (tmp_path / "weights.safetensors").exists() and not (tmp_path / "samples").exists()
