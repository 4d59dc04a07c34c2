"""graphs/vqvae.yaml (van den Oord et al. 2017): the compiled step equals a hand-written VQ-VAE
step (straight-through estimator, commitment loss, EMA codebook, Adam) bitwise on CPU; the
codebook moves once per training step and never in generation, evaluation or under no_grad;
a resume continues it bitwise; the graph file trains, logging its codebook usage."""
import copy
import json

import torch

from composer import api
from composer.run import checkpoint
from composer.run.generate import generate
from composer.run.trainer import Trainer
from conftest import GRAPHS
from specs import TINY_RUN

VQVAE = GRAPHS / "vqvae.yaml"
STEPS = 3
BATCH = 8
BETA, DECAY, EPS, RESTART = 0.25, 0.99, 1e-5, 1.0     # graphs/vqvae.yaml


class HandVQ:
    """The paper's quantiser written out: nearest code, straight-through, EMA codebook state."""

    def __init__(self, codebook):
        self.codebook = codebook.clone()
        self.cluster_size = torch.ones(codebook.shape[0])
        self.embed_sum = codebook.clone()

    def __call__(self, z):
        k, d = self.codebook.shape
        flat = z.permute(0, 2, 3, 1).reshape(-1, d).detach()
        dist = flat.pow(2).sum(1, keepdim=True) - 2 * flat @ self.codebook.t() + self.codebook.pow(2).sum(1)
        codes = dist.argmin(1)
        e = self.codebook[codes].view(z.shape[0], z.shape[2], z.shape[3], d).permute(0, 3, 1, 2)
        commitment = BETA * (z - e.detach()).pow(2).reshape(z.shape[0], -1).mean(1)
        with torch.no_grad():   # 1. counts and sums per code  2. EMA  3. Laplace smoothing  4. codebook
            counts = torch.bincount(codes, minlength=k).float()
            sums = torch.zeros(k, d).index_add_(0, codes, flat)
            self.cluster_size.mul_(DECAY).add_(counts, alpha=1 - DECAY)
            self.embed_sum.mul_(DECAY).add_(sums, alpha=1 - DECAY)
            n = self.cluster_size.sum()
            smoothed = (self.cluster_size + EPS) / (n + k * EPS) * n
            self.codebook = self.embed_sum / smoothed.unsqueeze(1)
            self.restart_dead(flat, (flat - e.permute(0, 2, 3, 1).reshape(-1, d)).pow(2).sum(1))
        return z + (e - z).detach(), commitment


    def restart_dead(self, flat, error):
        """Dead codes (N < RESTART), in index order, take the batch's worst-quantised vectors."""
        far = flat[error.topk(min(len(error), self.codebook.shape[0])).indices]
        for rank, k in enumerate(torch.nonzero(self.cluster_size < RESTART).flatten().tolist()[:len(far)]):
            self.codebook[k], self.embed_sum[k], self.cluster_size[k] = far[rank], far[rank], 1.0


def hand_written_step(enc, vq, dec, opt, x):
    """loss = mean_pixels (dec(z_q) - x)^2 + beta mean ||z - sg(e)||^2; Adam on enc and dec."""
    opt.zero_grad(set_to_none=True)
    z_q, commitment = vq(enc(x))
    rec = (dec(z_q) - x).pow(2).flatten(1).mean(1).mean()
    (rec + commitment.mean()).backward()
    opt.step()


def _batches():
    gen = torch.Generator().manual_seed(5)
    return [torch.rand(BATCH, 1, 16, 16, generator=gen) * 2 - 1 for _ in range(STEPS)]


def test_compiled_vqvae_step_equals_hand_written_step():
    runner = api.runner(VQVAE, [f"train.batch={BATCH}"], cpu=True)
    enc, dec = copy.deepcopy(runner.raw["enc"]), copy.deepcopy(runner.raw["dec"])
    vq = HandVQ(runner.raw["vq"].codebook)
    for x in _batches():
        runner.step({"x": x})
    opt = torch.optim.Adam([*enc.parameters(), *dec.parameters()], lr=1e-3)
    for x in _batches():
        hand_written_step(enc, vq, dec, opt, x)
    for name, hand in (("enc", enc), ("dec", dec)):
        compiled = runner.raw[name].state_dict()
        for key, value in hand.state_dict().items():
            assert torch.equal(compiled[key], value), f"{name}.{key} differs"
    for key in ("codebook", "cluster_size", "embed_sum"):
        assert torch.equal(getattr(runner.raw["vq"], key), getattr(vq, key)), f"vq.{key} differs"
    assert runner.forward_calls == {"enc": STEPS, "vq": STEPS, "dec": STEPS}


def test_codebook_moves_in_training_steps_only():
    runner = api.runner(VQVAE, [f"train.batch={BATCH}"], cpu=True)
    vq = runner.raw["vq"]
    before = {k: v.clone() for k, v in vq.state_dict().items()}
    samples = generate(runner, 4)                       # the flow run outside a training step
    assert samples.shape == (4, 1, 16, 16)
    z = runner.raw["enc"](_batches()[0])
    with torch.no_grad():
        vq(z)                                            # training mode, no gradient
    vq.eval()
    vq(z)                                                # eval mode, with a gradient
    vq.train()
    vq(z.detach())                                       # a frozen encoder: z carries no gradient
    assert all(torch.equal(before[k], v) for k, v in vq.state_dict().items())
    assert vq.reports == {}
    logs = runner.step({"x": _batches()[0]})
    assert not torch.equal(before["codebook"], vq.codebook)
    assert not any(b.requires_grad for b in vq.buffers())
    assert set(logs) == {"rec.loss", "commit.loss", "vq.perplexity", "vq.usage"}
    assert 1 <= float(logs["vq.perplexity"]) <= 64 and 0 < float(logs["vq.usage"]) <= 1


def test_resume_continues_the_codebook_bitwise(tmp_path):
    overrides = [f"train.batch={BATCH}", "train.steps=4", "train.threads=1"]
    straight = api.runner(VQVAE, overrides, cpu=True)
    for _ in range(4):
        straight.step()
    first = Trainer(api.runner(VQVAE, overrides, cpu=True), tmp_path / "run", quiet=True)
    first.runner.step(), first.runner.step()
    first.checkpoint()
    first.release()
    resumed = Trainer(api.runner(VQVAE, overrides, cpu=True), tmp_path / "run", resume=True, quiet=True).runner
    assert resumed.step_count == 2
    while resumed.step_count < 4:
        resumed.step()
    a, b = checkpoint.module_tensors(straight), checkpoint.module_tensors(resumed)
    assert {"vq.codebook", "vq.cluster_size", "vq.embed_sum"} <= set(a) and a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a), [k for k in a if not torch.equal(a[k], b[k])]


def test_vqvae_graph_trains_a_few_steps(tmp_path):
    results = api.train(VQVAE, tmp_path, TINY_RUN, quiet=True)
    assert results["step"] == 2 and 0 < results["paired.l1"] < 2
    assert json.loads((tmp_path / "eval.json").read_text()) == results
    logs = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert all({"rec.loss", "commit.loss", "vq.perplexity", "vq.usage"} <= set(row) for row in logs)
