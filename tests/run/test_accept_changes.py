"""`--resume --accept-changes` applies every accepted change from the step it resumes at, or
refuses it by name (issue 28, finding 1). Each kind of change is compared, bitwise, with a run
that had the new value from that step on: a hand-written loop that sets the new value on the
torch optimizer itself, or a fresh run whose spec has the new value and whose state at the
resumed step is the same."""
import json

import pytest
import torch
from safetensors.torch import load_file

from composer import api
from composer.errors import ComposerError
from composer.run import checkpoint
from composer.tools.cli import main
from specs import small_2d_gan

RUN = ["train.steps=4", "train.checkpoint_every=2", "train.keep_checkpoints=2", "train.log_every=1",
       "train.sample_every=0"]
N, M = 4, 6


def resumed(tmp_path, change, base=(), spec=None):
    """Train N steps with the base spec, resume to M with `change` accepted; the final weights."""
    folder = tmp_path / "run"
    data = spec or small_2d_gan()
    api.train(api.from_dict(data), folder, RUN + list(base), quiet=True)
    api.train(api.from_dict(data), folder, RUN + list(base) + [f"train.steps={M}"] + list(change), resume=True,
              quiet=True, accept_changes=True)
    return load_file(checkpoint.latest(folder) / "modules.safetensors")


def by_hand(base=(), edit=lambda runner: None):
    """The reference: N steps of the base spec in memory, then `edit` (plain torch, before every
    step from N on) and steps to M; its weights."""
    runner = api.runner(api.from_dict(small_2d_gan(), RUN + list(base)), cpu=True)
    for _ in range(N):
        runner.step()
    for _ in range(N, M):
        edit(runner)
        runner.step()
    return checkpoint.module_tensors(runner)


def fresh(overrides, spec=None):
    """The reference: a fresh run of M steps whose spec has the new value throughout."""
    runner = api.runner(api.from_dict(spec or small_2d_gan(), RUN + [f"train.steps={M}"] + list(overrides)), cpu=True)
    for _ in range(M):
        runner.step()
    return checkpoint.module_tensors(runner)


def same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def set_group(optimizer: str, key: str, value):
    def edit(runner):
        for group in runner.optimizers[optimizer].param_groups:
            group[key] = value
    return edit


@pytest.mark.parametrize("change, key, value", [
    ("optimizers.D.lr=5.0e-4", "lr", 5.0e-4),
    ("optimizers.D.betas=[0.0, 0.9]", "betas", (0.0, 0.9)),
    ("optimizers.D.weight_decay=0.5", "weight_decay", 0.5),
])
def test_an_accepted_optimizer_hyperparameter_applies_from_the_resumed_step(tmp_path, change, key, value):
    weights = resumed(tmp_path, [change])
    assert same(weights, by_hand(edit=set_group("D", key, value)))
    assert not same(weights, by_hand())          # and the change made a difference
    logged = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    expected = [1e-3] * N + [5e-4 if key == "lr" else 1e-3] * (M - N)
    assert [r["lr.D"] for r in logged] == expected


def test_a_longer_run_stretches_the_lr_schedule_to_the_new_horizon(tmp_path):
    schedule = ["optimizers.D.lr_schedule={type: linear_decay, start: 4}"]   # constant before step 4 either way
    weights = resumed(tmp_path, [], base=schedule)
    assert same(weights, fresh(schedule))
    logged = [json.loads(line)["lr.D"] for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert logged[N:] == [1e-3 * (1 - 1 / 2), 0.0]     # decaying over steps 4..6, not at 0 from step 4


def test_an_accepted_weight_schedule_applies_from_the_resumed_step(tmp_path):
    before = ["objectives.gan.weight={type: constant, value: 0.5}"]
    after = ["objectives.gan.weight={type: linear, start: 0.5, end: 2.0, steps: 2, delay: 4}"]
    weights = resumed(tmp_path, after, base=before)
    assert same(weights, fresh(after))             # 0.5 before step 4 in both
    assert not same(weights, fresh(before))


@pytest.mark.parametrize("change, message", [
    ("train.seed=7", r"train.seed: 0 -> 7 \(the checkpoint's random streams continue"),
    ("optimizers.D.type=sgd", r"optimizers.D.type: 'adam' -> 'sgd' \(the checkpoint's optimizer state is of its "
                              r"optimizer type\)"),
    ("optimizers.D.params=[G] optimizers.G.params=[D]", r"optimizers.D.params: \['D'\] -> \['G'\] \(the "
                                                     r"checkpoint's optimizer state is of its parameters\); "
                                                     r"optimizers.G.params: \['G'\] -> \['D'\]"),   # same sizes
])
def test_a_change_a_resume_cannot_apply_is_refused_by_name(tmp_path, change, message):
    folder = tmp_path / "run"
    api.train(api.from_dict(small_2d_gan()), folder, RUN, quiet=True)
    with pytest.raises(ComposerError, match=r"--accept-changes: a resume cannot apply " + message):
        api.train(api.from_dict(small_2d_gan()), folder, RUN + change.split(), resume=True, quiet=True,
                  accept_changes=True)
    assert not (folder / "changes.jsonl").exists()


@pytest.mark.parametrize("change, message", [
    ("modules.D.hidden=32", r"does not fit this graph: module D: parameter `net.0.weight` shape \[16, 2\] in the "
                            r"checkpoint vs \[32, 2\] in the graph; .*A changed architecture cannot continue a run"),
    ("train.ema={G: 0.99}", r"does not fit this graph: EMA copy G: not in the checkpoint \(train.ema was added\?\)"),
    ("modules.D.depth=3", r"does not fit this graph: module D: parameter `net.4.weight` shape \[1, 16\] in the "
                          r"checkpoint vs \[16, 16\] in the graph; .*module D: missing from the checkpoint: "
                          r"`net.6.weight`, `net.6.bias`"),
])
def test_an_architecture_change_is_refused_as_not_fitting_and_names_what_differs(tmp_path, change, message):
    folder = tmp_path / "run"
    api.train(api.from_dict(small_2d_gan()), folder, RUN, quiet=True)
    with pytest.warns(UserWarning), pytest.raises(ComposerError, match=message) as info:
        api.train(api.from_dict(small_2d_gan()), folder, RUN + [change], resume=True, quiet=True, accept_changes=True)
    assert "damaged" not in str(info.value) and "(nor does the older checkpoint). A changed" in str(info.value)


def test_a_changed_data_set_is_refused_by_a_resume_and_ignored_by_sample(tmp_path, capsys):
    folder = tmp_path / "run"
    api.train(api.from_dict(small_2d_gan()), folder, RUN, quiet=True)
    with pytest.warns(UserWarning), pytest.raises(ComposerError, match=r"does not fit this graph: the data changed "
                                                                       r"since it was written: input 'real': the saved "
                                                                       r"data order is of 2000 samples, the data now "
                                                                       r"has 1000"):
        api.train(api.from_dict(small_2d_gan()), folder, RUN + ["inputs.real.n=1000"], resume=True, quiet=True,
                  accept_changes=True)
    out = tmp_path / "s.npy"            # sampling never reads the training data order
    assert main(["sample", str(folder), "-o", str(out), "-n", "8", "inputs.real.n=1000"]) == 0
    assert out.is_file() and "damaged" not in capsys.readouterr().err
