"""Files a graph file names stay inside its project (composer/spec/paths.py): `extends:`, `weights:`
and `pretrained:` resolve under the working directory, the graph file's folder or a granted folder
(--allow-path, api allow_paths, $COMPOSER_ALLOW_PATHS), symlinks followed; no error quotes a file
that is not a graph file; validate reads a `weights:` file's safetensors header and checks it."""
import os

import pytest
import torch
from safetensors.torch import save_file

from composer import api
from composer.errors import SpecError
from composer.graph.modules import build_modules
from composer.spec.paths import ENV
from composer.tools import cli

GRAPH = """\
inputs:
  real: {source: ring}
  z: {noise: normal, shape: [2]}
modules:
  G: {block: MLP, in_features: 2, hidden: 8, depth: 1, out_features: 2%s}
  D: {block: MLP, in_features: 2, hidden: 8, depth: 1, out_features: 1}
flow:
  fake: G(z)
objectives:
  gan: {recipe: adversarial, critic: D, real: real, fake: fake}
optimizers:
  D: {params: [D], lr: 1.0e-3}
  G: {params: [G], lr: 1.0e-3}
train: {steps: 1, batch: 4}
"""
SECRET = "hunter2: the first line of a file that is not a graph file\n"


@pytest.fixture
def project(tmp_path, monkeypatch):
    """tmp/project (the working directory, holding the graph files) beside tmp/outside."""
    monkeypatch.delenv(ENV, raising=False)
    (tmp_path / "project").mkdir()
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "secret.yaml").write_text(SECRET)
    (tmp_path / "outside" / "secret.txt").write_text(SECRET)
    monkeypatch.chdir(tmp_path / "project")
    return tmp_path / "project"


def graph(folder, text, name="g.yaml"):
    (folder / name).write_text(text)
    return folder / name


def weights_for(path, **changes):
    """A safetensors file holding module G's state (of GRAPH with `changes` to its arguments)."""
    spec = api.from_dict(__import__("yaml").safe_load(GRAPH % "".join(f", {k}: {v}" for k, v in changes.items())))
    save_file({k: v.contiguous() for k, v in build_modules(spec)["G"].state_dict().items()}, str(path))
    return path


# ------------------------------------------------------------------ extends
def test_extends_outside_the_project_is_refused_and_says_how_to_allow_it(project):
    file = graph(project, "extends: ../outside/secret.yaml\n")
    with pytest.raises(SpecError, match=r"extends: '\.\./outside/secret\.yaml' resolves to .*outside[/\\]secret\.yaml, "
                                        r"outside the project \(allowed: .*\); to read it, pass --allow-path .*outside "
                                        rf"\(api: allow_paths=\[\.\.\.\]\) or add the folder to \${ENV}") as err:
        api.load(file)
    assert "hunter2" not in str(err.value)


def test_extends_never_reads_a_file_that_is_not_a_graph_file(project):
    """The issue's probe: enough ../ reached the password database and printed its first line."""
    file = graph(project, "extends: " + "../" * 30 + "etc/passwd\n")
    with pytest.raises(SpecError, match=r"extends names a graph file \(\.yaml or \.yml\)") as err:
        api.load(file, allow_paths=["/"])                  # even where the folder is granted
    assert "root:" not in str(err.value)
    graph(project, "extends: ../outside/secret.txt\n")
    with pytest.raises(SpecError, match="extends names a graph file") as err:
        api.load(project / "g.yaml", allow_paths=[project.parent / "outside"])
    assert "hunter2" not in str(err.value)


def test_a_symlink_inside_the_project_is_followed_before_the_check(project):
    os.symlink(project.parent / "outside" / "secret.yaml", project / "base.yaml")
    with pytest.raises(SpecError, match=r"'base\.yaml' resolves to .*outside[/\\]secret\.yaml, outside the project"):
        api.load(graph(project, "extends: base.yaml\n"))


def test_a_granted_folder_lets_extends_read_there(project, monkeypatch):
    (project.parent / "outside" / "base.yaml").write_text(GRAPH % "")
    file = graph(project, "extends: ../outside/base.yaml\ntrain: {steps: 2}\n")
    assert api.load(file, allow_paths=[project.parent / "outside"]).train.steps == 2
    monkeypatch.setenv(ENV, os.pathsep.join(["/nonexistent", str(project.parent / "outside")]))
    assert api.load(file).train.steps == 2


def test_the_graph_files_own_folder_is_always_allowed(project, tmp_path):
    """A graph in another folder (pytest's tmp_path is outside the working directory) reads its neighbours."""
    (tmp_path / "outside" / "base.yaml").write_text(GRAPH % "")
    file = graph(tmp_path / "outside", "extends: base.yaml\n", "child.yaml")
    assert api.load(file).name == "child"


