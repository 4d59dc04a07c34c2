"""Standing statistics of EMA copies (composer/standing.py): the batch norms of an EMA generator
are re-estimated for its own weights, as torch's update_bn would, once per step, and nothing
about training changes."""
import copy

import torch
from safetensors.torch import load_file
from torch.optim.swa_utils import update_bn

from composer import api
from composer.run.generate import forward
from composer.run.standing import SEED_OFFSET, batch_norms
from specs import small_dcgan


def _runner(standing, steps=3, **data_edits):
    data = small_dcgan(ema={"G": 0.9}, standing_stats=standing, steps=steps)
    data["modules"]["G"].update(data_edits)
    run = api.runner(api.from_dict(data), cpu=True)
    for _ in range(steps):
        run.step()
    return run


def _buffers(module):
    return {k: v.clone() for k, v in module.named_buffers()}


def test_the_estimate_is_update_bn_over_the_generators_own_input_batches():
    run = _runner(standing=4)
    generator = torch.Generator().manual_seed(run.spec.train.seed + SEED_OFFSET)
    batches = [forward(run, ["z"], 8, {}, generator)[0] for _ in range(4)]
    reference = copy.deepcopy(run.ema["G"])
    update_bn(batches, reference)                            # torch's reference on the same batches
    estimated = run.unwrapped("G")
    assert estimated is not run.ema["G"]
    for norm, expected in zip(batch_norms(estimated), batch_norms(reference)):
        assert torch.allclose(norm.running_mean, expected.running_mean, atol=1e-6)
        assert torch.allclose(norm.running_var, expected.running_var, atol=1e-6)
        assert norm.momentum == 0.1                          # restored after the estimate
    for p, q in zip(estimated.parameters(), run.ema["G"].parameters()):
        assert torch.equal(p, q)


def test_the_ema_module_and_its_checkpoint_keep_the_trained_statistics(tmp_path):
    run = _runner(standing=4)
    run.unwrapped("G")
    raw = run.unwrapped("G", ema=False)
    for a, b in zip(batch_norms(run.ema["G"]), batch_norms(raw)):
        assert torch.equal(a.running_mean, b.running_mean) and torch.equal(a.running_var, b.running_var)
    data = small_dcgan(ema={"G": 0.9}, standing_stats=4, steps=2, sample_every=1, checkpoint_every=1)
    api.train(api.from_dict(data), out=tmp_path / "run", quiet=True)      # samples, then checkpoints
    weights = load_file(next((tmp_path / "run" / "checkpoints").glob("*/modules.safetensors")))
    stats = [k for k in weights if k.startswith("G.") and k.endswith(("running_mean", "running_var"))]
    assert stats and all(torch.equal(weights[k], weights[f"ema.{k}"]) for k in stats)


def test_zero_keeps_the_trained_modules_statistics():
    run = _runner(standing=0)
    assert run.unwrapped("G") is run.ema["G"]


def test_estimated_once_per_step_and_again_after_a_step():
    run = _runner(standing=2)
    estimated, calls = run.unwrapped("G"), []
    estimated.register_forward_pre_hook(lambda module, args: calls.append(1))
    assert run.unwrapped("G") is estimated and calls == []
    run.step()
    assert run.unwrapped("G") is estimated and len(calls) == 2   # the copy is reused, re-estimated


def test_sampling_with_standing_statistics_leaves_training_unchanged():
    runs = []
    for standing in (0, 8):
        run = _runner(standing=standing, steps=2)
        api.sample(run, 4)                                   # generation between steps
        state = run.generator.get_state().clone()
        for _ in range(2):
            run.step()
        runs.append((run, state))
    (a, state_a), (b, state_b) = runs
    assert torch.equal(state_a, state_b)
    for name in ("G", "D"):
        for p, q in zip(a.unwrapped(name, ema=False).parameters(), b.unwrapped(name, ema=False).parameters()):
            assert torch.equal(p, q)
    for p, q in zip(a.ema["G"].parameters(), b.ema["G"].parameters()):
        assert torch.equal(p, q)


def test_the_standing_samples_differ_from_the_trained_statistics_samples():
    with_standing, without = _runner(standing=8), _runner(standing=0)
    assert not torch.allclose(api.sample(with_standing, 8), api.sample(without, 8))
