"""Vector quantisation (van den Oord et al. 2017, "Neural Discrete Representation Learning").

`VectorQuantizer` maps each D-vector of an encoder output to its nearest of K codebook entries.
Gradients pass straight through (the decoder's gradient at the quantised z is copied to the
encoder's z), the commitment loss β·‖z − sg(e)‖² pulls the encoder towards its codes, and the
codebook follows its assigned encoder outputs by exponential moving averages (the paper's
appendix A.1; Razavi et al. 2019, eq. 6), with Laplace-smoothed cluster sizes so that an unused
code never divides by zero. The codebook is state, not parameters: no optimizer owns it.
"""
from __future__ import annotations

import torch
import torch.distributed as dist
from torch import nn

from composer.ranges import Fraction, NonNegative


class VectorQuantizer(nn.Module):
    """z [B, D, ...] → (quantised z [B, D, ...], codes [B, ...] int64, commitment [B]).

    Each vector along dim 1 is replaced by its nearest code (squared Euclidean distance); the
    quantised output is z + sg(e − z), so the decoder's gradient reaches the encoder unchanged
    (the straight-through estimator). `commitment` is β · mean ‖z − sg(e)‖² per sample, the term
    to minimise (objective `minimise`). In training mode, when z carries a gradient (a forward the
    encoder is trained through: not generation, evaluation or a frozen encoder), the codebook
    moves after the codes are chosen, once per such forward (never under torch.no_grad):

        N_k ← γ N_k + (1 − γ) n_k            m_k ← γ m_k + (1 − γ) Σ_{z → k} z
        Ñ_k = (N_k + ε) / (Σ N + K ε) · Σ N  e_k = m_k / Ñ_k

    with decay γ, K = `codes`, ε = `epsilon`. The codebook starts as N(0, 1) draws, with N = 1
    and m = e (so an unused code stays where it is). With `restart` > 0, a code whose N falls below
    it (fewer than `restart` vectors a batch, on average) is dead: after the update it moves onto
    one of the batch's encoder vectors farthest from their codes (as Jukebox's random restarts,
    Dhariwal et al. 2020, but deterministic); 0, the paper's algorithm, never restarts. Buffers
    `codebook`, `cluster_size`, `embed_sum` are saved with checkpoints. `reports` holds the
    codebook usage of the last forward that updated the codebook (empty after any other), which
    training logs as `MODULE.perplexity` (exp of the entropy of the batch's code frequencies: K
    when all K codes are used equally) and `MODULE.usage` (the fraction of the K codes used).
    Under several processes the counts and sums are summed over them (and restarts drawn from the
    global batch), so every process keeps the same codebook, that of one process on the global batch.

    Example: `{block: VectorQuantizer, codes: 64, dim: 8}`
    """

    def __init__(self, *, codes: int, dim: int, beta: NonNegative = 0.25, decay: Fraction = 0.99,
                 epsilon: NonNegative = 1e-5, restart: NonNegative = 0.0):
        super().__init__()
        if codes < 1 or dim < 1:
            raise ValueError(f"codes={codes}, dim={dim}; expected positive sizes")
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"decay={decay}; expected 0 <= decay < 1")
        if restart < 0:
            raise ValueError(f"restart={restart}; expected a count >= 0 (0: never)")
        self.codes, self.dim, self.beta, self.decay, self.epsilon = codes, dim, beta, decay, epsilon
        self.restart = restart
        codebook = torch.randn(codes, dim)
        self.register_buffer("codebook", codebook)
        self.register_buffer("cluster_size", torch.ones(codes))
        self.register_buffer("embed_sum", codebook.clone())
        self.reports: dict[str, torch.Tensor] = {}

    def forward(self, z: torch.Tensor):
        flat = z.movedim(1, -1).reshape(-1, self.dim)                       # [N, D]
        codes = self.nearest(flat.detach())                                 # [N]
        e = self.codebook[codes].view(*z.shape[:1], *z.shape[2:], self.dim).movedim(-1, 1)
        commitment = self.beta * (z - e.detach()).pow(2).reshape(z.shape[0], -1).mean(1)
        quantized = z + (e - z).detach()
        self.reports = {}
        if self.training and z.requires_grad and torch.is_grad_enabled() and not z.is_meta:
            counts = torch.bincount(codes, minlength=self.codes).to(self.cluster_size.dtype)
            self.update(flat.detach(), codes, counts)
            if self.restart:
                self.restart_dead(flat.detach(), (flat - e.movedim(1, -1).reshape(-1, self.dim)).detach())
            self.reports = usage(counts)
        return quantized, codes.view(z.shape[:1] + z.shape[2:]), commitment

    def nearest(self, flat: torch.Tensor) -> torch.Tensor:
        """The index of the nearest code of each row of `flat` [N, D]."""
        e = self.codebook
        distances = flat.pow(2).sum(1, keepdim=True) - 2 * flat @ e.t() + e.pow(2).sum(1)
        return distances.argmin(1)

    @torch.no_grad()
    def update(self, flat: torch.Tensor, codes: torch.Tensor, counts: torch.Tensor) -> None:
        """One EMA step of the codebook towards the mean of the vectors assigned to each code."""
        sums = torch.zeros_like(self.embed_sum).index_add_(0, codes, flat.to(self.embed_sum.dtype))
        for total in (counts, sums):        # several processes: the codes of the global batch
            _all_reduce(total)
        self.cluster_size.mul_(self.decay).add_(counts, alpha=1 - self.decay)
        self.embed_sum.mul_(self.decay).add_(sums, alpha=1 - self.decay)
        n = self.cluster_size.sum()
        smoothed = (self.cluster_size + self.epsilon) / (n + self.codes * self.epsilon) * n
        self.codebook.copy_(self.embed_sum / smoothed.unsqueeze(1))


    @torch.no_grad()
    def restart_dead(self, flat: torch.Tensor, error: torch.Tensor) -> None:
        """Dead codes (EMA cluster size below `restart`) move to the batch's vectors farthest from
        their codes, the farthest to the lowest-numbered dead code; their state restarts (N = 1,
        m = e). Deterministic (no RNG) and without a host sync."""
        flat, error = _all_gather(flat), _all_gather(error)                # the global batch
        k = min(self.codes, flat.shape[0])
        far = flat[error.pow(2).sum(1).topk(k).indices]                     # [k, D]
        dead = self.cluster_size < self.restart
        rank = dead.long().cumsum(0) - 1
        dead = (dead & (rank < k)).unsqueeze(1)
        new = far[rank.clamp(0, k - 1)].to(self.codebook.dtype)
        self.codebook.copy_(torch.where(dead, new, self.codebook))
        self.embed_sum.copy_(torch.where(dead, new, self.embed_sum))
        self.cluster_size.copy_(torch.where(dead.squeeze(1), torch.ones_like(self.cluster_size), self.cluster_size))


def _world() -> int:
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def _all_reduce(tensor: torch.Tensor) -> None:
    if _world() > 1:
        dist.all_reduce(tensor)


def _all_gather(tensor: torch.Tensor) -> torch.Tensor:
    """The tensor of every process, concatenated in rank order (each process's batch as large)."""
    if _world() == 1:
        return tensor
    parts = [torch.empty_like(tensor) for _ in range(_world())]
    dist.all_gather(parts, tensor.contiguous())
    return torch.cat(parts)


def usage(counts: torch.Tensor) -> dict[str, torch.Tensor]:
    """Perplexity and the fraction of codes used, from one batch's code counts [K]."""
    p = counts / counts.sum()
    entropy = -(p * torch.log(p.clamp_min(1e-10))).sum()
    return {"perplexity": entropy.exp(), "usage": (counts > 0).float().mean()}