# ------------------------------------------------------------------ weights and pretrained
def test_weights_outside_the_project_are_refused_at_validate(project):
    weights_for(project.parent / "outside" / "w.safetensors")
    file = graph(project, GRAPH % ", weights: ../outside/w.safetensors")
    with pytest.raises(SpecError, match=r"g\.yaml:5:\d+: modules\.G\.weights: '\.\./outside/w\.safetensors' "
                                        "resolves to .* outside the project"):
        api.validate(file)
    assert api.validate(api.load(file, allow_paths=[project.parent / "outside"]))


def test_weights_that_are_a_device_or_a_pipe_are_never_opened(project):
    os.mkfifo(project / "pipe.safetensors")
    with pytest.raises(SpecError, match=r"modules\.G\.weights: 'pipe\.safetensors': .*pipe\.safetensors is not a "
                                        r"regular file \(a device or a pipe, never read\)"):
        api.validate(graph(project, GRAPH % ", weights: pipe.safetensors"))   # opening the FIFO would block
    with pytest.raises(SpecError, match=r"'/dev/zero': /dev/zero is not a regular file \(a device or a pipe"):
        api.validate(api.load(graph(project, GRAPH % ", weights: /dev/zero"), allow_paths=["/dev"]))


def test_weights_that_are_not_safetensors_are_refused_at_validate_without_quoting_them(project):
    (project / "notes.txt").write_text(SECRET * 50)
    with pytest.raises(SpecError, match=r"modules\.G\.weights: .*notes\.txt: not a safetensors file") as err:
        api.validate(graph(project, GRAPH % ", weights: notes.txt"))
    assert "hunter2" not in str(err.value)


def test_weights_of_other_shapes_or_names_are_refused_at_validate(project):
    weights_for(project / "wide.safetensors", hidden=16)
    with pytest.raises(SpecError, match=r"modules\.G\.weights: .*wide\.safetensors does not fit module 'G': "
                                        r"net\.0\.bias has shape \[16\], the module's is \[8\] \(3 tensor\(s\) differ\)"):
        api.validate(graph(project, GRAPH % ", weights: wide.safetensors"))
    save_file({"other": torch.zeros(2)}, str(project / "other.safetensors"))
    with pytest.raises(SpecError, match=r"other\.safetensors holds no weights matching module 'G' \(1 tensors; "
                                        r"missing e\.g\. net\.0\.bias"):
        api.validate(graph(project, GRAPH % ", weights: other.safetensors"))


def test_fitting_weights_validate(project):
    weights_for(project / "w.safetensors")
    assert api.validate(graph(project, GRAPH % ", weights: w.safetensors")).graph.param_counts["G"] > 0


def test_pretrained_outside_the_project_is_refused(project):
    weights_for(project.parent / "outside" / "net.safetensors")
    with pytest.raises(SpecError, match=r"modules\.G\.pretrained: '.*outside[/\\]net\.safetensors' resolves to .* "
                                        "outside the project"):
        api.load(graph(project, GRAPH % ", pretrained: ../outside/net.safetensors"))


# ------------------------------------------------------------------ the CLI
def test_cli_allow_path_grants_a_folder_for_one_command(project, capsys):
    (project.parent / "outside" / "base.yaml").write_text(GRAPH % "")
    graph(project, "extends: ../outside/base.yaml\n")
    assert cli.main(["validate", "g.yaml"]) == 2
    assert "outside the project" in capsys.readouterr().err
    assert cli.main(["validate", "g.yaml", "--allow-path", str(project.parent / "outside")]) == 0
    assert "g.yaml: ok" in capsys.readouterr().out
    assert ENV not in os.environ                            # the grant ends with the command


def test_a_metrics_weights_file_outside_the_project_is_refused(project):
    text = GRAPH % "" + "eval: {metrics: {inception: {weights: ../outside/secret.txt}}}\n"
    with pytest.raises(SpecError, match=r"eval\.metrics\.inception\.weights: '\.\./outside/secret\.txt' resolves to "
                                        ".* outside the project"):
        api.validate(graph(project, text))


def test_an_override_and_a_spec_built_in_python_are_the_users_own_paths(project):
    """The boundary is the graph file: a path typed in key=value, or a dict built by the program
    itself, may lie anywhere (the program could open the file itself)."""
    weights = weights_for(project.parent / "outside" / "w.safetensors")
    file = graph(project, GRAPH % "")
    spec = api.validate(file, [f"modules.G.weights={weights}"]).spec
    assert {m.name: m.weights for m in spec.modules}["G"] == str(weights)
    data = __import__("yaml").safe_load(GRAPH % f", weights: {weights}")
    assert api.validate(api.from_dict(data)).graph.param_counts["G"] > 0
