"""Batched next-token choice: penalties, logit_bias, grammar mask, greedy/temperature,
top-k, top-p, min-p, seeded draws, and logprobs for the rows that ask.

Order per row: penalties (presence/frequency over the output, repetition over prompt and
output) -> logit_bias -> grammar mask (constrained rows) = the "processed" logits, which
greedy picks from and logprobs are taken of -> temperature -> top-k / top-p -> min-p ->
exponential-race draw. Each stage runs only when some row of the batch uses it, so a batch
of plain requests pays a few Python checks per step.
"""

from __future__ import annotations

from collections.abc import Sequence as SequenceOf

import torch

from worker import grammar, logprobs
from worker.logprobs import TokenLogprobs
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
        self._bitmask: torch.Tensor | None = None  # reused across steps (grammar rows)

    @torch.inference_mode()
    def __call__(self, logits: torch.Tensor, seqs: SequenceOf[Sequence]) -> list[int]:
        return self.sample(logits, seqs)[0]

    @torch.inference_mode()
    def sample(
        self, logits: torch.Tensor, seqs: SequenceOf[Sequence]
    ) -> tuple[list[int], list[TokenLogprobs | None]]:
        """logits: [B, V], one row per sequence -> (token ids, logprobs of the rows that ask
        for them, else None)."""
        logits = logits.float().clone()
        apply_penalties(logits, seqs)
        apply_repetition_penalty(logits, seqs)
        apply_logit_bias(logits, seqs)
        self._apply_grammar(logits, seqs)
        greedy_ids = logits.argmax(dim=-1)  # [B]
        if all(seq.params.is_greedy for seq in seqs):
            token_ids = greedy_ids.tolist()
        else:
            probs = self._probs(logits, seqs)
            noise = self._exponential_noise(probs, seqs)
            sampled_ids = (probs / noise).argmax(dim=-1)  # [B]
            is_greedy = torch.tensor([s.params.is_greedy for s in seqs], device=logits.device)
            token_ids = torch.where(is_greedy, greedy_ids, sampled_ids).tolist()
        return token_ids, _logprobs(logits, seqs, token_ids)

    def _apply_grammar(self, logits: torch.Tensor, seqs: SequenceOf[Sequence]) -> None:
        """Constrained rows: tokens their grammar refuses at this point go to -inf (EOS
        included until the grammar may end)."""
        rows = [i for i, seq in enumerate(seqs) if seq.matcher is not None]
        if not rows:
            return
        batch, vocab = logits.shape
        words = (vocab + 31) // 32
        if (
            self._bitmask is None
            or self._bitmask.shape[0] < batch
            or self._bitmask.shape[1] != words
        ):
            self._bitmask = grammar.allocate_bitmask(max(batch, 16), vocab)
        bitmask = self._bitmask[:batch]
        for row in rows:
            seqs[row].matcher.fill_bitmask(bitmask, row)  # type: ignore[union-attr]
        grammar.apply_bitmask(logits, bitmask, rows)

    def _probs(self, logits: torch.Tensor, seqs: SequenceOf[Sequence]) -> torch.Tensor:
        temps = [s.params.temperature or 1.0 for s in seqs]  # greedy rows: unused
        logits = logits / torch.tensor(temps, device=logits.device).unsqueeze(1)
        # greedy rows (top_p 0 among them) filter nothing: their draw is not used
        top_k = [s.params.top_k for s in seqs]
        top_p = [1.0 if s.params.is_greedy else s.params.top_p for s in seqs]
        if any(top_k) or any(p < 1.0 for p in top_p):
            logits = apply_top_k_top_p(logits, top_k, top_p)
        if any(s.params.min_p for s in seqs):
            logits = apply_min_p(logits, [s.params.min_p for s in seqs])
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


def _logprobs(
    logits: torch.Tensor, seqs: SequenceOf[Sequence], token_ids: list[int]
) -> list[TokenLogprobs | None]:
    rows = [i for i, seq in enumerate(seqs) if seq.params.logprobs]
    out: list[TokenLogprobs | None] = [None] * len(seqs)
    if rows:
        chosen = [token_ids[i] for i in rows]
        top_ks = [seqs[i].params.top_logprobs for i in rows]
        for row, entry in zip(rows, logprobs.compute(logits, rows, chosen, top_ks), strict=True):
            out[row] = entry
    return out


def apply_penalties(logits: torch.Tensor, seqs: SequenceOf[Sequence]) -> None:
    """OpenAI presence/frequency penalties over the tokens generated so far, in place."""
    for row, seq in enumerate(seqs):
        if not (seq.params.has_penalties and seq.output_counts):
            continue
        token_ids = torch.tensor(list(seq.output_counts.keys()), device=logits.device)
        counts = torch.tensor(list(seq.output_counts.values()), device=logits.device)
        penalty = seq.params.frequency_penalty * counts + seq.params.presence_penalty
        logits[row, token_ids] -= penalty.to(logits.dtype)


def apply_repetition_penalty(logits: torch.Tensor, seqs: SequenceOf[Sequence]) -> None:
    """HF / vLLM repetition penalty, in place: the logit of every token seen in the prompt or
    the output is divided by the penalty when positive, multiplied by it when negative."""
    for row, seq in enumerate(seqs):
        penalty = seq.params.repetition_penalty
        if penalty == 1.0:
            continue
        ids = seq.seen_token_ids().to(logits.device)
        ids = ids[ids < logits.shape[1]]
        seen = logits[row, ids]
        logits[row, ids] = torch.where(seen > 0, seen / penalty, seen * penalty)


def apply_logit_bias(logits: torch.Tensor, seqs: SequenceOf[Sequence]) -> None:
    """OpenAI logit_bias, in place: each listed token's logit gets its bias added."""
    for row, seq in enumerate(seqs):
        if not seq.params.logit_bias:
            continue
        ids, biases = zip(*seq.params.logit_bias, strict=True)
        logits[row, list(ids)] += torch.tensor(biases, dtype=logits.dtype, device=logits.device)


def apply_min_p(logits: torch.Tensor, min_p: list[float]) -> torch.Tensor:
    """Masks to -inf the tokens whose probability is below min_p (0: off) times the row's
    most likely token's: log p_i < log p_max + log min_p, the same on logits."""
    ratio = torch.tensor(min_p, device=logits.device).unsqueeze(1)
    threshold = logits.max(dim=-1, keepdim=True).values + torch.log(ratio)  # min_p 0: -inf
    return logits.masked_fill(logits < threshold, float("-inf"))


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
