"""Standing statistics of EMA copies (composer/standing.py): the batch norms of an EMA generator
are re-estimated for its own weights, as torch's update_bn would, once per step, and nothing
about training changes."""
import copy

import torch
from torch.optim.swa_utils import update_bn

from composer import api
from composer.standing import batch_norms
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
    trained_copy = copy.deepcopy(run.ema["G"])              # before: the trained G's statistics
    mode = run.ema["G"].training
    seen = []
    hook = run.ema["G"].register_forward_pre_hook(lambda module, args: seen.append(args[0].clone()))
    estimated = run.unwrapped("G")
    hook.remove()
    assert len(seen) == 4 and all(z.shape == (8, 8) for z in seen)
    update_bn(seen, trained_copy)                            # torch's reference on the same batches
    for norm, reference in zip(batch_norms(estimated), batch_norms(trained_copy)):
        assert torch.allclose(norm.running_mean, reference.running_mean, atol=1e-6)
        assert torch.allclose(norm.running_var, reference.running_var, atol=1e-6)
        assert norm.momentum == reference.momentum == 0.1   # restored after the estimate
    assert estimated.training == mode and all(n.training == mode for n in batch_norms(estimated))
    raw = run.unwrapped("G", ema=False)
    assert not torch.allclose(batch_norms(estimated)[0].running_mean, batch_norms(raw)[0].running_mean)


def test_zero_keeps_the_trained_modules_statistics():
    run = _runner(standing=0)
    ema, raw = run.unwrapped("G"), run.unwrapped("G", ema=False)
    for a, b in zip(batch_norms(ema), batch_norms(raw)):
        assert torch.equal(a.running_mean, b.running_mean) and torch.equal(a.running_var, b.running_var)


def test_estimated_once_per_step_and_again_after_a_step():
    run = _runner(standing=2)
    calls = []
    run.ema["G"].register_forward_pre_hook(lambda module, args: calls.append(1))
    run.unwrapped("G")
    run.unwrapped("G")
    assert len(calls) == 2                                   # one estimate of 2 batches
    run.step()
    run.unwrapped("G")
    assert len(calls) == 4


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
