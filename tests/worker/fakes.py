"""A model-free runner and tokenizer for engine and scheduler tests."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence

import torch

VOCAB = 64


def _logits_for(next_token: int) -> torch.Tensor:
    logits = torch.zeros(VOCAB)
    logits[next_token % VOCAB] = 1.0
    return logits


class FakeRunner:
    """Always predicts token (last token + 1) % VOCAB; records every call."""

    def __init__(self, num_slots: int = 4, max_model_len: int = 128) -> None:
        self.num_slots = num_slots
        self.max_model_len = max_model_len
        self.prefills: list[tuple[int, int, int]] = []  # (slot, start_pos, num_tokens) per row
        self.prefill_batches: list[list[int]] = []  # slots per prefill_batch call (one forward)
        self.decodes: list[list[int]] = []  # slots per decode call
        self.copies: list[tuple[int, int, int]] = []  # (src, dst, num_tokens) per copy_prefix

    def prefill_batch(
        self, slots: list[int], token_ids: list[list[int]], start_pos: list[int]
    ) -> torch.Tensor:
        assert len(slots) == len(token_ids) == len(start_pos) and len(set(slots)) == len(slots)
        self.prefill_batches.append(list(slots))
        self.prefills += [
            (s, p, len(t)) for s, p, t in zip(slots, start_pos, token_ids, strict=True)
        ]
        return torch.stack([_logits_for(t[-1] + 1) for t in token_ids])

    def decode(self, slots: list[int], token_ids: list[int], positions: list[int]) -> torch.Tensor:
        self.decodes.append(list(slots))
        return torch.stack([_logits_for(t + 1) for t in token_ids])

    def copy_prefix(self, src_slot: int, dst_slot: int, num_tokens: int) -> None:
        self.copies.append((src_slot, dst_slot, num_tokens))


class FakeTokenizer:
    """Token id i is the letter chr(ord('a') + i % 26); chat = the contents, one token per char."""

    eos_token_ids = (VOCAB - 1,)

    def encode(self, text: str) -> list[int]:
        return [(ord(c) - ord("a")) % 26 for c in text]

    def decode(self, ids: Sequence[int], skip_special_tokens: bool = True) -> str:
        return "".join(chr(ord("a") + i % 26) for i in ids)

    def render_chat(self, messages: list[dict], add_generation_prompt: bool = True):
        ids = [0, 0] + [t for m in messages for t in self.encode(m["content"])]
        return ids, 2


class SpyTokenizer(FakeTokenizer):
    """FakeTokenizer that records each tokenising call's thread (ident) and stands for at most
    `max_token_bytes` bytes of text per token, so the engine can refuse by size."""

    max_token_bytes = 4

    def min_tokens(self, text: str) -> int:
        return -(-len(text.encode()) // self.max_token_bytes)

    def __init__(self) -> None:
        self.calls: list[int] = []  # threading.get_ident() of each encode / render_chat

    def encode(self, text: str) -> list[int]:
        self.calls.append(threading.get_ident())
        return super().encode(text)

    def render_chat(
        self,
        messages: list[dict],
        add_generation_prompt: bool = True,
        check_size: Callable[[int, int], None] | None = None,
    ):
        if check_size is not None:  # as the real one: the size is checked before tokenising
            text = "".join(m["content"] for m in messages) + "<>"
            check_size(self.min_tokens(text), len(text.encode()))
        self.calls.append(threading.get_ident())
        return super().render_chat(messages, add_generation_prompt)


class FailingRunner(FakeRunner):
    """Its forwards raise while `failures` > 0 (each failed forward counts one down)."""

    def __init__(self, failures: int, **kwargs: int) -> None:
        super().__init__(**kwargs)
        self.failures = failures

    def _maybe_fail(self) -> None:
        if self.failures > 0:
            self.failures -= 1
            raise RuntimeError("injected: the forward failed")

    def prefill_batch(
        self, slots: list[int], token_ids: list[list[int]], start_pos: list[int]
    ) -> torch.Tensor:
        self._maybe_fail()
        return super().prefill_batch(slots, token_ids, start_pos)

    def decode(self, slots: list[int], token_ids: list[int], positions: list[int]) -> torch.Tensor:
        self._maybe_fail()
        return super().decode(slots, token_ids, positions)
