"""n > 1: the choices of one request, each its own Sequence sharing the prompt's K/V.

The first choice is scheduled like any request; the others ride on it (`Sequence.forks`)
until its prompt is computed, then fork: each takes a free slot holding a copy of the
prompt's K/V (worker.slots.SlotTable.fork) and samples its first token from the same logits,
so the prompt is prefilled once. With no free slot a fork waits first in line and is
admitted like a prompt, the prefix cache copying all of the prompt's K/V but its last token
from the first choice (or its freed slot): one token prefilled again, not the prompt.

Each choice draws its own random numbers (a seeded request: choice i from seed + i). Usage
comes once, with the request's last output: the prompt counted once, the outputs summed.
"""

from __future__ import annotations

from dataclasses import dataclass

from worker.errors import InvalidRequest
from worker.grammar import Matcher
from worker.outputs import Usage
from worker.sampling_params import SamplingParams
from worker.scheduler import Scheduler
from worker.sequence import Sequence


@dataclass(slots=True)
class _Group:
    seqs: list[Sequence]
    unreported: int  # choices whose last output has not gone out yet


def make_choices(
    request_id: str,
    prompt_ids: list[int],
    params: SamplingParams,
    max_tokens: int,
    tenant: str,
    num_system_tokens: int,
) -> list[Sequence]:
    """The request's n sequences, the first carrying the others as forks; each with its own
    grammar matcher when the request is constrained."""
    seqs = [
        Sequence(
            request_id,
            prompt_ids,
            params,
            max_tokens,
            tenant,
            num_system_tokens,
            index=i,
            matcher=Matcher(params.grammar) if params.grammar is not None else None,
        )
        for i in range(params.n)
    ]
    seqs[0].forks = seqs[1:]
    return seqs


def check_choices(params: SamplingParams, vocab_size: int | None, num_slots: int) -> None:
    """What only the engine can check: logit_bias ids against the vocabulary (the logits'
    width), n against the KV slots (each choice holds one while it runs)."""
    if vocab_size is not None:
        for token_id, _ in params.logit_bias:
            if token_id >= vocab_size:
                raise InvalidRequest(
                    f"logit_bias token id {token_id} is not in the vocabulary "
                    f"(ids 0..{vocab_size - 1})",
                    param="logit_bias",
                )
    if params.n > num_slots:
        raise InvalidRequest(
            f"n must be at most {num_slots} here (the worker's concurrent sequences), "
            f"got {params.n}",
            param="n",
        )


def fork_choices(scheduler: Scheduler, sampled: list[Sequence]) -> list[tuple[int, Sequence]]:
    """Forks the waiting choices of the prompts computed this step -> (row of `sampled`,
    choice) for those that got a slot: they sample their first token from that row's logits.
    The others wait first in line (see the module docstring)."""
    forked = []
    for row, seq in enumerate(sampled):
        if seq.forks and not seq.output_ids:
            for child in seq.forks:
                if scheduler.fork(seq, child):
                    forked.append((row, child))
            seq.forks = []
    return forked


class ChoiceGroups:
    """Which requests have n > 1 choices in flight, and the usage of their last output."""

    def __init__(self) -> None:
        self._groups: dict[str, _Group] = {}

    def add(self, seqs: list[Sequence]) -> None:
        if len(seqs) > 1:
            self._groups[seqs[0].request_id] = _Group(seqs, len(seqs))

    def usage_of_last(self, seq: Sequence) -> Usage | None:
        """seq's final output is going out -> the usage it carries: its own (n == 1), the
        request's summed usage when it is the last choice to report, else None."""
        group = self._groups.get(seq.request_id)
        if group is None:
            return Usage.of(seq)
        group.unreported -= 1
        if group.unreported:
            return None
        del self._groups[seq.request_id]
        return Usage.of_choices(group.seqs)

    def clear(self) -> None:
        self._groups.clear()
