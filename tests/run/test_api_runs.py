"""The API/CLI around runs: callbacks, self-contained run folders (weights copied in),
`composer list`, conditional generation from the CLI, sample arguments."""
import json

import torch
import yaml
from safetensors.torch import load_file

from composer import api
from composer.tools.cli import main
from composer.run.trainer import Callback
from specs import small_dcgan

TINY = ["train.steps=2", "train.log_every=1", "train.checkpoint_every=1", "sample.n=4"]


class Recorder(Callback):
    def __init__(self):
        self.events = []

    def on_step(self, trainer, step, logs):
        self.events.append(("step", step, sorted(logs)))

    def on_checkpoint(self, trainer, folder):
        self.events.append(("checkpoint", folder.name))

    def on_sample(self, trainer, path):
        self.events.append(("sample", path.name))

    def on_end(self, trainer, results):
        self.events.append(("end", results["step"]))


def test_callbacks_see_steps_checkpoints_samples_and_the_end(tmp_path):
    recorder = Recorder()
    api.train(api.from_dict(small_dcgan()), tmp_path / "r", TINY, quiet=True, callbacks=[recorder])
    kinds = [e[0] for e in recorder.events]
    assert kinds == ["checkpoint", "step", "step", "checkpoint", "sample", "end"]
    assert recorder.events[1] == ("step", 1, ["gan.D_fake", "gan.D_real", "gan.G"])


def test_a_run_folder_keeps_its_own_copy_of_weights_files(tmp_path, monkeypatch):
    first = tmp_path / "first"
    api.train(api.from_dict(small_dcgan()), first, TINY, quiet=True)
    second = small_dcgan()
    second["modules"]["D"]["weights"] = str(first / "weights.safetensors")
    del second["optimizers"]["D"]
    second["objectives"]["gan"] = {"recipe": "reconstruction", "prediction": "fake", "target": "real"}
    second["schedule"] = {}
    run = tmp_path / "second"
    api.train(api.from_dict(second), run, TINY, quiet=True)
    saved = yaml.safe_load((run / "spec.yaml").read_text())
    assert saved["modules"]["D"]["weights"] == "inputs/D.safetensors" and (run / "inputs" / "D.safetensors").is_file()
    trained = load_file(first / "weights.safetensors")["D.net.0.weight"]
    (first / "weights.safetensors").unlink()
    monkeypatch.chdir(tmp_path / "first")          # another working directory, the original file gone
    reopened = api.open_run(run)
    assert torch.equal(reopened.raw["D"].net[0].weight, trained)


def test_list_prints_every_registry_and_its_json(capsys):
    assert main(["list", "ops"]) == 0
    out = capsys.readouterr().out
    assert "ops:" in out and "one_hot(num_classes)" in out and "reparameterize()" in out
    assert main(["list", "recipes", "--json"]) == 0
    names = {e["name"] for e in json.loads(capsys.readouterr().out)}
    assert {"adversarial", "denoising", "kl_divergence", "cross_entropy"} <= names
    assert main(["list", "blokcs"]) == 1
    assert "unknown registry 'blokcs' (did you mean 'blocks'?)" in capsys.readouterr().err


def test_cli_sample_takes_labels_and_refuses_bad_counts(tmp_path, capsys):
    data = small_dcgan()
    data["inputs"]["y_fake"] = {"noise": "categorical", "classes": 10}
    data["modules"]["G"] = {"block": "ConditionalDCGANGenerator", "image_size": 8, "channels": 1, "latent": 8,
                            "num_classes": 10, "width": 8}
    data["flow"] = {"fake": "G(z, y_fake)"}
    folder = tmp_path / "run"
    api.train(api.from_dict(data), folder, TINY, quiet=True)
    out = tmp_path / "s.npy"
    assert main(["sample", str(folder), "-n", "5", "-o", str(out), "--labels", "y_fake=0:10"]) == 0
    assert main(["sample", str(folder), "-n", "0", "-o", str(out)]) == 2
    assert "-n 0: the number of samples must be a positive integer" in capsys.readouterr().err
    assert main(["sample", str(folder), "-n", "2", "-o", str(out), "--labels", "y_fake=a"]) == 2
    assert "--labels: expected integers like 3, 0,1,2 or 0:10, got 'a'" in capsys.readouterr().err
    assert main(["sample", str(folder), "-n", "2", "-o", str(out), "--labels", "y_fak=1"]) == 1    # as --input NAME
    assert "cannot feed 'y_fak': the graph has no tensor of that name (did you mean 'y_fake'?)" in capsys.readouterr().err
    assert main(["sample", str(folder), "-n", "2", "-o", str(tmp_path / "s.txt")]) == 1
    assert "expected a .png or .npy file" in capsys.readouterr().err
