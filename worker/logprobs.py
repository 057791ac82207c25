"""Log-probabilities of sampled tokens (OpenAI `logprobs` / `top_logprobs`).

What the values are: log_softmax over the vocabulary of the logits the sampler chooses from,
after logit_bias, the presence / frequency / repetition penalties and the grammar mask, and
before temperature, top-k, top-p and min-p (vLLM's default, "processed logits" without the
sampling transforms). So a greedy answer's tokens have the highest logprob at each step, and
a token the grammar forbids has none (it is never among the alternatives).

Computed only for the rows of a batch that ask, after the token is chosen.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import torch

from mesh.pb import common_pb2

# What a logprob of -inf (a token the mask refused: never chosen, but be safe) is sent as:
# JSON has no -inf. vLLM sends the same.
MIN_LOGPROB = -9999.0


@dataclass(slots=True, frozen=True)
class TokenLogprobs:
    """One position: the chosen token's logprob and the best alternatives, best first."""

    token_id: int
    logprob: float
    top: tuple[tuple[int, float], ...] = ()


def compute(
    logits: torch.Tensor, rows: Sequence[int], chosen: Sequence[int], top_ks: Sequence[int]
) -> list[TokenLogprobs]:
    """logits [B, V] (processed, see above); for each of `rows`, its chosen token id and how
    many alternatives (0-20) -> one TokenLogprobs per row, in `rows` order."""
    logprobs = torch.log_softmax(logits[list(rows)].float(), dim=-1)  # [k, V]
    chosen_ids = torch.tensor(list(chosen), dtype=torch.long, device=logprobs.device)
    chosen_lp = logprobs.gather(1, chosen_ids.unsqueeze(1)).squeeze(1).tolist()
    k_max = max(top_ks, default=0)
    top_vals: list[list[float]] = [[] for _ in rows]
    top_ids: list[list[int]] = [[] for _ in rows]
    if k_max:
        values, ids = logprobs.topk(k_max, dim=-1)
        top_vals, top_ids = values.tolist(), ids.tolist()
    out = []
    for i, token_id in enumerate(chosen):
        top = tuple(
            (tid, lp)
            for tid, lp in zip(top_ids[i][: top_ks[i]], top_vals[i][: top_ks[i]], strict=True)
            if lp != float("-inf")  # fewer allowed tokens than asked for: list only those
        )
        out.append(TokenLogprobs(token_id, max(chosen_lp[i], MIN_LOGPROB), top))
    return out


class _Decoder(Protocol):
    def decode(self, ids: Sequence[int], skip_special_tokens: bool = True) -> str: ...


class TokenTexts:
    """A token id -> its text (the tokenizer's decode of that one token, special tokens
    included; may be part of a UTF-8 character) and its exact bytes."""

    def __init__(self, tokenizer: _Decoder, token_bytes: Sequence[bytes] | None = None) -> None:
        self._tokenizer = tokenizer
        self._bytes = token_bytes

    def text(self, token_id: int) -> str:
        return self._tokenizer.decode([token_id], skip_special_tokens=False)

    def emitted(self, token_id: int) -> tuple[str, bytes]:
        """What a sampled token adds to the output text, which skips special tokens (an
        end-of-turn token sampled under ``ignore_eos`` adds nothing): its text and bytes,
        so the chosen tokens of a response join to exactly its text."""
        shown = self._tokenizer.decode([token_id], skip_special_tokens=True)
        if not shown and self.text(token_id):
            return "", b""
        return shown, self.bytes(token_id)

    def bytes(self, token_id: int) -> bytes:
        if self._bytes is not None and 0 <= token_id < len(self._bytes):
            return self._bytes[token_id]
        return self.text(token_id).encode("utf-8", "surrogatepass")


def to_pb(entries: Sequence[TokenLogprobs], texts: TokenTexts) -> list[common_pb2.TokenLogprob]:
    """The chosen token as the output shows it (a special token: empty, its id kept);
    the alternatives with their own text, special tokens included."""
    return [
        common_pb2.TokenLogprob(
            token=(shown := texts.emitted(entry.token_id))[0],
            logprob=entry.logprob,
            bytes=shown[1],
            token_id=entry.token_id,
            top_logprobs=[
                common_pb2.TopLogprob(
                    token=texts.text(tid), logprob=lp, bytes=texts.bytes(tid), token_id=tid
                )
                for tid, lp in entry.top
            ],
        )
        for entry in entries
    ]
