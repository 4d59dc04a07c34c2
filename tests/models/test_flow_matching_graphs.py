"""graphs/flow_matching_2d.yaml and graphs/flow_matching.yaml (Lipman et al. 2023; Liu et al. 2023):
a CPU smoke run of each, and invariant 3 for each: the compiled steps of the graph file (shrunk)
equal a hand-written flow-matching loop bitwise on one CPU thread.

The hand-written loop is the papers' training algorithm in plain torch: x_t = (1 - t) x0 + t eps
(the recipe's convention: data at t = 0, noise at t = 1), the network's velocity regressed on
eps - x0 by mean squared error, Adam with the graph's linear warm-up then cosine learning rate,
and the graph's gradient clipping where it has one; the same data, t, noise and initial weights.
"""
import copy
import math

import pytest
import torch
import yaml

from composer import api
from conftest import GRAPHS

TINY = ["train.steps=2", "train.batch=4", "train.log_every=1", "train.sample_every=0",
        "train.checkpoint_every=0", "sample.n=4", "sample.steps=2", "eval.n=64"]
SHRINK = {
    "flow_matching_2d": ["modules.v_net.hidden=16", "modules.v_net.time_dim=8", "train.batch=16"],
    "flow_matching": ["modules.v_net.width=8", "train.batch=4"],
}
SHAPES = {"flow_matching_2d": (2,), "flow_matching": (1, 8, 8)}
STEPS = 3


@pytest.mark.parametrize("name", sorted(SHAPES))
def test_smoke_run_trains_samples_and_evaluates(name, tmp_path):
    results = api.train(GRAPHS / f"{name}.yaml", out=tmp_path, overrides=TINY, quiet=True)
    assert results["step"] == 2
    for file in ("spec.yaml", "metrics.jsonl", "weights.safetensors", "samples/final.png", "eval.json"):
        assert (tmp_path / file).exists(), file
    if name == "flow_matching_2d":
        assert results["mixture.modes_total"] == 25
    else:
        assert results["digits.classes_total"] == 10 and "digits.frechet_distance" in results


def warmup_cosine(step: int, total: int, warmup: int) -> float:
    """Linear warm-up to the base rate over `warmup` steps, then half a cosine down to 0 at `total`."""
    if step < warmup:
        return (step + 1) / warmup
    return 0.5 * (1 + math.cos(math.pi * min(1.0, (step - warmup) / max(1, total - warmup))))


def hand_written_steps(net, graph: dict, batches) -> list[float]:
    """The flow-matching loop, one Adam step per batch (x0, t, eps), with the graph file's numbers."""
    optimizer_spec, train = graph["optimizers"]["v_net"], graph["train"]
    optimizer = torch.optim.Adam(net.parameters(), lr=optimizer_spec["lr"])
    total, warmup, clip = train["steps"], optimizer_spec["lr_schedule"]["warmup"], train.get("grad_clip")
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: warmup_cosine(s, total, warmup))
    losses = []
    for x0, t, eps in batches:
        t_ = t.reshape((-1,) + (1,) * (x0.dim() - 1))
        x_t = (1 - t_) * x0 + t_ * eps
        loss = (net(x_t, t) - (eps - x0)).pow(2).flatten(1).mean(1).mean()
        optimizer.zero_grad()
        loss.backward()
        if clip:
            torch.nn.utils.clip_grad_norm_(list(net.parameters()), clip)
        optimizer.step()
        scheduler.step()
        losses.append(loss.item())
    return losses


@pytest.mark.parametrize("name", sorted(SHAPES))
def test_compiled_steps_equal_the_hand_written_loop(name):
    runner = api.runner(GRAPHS / f"{name}.yaml", SHRINK[name], cpu=True)
    graph, batch = yaml.safe_load((GRAPHS / f"{name}.yaml").read_text()), runner.spec.train.batch
    net = copy.deepcopy(runner.raw["v_net"])
    gen = torch.Generator().manual_seed(5)
    batches = [(torch.rand((batch,) + SHAPES[name], generator=gen) * 2 - 1, torch.rand(batch, generator=gen),
                torch.randn((batch,) + SHAPES[name], generator=gen)) for _ in range(STEPS)]
    compiled = [runner.step({"x0": x0, "fm.t": t, "fm.eps": eps})["fm.loss"] for x0, t, eps in batches]
    assert compiled == hand_written_steps(net, graph, batches)
    weights = runner.raw["v_net"].state_dict()
    for key, value in net.state_dict().items():
        assert torch.equal(weights[key], value), f"v_net.{key} differs"
    assert runner.forward_calls == {"v_net": STEPS}
