"""A checkpoint is loaded only when it is what composer writes (issue 28, finding 5): finite
tensors, a state.json whose step is its folder's and whose format is known; anything else is
damage, and a resume falls back to the previous checkpoint and says which. Pruning never
removes the newest valid checkpoint."""
import json

import pytest
import torch
from safetensors.torch import load_file, save_file

from composer import api
from composer.errors import ComposerError
from composer.run import checkpoint
from composer.tools.cli import main
from specs import small_2d_gan

RUN = ["train.steps=4", "train.checkpoint_every=1", "train.keep_checkpoints=2", "train.log_every=1",
       "train.sample_every=0"]


def trained(tmp_path, overrides=RUN):
    folder = tmp_path / "run"
    api.train(api.from_dict(small_2d_gan()), folder, overrides, quiet=True)
    return folder


def poison(folder, key="D.net.0.weight"):
    """Write NaN into one tensor of a checkpoint's modules.safetensors, as damage on disk would."""
    path = folder / "modules.safetensors"
    tensors = load_file(path)
    tensors[key] = torch.full_like(tensors[key], float("nan"))
    save_file(tensors, path)


def edit_state(folder, **fields):
    path = folder / "state.json"
    state = json.loads(path.read_text())
    state.update(fields)
    path.write_text(json.dumps(state))


def test_a_checkpoint_with_non_finite_weights_is_damage_and_the_resume_falls_back(tmp_path):
    folder = trained(tmp_path)
    poison(checkpoint.latest(folder))
    with pytest.warns(UserWarning, match=r"step_000004 is damaged: modules.safetensors holds non-finite values in "
                                         r"D.net.0.weight .*; falling back to the previous one, step_000003"):
        results = api.train(api.from_dict(small_2d_gan()), folder, RUN + ["train.steps=6"], resume=True, quiet=True,
                            accept_changes=True)
    assert results["step"] == 6
    assert json.loads((folder / "changes.jsonl").read_text())["resumed_at"] == 3


def test_eval_of_a_run_whose_weights_are_non_finite_exits_non_zero(tmp_path, capsys):
    folder = trained(tmp_path, RUN + ["train.keep_checkpoints=1"])
    poison(checkpoint.latest(folder))
    with pytest.warns(UserWarning):
        assert main(["eval", str(folder)]) == 1
    assert "modules.safetensors holds non-finite values in D.net.0.weight" in capsys.readouterr().err


@pytest.mark.parametrize("fields, message", [
    ({"step": 1e30}, r"state.json has step 1e\+30; expected the folder's step, 4"),
    ({"step": 3}, r"state.json has step 3; expected the folder's step, 4"),
    ({"step": "4"}, r"state.json has step '4'"),
    ({"format": 99}, r"state.json has format 99; this composer reads format 1"),
])
def test_state_json_is_validated_and_a_bad_one_is_damage(tmp_path, fields, message):
    folder = trained(tmp_path)
    edit_state(checkpoint.latest(folder), **fields)
    with pytest.warns(UserWarning, match=message + r".*falling back to the previous one, step_000003"):
        run = api.open_run(folder)
    assert run.step_count == 3


def test_a_huge_step_never_writes_a_checkpoint_nor_prunes_the_good_ones(tmp_path):
    folder = trained(tmp_path)
    edit_state(checkpoint.latest(folder), step=1e30)
    with pytest.warns(UserWarning, match=r"step_000004 is damaged: state.json has step 1e\+30"):
        results = api.train(api.from_dict(small_2d_gan()), folder, RUN + ["train.steps=6"], resume=True, quiet=True,
                            accept_changes=True)
    assert results["step"] == 6
    assert sorted(p.name for p in (folder / "checkpoints").iterdir()) == ["step_000005", "step_000006"]


def test_pruning_keeps_the_newest_valid_checkpoint_whatever_sorts_after_it(tmp_path):
    folder = trained(tmp_path)
    foreign = folder / "checkpoints" / "step_900000"
    foreign.mkdir()
    (foreign / "state.json").write_text(json.dumps({"step": 1e30}))     # invalid: sorts last, counts for nothing
    with pytest.warns(UserWarning, match=r"step_900000 is damaged: .*falling back to the previous one, step_000004"):
        results = api.train(api.from_dict(small_2d_gan()), folder, RUN + ["train.steps=6", "train.keep_checkpoints=1"],
                            resume=True, quiet=True, accept_changes=True)
    assert results["step"] == 6
    names = sorted(p.name for p in (folder / "checkpoints").iterdir())
    assert names == ["step_000006", "step_900000"]


def test_evaluating_non_finite_weights_is_refused_not_reported_as_nan():
    runner = api.runner(api.from_dict(small_2d_gan()), cpu=True)
    with torch.no_grad():
        runner.raw["G"].net[0].weight.fill_(float("inf"))
    with pytest.raises(ComposerError, match=r"eval: module G: net.0.weight is not finite; metrics of non-finite "
                                            r"weights are not computed"):
        api.evaluate(runner)
