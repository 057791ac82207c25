"""What the engine hands back per step, per request."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from worker.logprobs import TokenLogprobs
from worker.sequence import FinishReason, Sequence


@dataclass(slots=True, frozen=True)
class Usage:
    prompt_tokens: int  # includes system_tokens
    completion_tokens: int  # tokens actually generated (EOS included)
    system_tokens: int
    cached_tokens: int
    reasoning_tokens: int = 0  # part of completion_tokens (as OpenAI counts them)

    @classmethod
    def of(cls, seq: Sequence) -> Usage:
        return cls(
            prompt_tokens=seq.num_prompt_tokens,
            completion_tokens=seq.num_output_tokens,
            system_tokens=seq.num_system_tokens,
            cached_tokens=seq.num_cached,
            reasoning_tokens=seq.num_reasoning_tokens,
        )

    @classmethod
    def of_choices(cls, seqs: Iterable[Sequence]) -> Usage:
        """n > 1: the prompt once (as the first choice computed it), the outputs summed."""
        seqs = list(seqs)
        first = seqs[0]
        return cls(
            prompt_tokens=first.num_prompt_tokens,
            completion_tokens=sum(s.num_output_tokens for s in seqs),
            system_tokens=first.num_system_tokens,
            cached_tokens=first.num_cached,
            reasoning_tokens=sum(s.num_reasoning_tokens for s in seqs),
        )


@dataclass(slots=True)
class StepOutput:
    request_id: str
    text: str  # new text since the previous output (whole characters)
    num_tokens: int  # new tokens this output covers
    finish_reason: FinishReason | None = None
    usage: Usage | None = None  # set on the last output
    scheduled_at: float | None = None  # last output: when the sequence was first scheduled
    reasoning_text: str = ""  # new hidden reasoning text (thinking models)
    index: int = 0  # the choice (n > 1); usage comes with the request's last output only
    logprobs: list[TokenLogprobs] = field(default_factory=list)  # params.logprobs: per token

    @property
    def is_finished(self) -> bool:
        return self.finish_reason is not None

    def merge(self, later: StepOutput) -> None:
        """Folds a later delta into this one (a slow consumer gets one message)."""
        self.text += later.text
        self.reasoning_text += later.reasoning_text
        self.num_tokens += later.num_tokens
        self.logprobs += later.logprobs
        self.finish_reason = later.finish_reason or self.finish_reason
        self.usage = later.usage or self.usage
        self.scheduled_at = later.scheduled_at or self.scheduled_at
