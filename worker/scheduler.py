"""Continuous batching: who prefills (chunked, under a token budget) and who decodes.

Two limits shape a step's prefill (the engine runs all of its chunks in one forward):
max_prefill_tokens bounds the step's prompt tokens, so a burst of short prompts (16 chat
prompts of ~132 tokens) gets its first tokens after one forward; max_prefill_chunk bounds one
sequence's chunk while others are decoding, so a long prompt delays running streams by one
short forward per step instead of one long one (alone, it is prefilled in as few as the budget
allows).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from worker.sequence import FinishReason, Sequence, SequenceStatus
from worker.slots import SlotTable

# padding_groups: a prefill row may be padded by up to PAD_SLACK tokens, about what one more
# forward costs (SmolLM2-135M, 2 CPU threads: ~45 ms fixed per forward, ~0.3 ms per token).
PAD_SLACK = 128


@dataclass(slots=True)
class PrefillChunk:
    seq: Sequence
    start: int  # first prompt position computed by this chunk
    end: int  # one past the last

    @property
    def token_ids(self) -> list[int]:
        return self.seq.prompt_ids[self.start : self.end]

    @property
    def is_last(self) -> bool:
        """The chunk reaches the prompt's end, so its logits give the first output token."""
        return self.end == self.seq.num_prompt_tokens


@dataclass(slots=True)
class ScheduledBatch:
    prefills: list[PrefillChunk] = field(default_factory=list)
    decodes: list[Sequence] = field(default_factory=list)
    aborted: list[Sequence] = field(default_factory=list)

    @property
    def is_empty(self) -> bool:
        return not (self.prefills or self.decodes or self.aborted)

    @property
    def num_prefill_tokens(self) -> int:
        return sum(chunk.end - chunk.start for chunk in self.prefills)


class Scheduler:
    def __init__(
        self,
        num_slots: int,
        max_prefill_tokens: int,
        enable_prefix_reuse: bool = True,
        max_prefill_chunk: int | None = None,
    ) -> None:
        """max_prefill_chunk: None: no per-sequence bound below max_prefill_tokens."""
        self.slots = SlotTable(num_slots, enable_prefix_reuse)
        self.max_prefill_tokens = max_prefill_tokens
        self.max_prefill_chunk = max_prefill_chunk or max_prefill_tokens
        self.waiting: deque[Sequence] = deque()
        self.running: list[Sequence] = []
        self._aborted: list[Sequence] = []

    @property
    def num_waiting(self) -> int:
        return len(self.waiting)

    @property
    def num_running(self) -> int:
        return len(self.running)

    def has_unfinished(self) -> bool:
        return bool(self.waiting or self.running or self._aborted)

    def add(self, seq: Sequence) -> None:
        seq.status = SequenceStatus.WAITING
        self.waiting.append(seq)

    def abort(self, request_id: str) -> Sequence | None:
        """Frees the request's slots now (every choice of it, forks not yet made included);
        each sequence is reported once in the next batch. -> the first one (None: unknown)."""
        seqs = [s for s in (*self.running, *self.waiting) if s.request_id == request_id]
        for seq in seqs:
            if seq.status is SequenceStatus.WAITING:
                self.waiting.remove(seq)
                seq.status = SequenceStatus.FINISHED
                seq.finish_reason = FinishReason.CANCELLED
            else:
                self.finish(seq, FinishReason.CANCELLED)
            self._aborted.append(seq)
            for fork in seq.forks:  # never scheduled: reported as cancelled too
                fork.status, fork.finish_reason = SequenceStatus.FINISHED, FinishReason.CANCELLED
                self._aborted.append(fork)
            seq.forks = []
        return seqs[0] if seqs else None

    def fork(self, parent: Sequence, child: Sequence) -> bool:
        """n > 1, once parent's prompt is computed: child runs from a copy of its K/V when a
        slot is free (-> True: it samples its first token from parent's logits); else it
        waits first in line and is admitted like any prompt (the prefix cache then copies
        the prompt's K/V from the parent, or from its freed slot)."""
        if not self.slots.can_allocate():
            self.waiting.appendleft(child)
            return False
        self.slots.fork(parent, child)
        child.status = SequenceStatus.RUNNING
        self.running.append(child)
        return True

    def finish(self, seq: Sequence, reason: FinishReason) -> None:
        seq.status = SequenceStatus.FINISHED
        seq.finish_reason = reason
        self.running.remove(seq)
        self.slots.free(seq)

    def schedule(self) -> ScheduledBatch:
        batch = ScheduledBatch(aborted=self._aborted)
        self._aborted = []
        # decode: every running sequence past its prompt, one token each
        batch.decodes = [seq for seq in self.running if not seq.is_prefilling]
        # prefill: unfinished prompts first (oldest first), then admit waiting ones
        budget = self.max_prefill_tokens
        chunk = self.max_prefill_chunk if batch.decodes else budget
        for seq in self.running:
            if budget and seq.is_prefilling:
                budget -= self._add_chunk(batch, seq, min(budget, chunk))
        while budget and self.waiting and self.slots.can_allocate():
            seq = self.waiting.popleft()
            self.slots.allocate(seq)
            seq.status = SequenceStatus.RUNNING
            self.running.append(seq)
            budget -= self._add_chunk(batch, seq, min(budget, chunk))
        return batch

    @staticmethod
    def _add_chunk(batch: ScheduledBatch, seq: Sequence, limit: int) -> int:
        start = seq.num_computed
        end = min(seq.num_prompt_tokens, start + limit)
        batch.prefills.append(PrefillChunk(seq, start, end))
        return end - start


def padding_groups(lengths: list[int]) -> list[list[int]]:
    """Splits prefill rows (by index) into forwards: `prefill_batch` pads every row to the
    longest, so a row joins a group when it is at most PAD_SLACK tokens shorter than the
    group's longest. Prompts of similar length (a burst of chat requests) make one forward; a
    512-token chunk and a 20-token prompt make two. Each group in index order."""
    groups: list[list[int]] = []
    longest = 0
    for i in sorted(range(len(lengths)), key=lambda i: -lengths[i]):
        n = lengths[i]
        if groups and longest - n <= PAD_SLACK:
            groups[-1].append(i)
        else:
            groups.append([i])
            longest = n
    return [sorted(group) for group in groups]
