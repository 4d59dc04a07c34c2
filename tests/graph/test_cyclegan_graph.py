"""graphs/cyclegan.yaml and graphs/cyclegan_256.yaml: the compiled plan, the reference's parameter
counts, the linear learning-rate decay, and the checks of sample.output and eval.metrics."""
import pytest

from composer import api
from composer.errors import SpecError
from composer.run.optim import linear_decay
from composer.graph.view import to_json
from conftest import GRAPHS


def test_plan_calls_each_generator_and_discriminator_three_times():
    plan = to_json(api.plan(GRAPHS / "cyclegan.yaml"))
    assert plan["forward_calls_per_step"] == {"G_AB": 3, "G_BA": 3, "D_A": 3, "D_B": 3}
    G, D = plan["phases"]
    assert (G["name"], G["trains"], G["frozen"]) == ("G", ["G_AB", "G_BA"], ["D_A", "D_B"])
    assert (D["name"], D["trains"], D["frozen"]) == ("D", ["D_A", "D_B"], [])
    reused = [op["node"] for op in D["ops"] if op["op"] == "reuse"]
    assert reused == ["real_A", "real_B", "fake_B", "fake_A"]       # no generator call in phase D
    assert sorted(map(tuple, D["cuts"])) == [("gan_A.pool", "gan_A.fake_logits"), ("gan_B.pool", "gan_B.fake_logits")]
    weights = {t["name"]: t["weight"] for p in (G, D) for t in p["terms"]}
    assert weights == {"gan_B.G": 1, "gan_A.G": 1, "cycle_A.loss": 10, "cycle_B.loss": 10, "identity_A.loss": 5,
                       "identity_B.loss": 5, "gan_B.D_real": 0.5, "gan_B.D_fake": 0.5, "gan_A.D_real": 0.5,
                       "gan_A.D_fake": 0.5}


def test_reference_sizes_have_the_reference_parameter_counts():
    plan = to_json(api.plan(GRAPHS / "cyclegan_256.yaml"))
    assert plan["parameters"] == {"G_AB": 11_378_179, "G_BA": 11_378_179, "D_A": 2_764_737, "D_B": 2_764_737}
    assert plan["shapes"]["fake_B"] == [3, 256, 256] and plan["shapes"]["gan_B.real_logits"] == [1, 30, 30]
    assert plan["forward_calls_per_step"] == {"G_AB": 3, "G_BA": 3, "D_A": 3, "D_B": 3}


def test_linear_decay_values():
    assert [linear_decay(s, total=10, start=6) for s in (0, 5, 6, 7, 8, 9, 10)] == [1, 1, 1, 0.75, 0.5, 0.25, 0]
    assert [linear_decay(s, total=10) for s in (4, 5, 9)] == pytest.approx([1, 1, 0.2])    # start: total // 2


def test_linear_decay_is_the_reference_lambda_rule_with_start_one_before_the_decay():
    """junyanz `networks.get_scheduler`: 1 − max(0, epoch + 1 − n_epochs) / (n_epochs_decay + 1)."""
    n_epochs, n_decay = 100, 100
    for epoch in range(n_epochs + n_decay):
        reference = 1.0 - max(0, epoch + 1 - n_epochs) / float(n_decay + 1)
        assert linear_decay(epoch, total=n_epochs + n_decay, start=n_epochs - 1) == pytest.approx(reference, abs=1e-12)


def test_runner_learning_rate_follows_the_schedule():
    runner = api.runner(GRAPHS / "cyclegan.yaml", ["train.steps=6", "train.batch=2",
                                                   "optimizers.G.lr_schedule.start=2"], cpu=True)
    lrs = []
    for _ in range(6):
        lrs.append(runner.optimizers["G"].param_groups[0]["lr"])
        runner.step()
    assert lrs == pytest.approx([2e-4, 2e-4, 2e-4, 1.5e-4, 1e-4, 0.5e-4])
    assert runner.optimizers["D"].param_groups[0]["lr"] == pytest.approx(2e-4)   # D: start 600 of 6 steps


def test_sample_output_list_is_checked_at_build():
    with pytest.raises(SpecError, match=r"<override>: sample.output.1: 'fakeB' is not a tensor of the graph "
                                        r"\(did you mean 'fake_B'\?\)"):
        api.plan(GRAPHS / "cyclegan.yaml", ["sample.output=[real_A, fakeB]"])
    with pytest.raises(SpecError, match=r"sample.output: tensors shown side by side need one shape, got real_A "
                                        r"\[1, 16, 16\], gan_B.real_logits \[1, 2, 2\]"):
        api.plan(GRAPHS / "cyclegan.yaml", ["sample.output=[real_A, gan_B.real_logits]"])


def test_metric_options_are_checked_at_build():
    with pytest.raises(SpecError, match=r"eval.metrics.translation.A_to: metric translation has no argument 'A_to'"):
        api.plan(GRAPHS / "cyclegan.yaml", ["eval.metrics.translation.A_to=fake_B"])
    with pytest.raises(SpecError, match=r"eval.metrics.translation: metric translation needs argument\(s\): B_to_A"):
        api.plan(GRAPHS / "cyclegan.yaml", ["eval.metrics.translation={A: real_A, B: real_B, A_to_B: fake_B}"])
    with pytest.raises(SpecError, match=r"eval.metrics.translaton: unknown metric 'translaton' "
                                        r"\(did you mean 'translation'\?\)"):
        api.plan(GRAPHS / "cyclegan.yaml", ["eval.metrics={translaton: {}}"])
    with pytest.raises(SpecError, match=r"eval.metrics.digits: metric digits scores generated samples: "
                                        r"sample.output must name one tensor, not a list"):
        api.plan(GRAPHS / "cyclegan.yaml", ["eval.metrics={digits: {}}"])
