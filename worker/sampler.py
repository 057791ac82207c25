"""Batched next-token choice: penalties, greedy/temperature, top-k, top-p, seeded draws."""

from __future__ import annotations

from collections.abc import Sequence as SequenceOf

import torch

from worker.sequence import Sequence


class Sampler:
    """Picks one token per row of logits.

    Randomness comes from the exponential-race trick (argmax of probs / Exp(1) noise is a
    draw from probs), so each row's noise can come from its own generator: a seeded
    request draws only from its own torch.Generator; unseeded rows share the worker's.
    """

    def __init__(self, seed: int | None = None) -> None:
        self._generator = torch.Generator()
        if seed is None:
            self._generator.seed()
        else:
            self._generator.manual_seed(seed)

    @torch.inference_mode()
    def __call__(self, logits: torch.Tensor, seqs: SequenceOf[Sequence]) -> list[int]:
        # logits: [B, V] float32, one row per sequence
        logits = logits.float().clone()
        apply_penalties(logits, seqs)
        greedy_ids = logits.argmax(dim=-1)  # [B]
        if all(seq.params.is_greedy for seq in seqs):
            return greedy_ids.tolist()
        probs = self._probs(logits, seqs)
        noise = self._exponential_noise(probs, seqs)
        sampled_ids = (probs / noise).argmax(dim=-1)  # [B]
        is_greedy = torch.tensor([s.params.is_greedy for s in seqs], device=logits.device)
        return torch.where(is_greedy, greedy_ids, sampled_ids).tolist()

    def _probs(self, logits: torch.Tensor, seqs: SequenceOf[Sequence]) -> torch.Tensor:
        temps = [s.params.temperature or 1.0 for s in seqs]  # greedy rows: unused
        logits = logits / torch.tensor(temps, device=logits.device).unsqueeze(1)
        top_k = [s.params.top_k for s in seqs]
        top_p = [s.params.top_p for s in seqs]
        if any(top_k) or any(p < 1.0 for p in top_p):
            logits = apply_top_k_top_p(logits, top_k, top_p)
        return torch.softmax(logits, dim=-1)

    def _exponential_noise(self, probs: torch.Tensor, seqs: SequenceOf[Sequence]) -> torch.Tensor:
        # Drawn on the CPU (where the generators live), one row per sequence: [B, V]
        noise = torch.empty(probs.shape, dtype=torch.float32)
        unseeded = [i for i, s in enumerate(seqs) if s.generator is None]
        if unseeded:
            rows = torch.empty((len(unseeded), probs.shape[1]))
            noise[unseeded] = rows.exponential_(generator=self._generator)
        for i, seq in enumerate(seqs):
            if seq.generator is not None:
                noise[i].exponential_(generator=seq.generator)
        return noise.to(probs.device)


def apply_penalties(logits: torch.Tensor, seqs: SequenceOf[Sequence]) -> None:
    """OpenAI presence/frequency penalties over the tokens generated so far, in place."""
    for row, seq in enumerate(seqs):
        if not (seq.params.has_penalties and seq.output_counts):
            continue
        token_ids = torch.tensor(list(seq.output_counts.keys()), device=logits.device)
        counts = torch.tensor(list(seq.output_counts.values()), device=logits.device)
        penalty = seq.params.frequency_penalty * counts + seq.params.presence_penalty
        logits[row, token_ids] -= penalty.to(logits.dtype)


def apply_top_k_top_p(logits: torch.Tensor, top_k: list[int], top_p: list[float]) -> torch.Tensor:
    """Masks to -inf what top-k (0: off) and top-p (1: off) exclude, per row."""
    vocab_size = logits.shape[1]
    sorted_logits, sorted_ids = logits.sort(dim=-1, descending=True)  # [B, V]
    ks = torch.tensor([k if 0 < k < vocab_size else vocab_size for k in top_k])
    ranks = torch.arange(vocab_size)
    drop = (ranks.unsqueeze(0) >= ks.unsqueeze(1)).to(logits.device)  # [B, V]
    sorted_logits = sorted_logits.masked_fill(drop, float("-inf"))
    sorted_probs = torch.softmax(sorted_logits, dim=-1)
    mass_before = sorted_probs.cumsum(dim=-1) - sorted_probs
    # keep tokens until the mass before them reaches p; the top token always stays
    ps = torch.tensor([p if p < 1.0 else float("inf") for p in top_p], device=logits.device)
    ps = ps.unsqueeze(1)
    sorted_logits = sorted_logits.masked_fill(mass_before >= ps, float("-inf"))
    return torch.empty_like(logits).scatter_(-1, sorted_ids, sorted_logits)
