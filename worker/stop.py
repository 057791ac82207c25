"""When a sequence stops: EOS, max_tokens, and stop strings split across tokens.

For a thinking model the checker also owns the sequence's ReasoningSplitter: each decoded
delta is split into hidden reasoning and answer text first, and stop strings are matched
against the answer text only (a stop string inside `<think>` does not end the answer).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import NamedTuple, Protocol

from worker.reasoning import ReasoningSplitter
from worker.sequence import FinishReason


class Detokenizer(Protocol):
    def add(self, token_id: int) -> str: ...


class StopStrings:
    """Streams text, holding back any tail that could be the start of a stop string.

    The stop string itself (and anything after it) is never emitted.
    """

    def __init__(self, stop: Iterable[str]) -> None:
        self._stop = tuple(s for s in stop if s)
        self._held = ""

    def feed(self, text: str) -> tuple[str, bool]:
        """Returns (text safe to emit, whether a stop string was hit)."""
        buffer = self._held + text
        cut = self._first_stop_index(buffer)
        if cut is not None:
            self._held = ""
            return buffer[:cut], True
        keep = self._partial_tail_length(buffer)
        self._held = buffer[len(buffer) - keep :]
        return buffer[: len(buffer) - keep], False

    def flush(self) -> str:
        """The held-back text, once no stop string can complete any more."""
        held, self._held = self._held, ""
        return held

    def _first_stop_index(self, buffer: str) -> int | None:
        hits = [i for i in (buffer.find(s) for s in self._stop) if i >= 0]
        return min(hits) if hits else None

    def _partial_tail_length(self, buffer: str) -> int:
        longest = 0
        for stop in self._stop:
            for k in range(min(len(stop) - 1, len(buffer)), longest, -1):
                if buffer.endswith(stop[:k]):
                    longest = k
                    break
        return longest


class Emitted(NamedTuple):
    """What one token releases: answer text, reasoning text, and the finish reason if any."""

    text: str
    reasoning: str
    finish_reason: FinishReason | None


class StopChecker:
    """Per sequence: turns each new token into (text to emit, finish reason or None)."""

    def __init__(
        self,
        detokenizer: Detokenizer,
        stop: Iterable[str],
        eos_token_ids: Iterable[int],
        ignore_eos: bool,
        max_tokens: int,
        reasoning: ReasoningSplitter | None = None,
    ) -> None:
        self._detokenizer = detokenizer
        self._strings = StopStrings(stop)
        self._eos_token_ids = frozenset(() if ignore_eos else eos_token_ids)
        self._max_tokens = max_tokens
        self.reasoning = reasoning

    @property
    def reasoning_tokens(self) -> int:
        return self.reasoning.reasoning_tokens if self.reasoning is not None else 0

    def add(self, token_id: int, num_output_tokens: int) -> tuple[str, FinishReason | None]:
        """num_output_tokens counts token_id itself. Reasoning text (if any) is dropped here:
        use `step` to get it."""
        out = self.step(token_id, num_output_tokens)
        return out.text, out.finish_reason

    def step(self, token_id: int, num_output_tokens: int) -> Emitted:
        """num_output_tokens counts token_id itself."""
        if token_id in self._eos_token_ids:  # the EOS text is not emitted
            reasoning, answer = self._split_flush()
            text, hit_stop = self._strings.feed(answer)
            return Emitted(
                text if hit_stop else text + self._strings.flush(), reasoning, FinishReason.STOP
            )
        piece = self._detokenizer.add(token_id)
        reasoning, answer = self._split(piece)
        text, hit_stop = self._strings.feed(answer)
        if hit_stop:
            return Emitted(text, reasoning, FinishReason.STOP)
        if num_output_tokens >= self._max_tokens:
            more_reasoning, more_answer = self._split_flush()
            more, hit_stop = self._strings.feed(more_answer)
            text += more if hit_stop else more + self._strings.flush()
            return Emitted(
                text,
                reasoning + more_reasoning,
                FinishReason.STOP if hit_stop else FinishReason.LENGTH,
            )
        return Emitted(text, reasoning, None)

    def _split(self, piece: str) -> tuple[str, str]:
        if self.reasoning is None:
            return "", piece
        return self.reasoning.feed(piece, 1)

    def _split_flush(self) -> tuple[str, str]:
        if self.reasoning is None:
            return "", ""
        return self.reasoning.flush()
