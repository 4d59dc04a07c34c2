"""composer export: ONNX and TorchScript of the generating flow equal composer's own evaluation on
the same noise and labels (at batch sizes other than the traced one); a module's safetensors
round-trips through api.load_module; what cannot be exported is refused with a message."""
import json

import pytest
import torch

from composer import api
from composer.errors import ComposerError
from composer.run.generate import eval_mode
from composer.tools.cli import main
from conftest import GRAPHS

SMALL = ["train.steps=2", "train.log_every=1", "train.checkpoint_every=2", "train.sample_every=0", "train.batch=8",
         "sample.n=8", "eval.metrics={}", "modules.G.width=16", "modules.D.width=16"]
BATCHES = (3, 7)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A 2-step dcgan and cgan run, each opened once (one Runner: the same EMA standing statistics)."""
    root = tmp_path_factory.mktemp("runs")
    opened = {}
    for name in ("dcgan", "cgan"):
        api.train(GRAPHS / f"{name}.yaml", root / name, SMALL, quiet=True)
        opened[name] = (root / name, api.open_run(root / name, cpu=True))
    return opened


def fed(run, batch: int, seed: int = 1) -> dict:
    """Noise (and labels) for `batch` samples, as composer's sample(inputs=...) takes them."""
    generator = torch.Generator().manual_seed(seed + batch)
    feed = {"z": torch.randn(batch, 32, generator=generator)}
    if "y_fake" in run.graph.nodes:
        feed["y_fake"] = torch.randint(10, (batch,), generator=generator)
    return feed


