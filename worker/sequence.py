"""Sequence: the state of one request inside the engine."""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from enum import Enum, auto
from typing import TYPE_CHECKING

import torch

from worker.sampling_params import SamplingParams

if TYPE_CHECKING:
    from worker.grammar import Matcher


class SequenceStatus(Enum):
    WAITING = auto()  # queued, no slot yet
    RUNNING = auto()  # holds a slot: prefilling (chunk by chunk) or decoding
    FINISHED = auto()


class FinishReason(Enum):
    STOP = "stop"  # EOS token or a stop string
    LENGTH = "length"  # max_tokens or the context window
    CANCELLED = "cancelled"  # aborted by the caller


@dataclass(slots=True, eq=False)
class Sequence:
    request_id: str
    prompt_ids: list[int]
    params: SamplingParams
    max_tokens: int  # resolved: never past the context window
    tenant: str = ""
    num_system_tokens: int = 0
    output_ids: list[int] = field(default_factory=list)
    status: SequenceStatus = SequenceStatus.WAITING
    slot: int | None = None
    num_computed: int = 0  # tokens whose K/V sit in the slot's cache
    num_cached: int = 0  # prompt tokens copied from the prefix cache
    num_reasoning_tokens: int = 0  # output tokens inside <think> (thinking models)
    finish_reason: FinishReason | None = None
    # Seeded requests own their generator: no other request ever draws from it.
    generator: torch.Generator | None = None
    output_counts: Counter[int] = field(default_factory=Counter)  # for penalties
    arrival_time: float = field(default_factory=time.monotonic)
    scheduled_at: float | None = None  # time.monotonic() of its first prefill step (tracing)
    index: int = 0  # the choice (n > 1: the sequences of one request share its id)
    matcher: Matcher | None = None  # its place in params.grammar (constrained decoding)
    # n > 1: the other choices, waiting for this one's prompt; forked when it is computed
    forks: list[Sequence] = field(default_factory=list)
    _prompt_ids_tensor: torch.Tensor | None = None  # repetition_penalty: the prompt's ids

    def __post_init__(self) -> None:
        if self.params.seed is not None and self.generator is None:
            # choice i of a seeded request draws from seed + i
            self.generator = torch.Generator().manual_seed(self.params.seed + self.index)

    @property
    def num_prompt_tokens(self) -> int:
        return len(self.prompt_ids)

    @property
    def num_output_tokens(self) -> int:
        return len(self.output_ids)

    @property
    def num_tokens(self) -> int:
        return len(self.prompt_ids) + len(self.output_ids)

    @property
    def num_uncomputed_prompt_tokens(self) -> int:
        return max(len(self.prompt_ids) - self.num_computed, 0)

    @property
    def is_prefilling(self) -> bool:
        return self.num_computed < len(self.prompt_ids)

    @property
    def is_finished(self) -> bool:
        return self.status is SequenceStatus.FINISHED

    @property
    def last_token_id(self) -> int:
        return self.output_ids[-1] if self.output_ids else self.prompt_ids[-1]

    def seen_token_ids(self) -> torch.Tensor:
        """The distinct ids of the prompt and output so far (repetition_penalty)."""
        if self._prompt_ids_tensor is None:
            self._prompt_ids_tensor = torch.tensor(sorted(set(self.prompt_ids)), dtype=torch.long)
        if not self.output_counts:
            return self._prompt_ids_tensor
        output = torch.tensor(list(self.output_counts), dtype=torch.long)
        return torch.cat([self._prompt_ids_tensor, output]).unique()

    def append_token(self, token_id: int) -> None:
        self.output_ids.append(token_id)
        self.output_counts[token_id] += 1