@pytest.mark.parametrize("name", ["dcgan", "cgan"])
def test_onnx_equals_composer_on_fed_noise_and_labels_at_two_batch_sizes(runs, tmp_path, name):
    ort = pytest.importorskip("onnxruntime")
    folder, run = runs[name]
    files = api.export(run, "onnx", tmp_path / "g.onnx")
    assert files == [tmp_path / "g.onnx", tmp_path / "g.onnx.json"]
    session = ort.InferenceSession(str(files[0]), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == list(fed(run, 1))
    for batch in BATCHES:
        feed = fed(run, batch)
        got = torch.from_numpy(session.run(["fake"], {k: v.numpy() for k, v in feed.items()})[0])
        want = api.sample(run, inputs=feed)
        assert got.shape == want.shape == (batch, 1, 16, 16)
        diff = float((got - want).abs().max())
        print(f"{name} onnx batch {batch}: max abs diff {diff:.2e}")
        assert diff < 1e-4


@pytest.mark.parametrize("name", ["dcgan", "cgan"])
def test_torchscript_equals_composer_at_two_batch_sizes(runs, tmp_path, name):
    folder, run = runs[name]
    path = api.export(run, "torchscript", tmp_path / "g.pt")[0]
    loaded = torch.jit.load(str(path))
    for batch in BATCHES:
        feed = fed(run, batch)
        with torch.no_grad():
            got = loaded(*feed.values())[0]
        diff = float((got - api.sample(run, inputs=feed)).abs().max())
        print(f"{name} torchscript batch {batch}: max abs diff {diff:.2e}")
        assert diff < 1e-4


def test_sidecar_names_inputs_shapes_dtypes_and_meaning(runs, tmp_path):
    folder, run = runs["cgan"]
    api.export(run, "onnx", tmp_path / "g.onnx")
    record = json.loads((tmp_path / "g.onnx.json").read_text())
    assert record["format"] == "onnx" and record["graph"] == "cgan" and record["weights"] == {"G": "ema"}
    assert record["summary"] == ["z: float32 [B, 32], normal noise N(0, 1^2)",
                                 "y_fake: int64 [B], int64 labels 0..9 (categorical noise)",
                                 "-> fake: float32 [B, 1, 16, 16], G(z, y_fake)"]
    assert record["outputs"][0]["data_space"].startswith("images in [-1, 1]")
    assert record["check"]["checked"] and record["check"]["max_abs_diff"] < 1e-4


def test_cli_export_from_the_run_folder(runs, tmp_path, capsys):
    folder, run = runs["dcgan"]
    assert main(["export", str(folder), "--format", "torchscript", "-o", str(tmp_path / "g.pt")]) == 0
    assert "wrote" in capsys.readouterr().out
    feed = fed(run, 4)
    with torch.no_grad():
        got = torch.jit.load(str(tmp_path / "g.pt"))(feed["z"])[0]
    assert float((got - api.sample(run, inputs=feed)).abs().max()) < 1e-4
    assert main(["export", str(folder), "--format", "onx", "-o", str(tmp_path / "g.onnx")]) == 1
    assert "unknown export format 'onx' (did you mean 'onnx'?)" in capsys.readouterr().err


def test_no_ema_exports_the_trained_weights(runs, tmp_path):
    folder, run = runs["dcgan"]
    out = tmp_path / "g.safetensors"
    assert main(["export", str(folder), "--format", "safetensors", "--module", "G", "--no-ema", "-o", str(out)]) == 0
    trained = api.load_module(tmp_path / "g.safetensors")
    raw = run.unwrapped("G", ema=False)
    assert all(torch.equal(a, b) for a, b in zip(trained.state_dict().values(), raw.state_dict().values()))
    assert json.loads((tmp_path / "g.safetensors.json").read_text())["weights"] == "trained"


def test_safetensors_module_round_trip_equals_the_runs_module(runs, tmp_path):
    folder, run = runs["cgan"]
    path = tmp_path / "G.safetensors"
    api.export(run, "safetensors", path, module="G")
    record = json.loads((tmp_path / "G.safetensors.json").read_text())
    assert (record["block"], record["args"]["num_classes"], record["weights"]) == ("ConditionalDCGANGenerator", 10, "ema")
    z, y = torch.randn(6, 32), torch.randint(10, (6,))
    with torch.no_grad(), eval_mode(run.unwrapped("G")) as (G,):
        want = G(z, y)
        for module in (api.load_module(path), api.load_module(path, "G"), api.load_module(folder, "G")):
            assert isinstance(module, torch.nn.Module) and not module.training
            assert float((module(z, y) - want).abs().max()) < 1e-6
    (tmp_path / "G.safetensors.json").unlink()   # the description is in the header too
    assert api.load_module(path).state_dict().keys() == run.unwrapped("G").state_dict().keys()


def test_module_names_that_do_not_exist_get_did_you_mean(runs, tmp_path):
    folder, run = runs["cgan"]
    with pytest.raises(ComposerError, match=r"no module 'g' in the run of graph 'cgan' \(did you mean 'G'\?\)"):
        api.load_module(folder, "g")
    with pytest.raises(ComposerError, match=r"no module name given in the run of graph 'cgan' \(one of: G, D\)"):
        api.load_module(run)
    api.export(run, "safetensors", tmp_path / "D.safetensors", module="D")
    with pytest.raises(ComposerError, match=r"holds module 'D', not 'd' \(did you mean 'D'\?\)"):
        api.load_module(tmp_path / "D.safetensors", "d")
    with pytest.raises(ComposerError, match=r"--module Gen: the graph has no module of that name \(did you mean 'G'\?\)"):
        api.export(run, "onnx", tmp_path / "x.onnx", module="Gen")
    with pytest.raises(ComposerError, match=r"--node fak: the graph has no tensor of that name \(did you mean 'fake'\?\)"):
        api.export(run, "onnx", tmp_path / "x.onnx", node="fak")


@pytest.mark.parametrize("kwargs, message", [
    (dict(format="safetensors"), r"give --module NAME \(one of: G, D\)"),
    (dict(format="onnx", node="fake", module="G"), r"--node and --module exclude each other"),
    (dict(format="onnx", node="z"), r"--node z: it is an input of the graph \(noise\)"),
    (dict(format="onnx", node="gan.G"), r"'gan.G' is a loss term"),
    (dict(format="onnx", node="gan.r1"), r"'gan.r1' \(r1\(real, real.y\)\) is computed by the 'gan' objective's recipe"),
    (dict(format="diffusers"), r"--format diffusers exports a denoising objective \(sample.objective\)"),
])
def test_refusals(runs, tmp_path, kwargs, message):
    folder, run = runs["cgan"]
    with pytest.raises(ComposerError, match=message):
        api.export(run, out=tmp_path / "x.onnx", **kwargs)


def test_a_generating_recipe_is_refused_and_its_denoiser_exports_alone(tmp_path):
    ort = pytest.importorskip("onnxruntime")
    run = api.runner(GRAPHS / "diffusion.yaml", ["modules.eps_net.width=8", "modules.eps_net.groups=4"], cpu=True)
    with pytest.raises(ComposerError, match=r"generates with the 'dsm' objective's sampler.*--module eps_net"):
        api.export(run, "onnx", tmp_path / "x.onnx")
    api.export(run, "onnx", tmp_path / "eps.onnx", module="eps_net")
    record = json.loads((tmp_path / "eps.onnx.json").read_text())
    assert [(i["name"], i["tensor"], i["shape"]) for i in record["inputs"]] == [
        ("x", "dsm.x_t", ["B", 1, 8, 8]), ("t", "dsm.t", ["B"])]
    x, t = torch.randn(3, 1, 8, 8), torch.rand(3)
    session = ort.InferenceSession(str(tmp_path / "eps.onnx"), providers=["CPUExecutionProvider"])
    got = session.run(None, {"x": x.numpy(), "t": t.numpy()})[0]
    with torch.no_grad(), eval_mode(run.unwrapped("eps_net")) as (eps_net,):
        assert float((torch.from_numpy(got) - eps_net(x, t)).abs().max()) < 1e-4


def test_random_flow_ops_are_refused_and_data_inputs_become_inputs(tmp_path):
    vae = api.runner(GRAPHS / "vae.yaml", cpu=True)
    with pytest.raises(ComposerError, match=r"'z' \(reparameterize\(mu, logvar\)\) draws random numbers inside the "
                                            r"flow, and an exported graph has no RNG"):
        api.export(vae, "torchscript", tmp_path / "x.pt", node="x_rec")
    api.export(vae, "torchscript", tmp_path / "mu.pt", node="mu")   # the encoder's mean: deterministic
    record = json.loads((tmp_path / "mu.pt.json").read_text())
    assert record["summary"][0] == "x: float32 [B, 1, 16, 16], a batch of data input 'x' (source digits), images in [-1, 1]"
    assert record["outputs"][0]["shape"] == ["B", 8]


def test_a_translation_takes_its_data_inputs_and_gives_every_computed_output(tmp_path):
    ort = pytest.importorskip("onnxruntime")
    small = [f"modules.{m}.width=8" for m in ("G_AB", "G_BA", "D_A", "D_B")]
    run = api.runner(GRAPHS / "cyclegan.yaml", small, cpu=True)
    api.export(run, "onnx", tmp_path / "cy.onnx")   # sample.output [real_A, fake_B, rec_A, real_B, fake_A, rec_B]
    record = json.loads((tmp_path / "cy.onnx.json").read_text())
    assert [i["name"] for i in record["inputs"]] == ["real_A", "real_B"]
    assert [o["name"] for o in record["outputs"]] == ["fake_B", "rec_A", "fake_A", "rec_B"]
    feed = {"real_A": torch.rand(3, 1, 16, 16) * 2 - 1, "real_B": torch.rand(3, 1, 16, 16) * 2 - 1}
    session = ort.InferenceSession(str(tmp_path / "cy.onnx"), providers=["CPUExecutionProvider"])
    got = session.run(["fake_B", "rec_B"], {k: v.numpy() for k, v in feed.items()})
    want = api.sample(run, inputs=feed, output=["fake_B", "rec_B"])
    assert max(float((torch.from_numpy(g) - want[:, i]).abs().max()) for i, g in enumerate(got)) < 1e-4
