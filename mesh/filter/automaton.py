"""Rule sequences compiled into one automaton walked once over the hits.

A :class:`ConceptSequence` is "a concept from this set, then within ``gap``
words one from that set, then ...". For every (sequence, step) the automaton
keeps one *slot*: the position of the latest hit where the prefix up to that
step matched, plus where the match started. A hit advances step k of a
sequence when slot k-1 was filled at most ``gaps[k-1]`` positions before it;
step 0 always (re)starts, unless a blocker concept was seen just before.

Each hit touches only the :class:`Step` entries of its concept set, precomputed
per set and ordered later steps first, so one token never advances two steps
of the same sequence. Cost: O(hits x entries per set), linear in the input.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import accumulate
from typing import NamedTuple

from .hits import Hit, Stream, from_hits
from .lexicon_index import Concepts

BLOCK_GAP = 2  # a blocker concept this close before step 0 cancels the start
_VIABLE_CACHE_MAX = 4096


@dataclass(frozen=True, slots=True)
class ConceptSequence:
    """Concept sets in order; ``gaps[i]`` bounds the distance from step i to i+1."""

    steps: tuple[Concepts, ...]
    gaps: tuple[float, ...]
    # Concepts that, seen just before step 0, cancel it (e.g. "I" in "I ignored").
    unless: Concepts = frozenset()


@dataclass(frozen=True, slots=True)
class SeqMatch:
    seq_index: int
    start: float
    end: float
    via: str  # the first non-empty "via" of the hits that made the match
    first_token: str
    last_token: str


class Step(NamedTuple):
    """What one concept set does to one step of one sequence.

    A tuple so the walk unpacks it in one C-level operation.
    """

    slot: int  # index of (sequence, step) in the automaton's state lists
    step: int
    gap: float  # max distance from the previous step (0 for step 0)
    last: bool  # completing this step completes the sequence
    unless: tuple[str, ...]  # blockers (step 0 only matters)
    group: int  # the rule: one match per rule is reported
    seq_index: int


class SequenceSet:
    """Compiled automata for many sequences; :meth:`run_stream` is linear in the hits.

    Once a group (a rule) has matched, its sequences are dropped: one match per
    rule is all we report, and inputs stuffed with attack words stop costing work.

    Before the walk, sequences that cannot match (a step none of whose concepts
    occurs in the hits) are dropped, and hits that feed none of the remaining
    sequences are filtered out with a C-level pass. Floods of a few known words
    therefore cost a set operation, not a walk.
    """

    def __init__(
        self, sequences: Sequence[ConceptSequence], groups: Sequence[int] | None = None
    ) -> None:
        self.sequences = list(sequences)
        self.groups = list(groups) if groups is not None else list(range(len(self.sequences)))
        by_concept: dict[str, list[tuple[int, int]]] = {}  # concept → (sequence, step)
        for si, seq in enumerate(self.sequences):
            for step, concepts in enumerate(seq.steps):
                for c in concepts:
                    by_concept.setdefault(c, []).append((si, step))
        self._by_concept = by_concept
        # Slot of (sequence si, step k) is _first_slot[si] + k.
        self._first_slot = list(accumulate((len(s.steps) for s in self.sequences), initial=0))
        self._steps_cache: dict[Concepts, list[Step]] = {}
        self._viable_cache: dict[frozenset[Concepts], tuple[frozenset[int], frozenset[str]]] = {}

    def _steps(self, concepts: Concepts) -> list[Step]:
        """The steps a hit with these concepts may advance, later steps first."""
        steps = self._steps_cache.get(concepts)
        if steps is None:
            pairs = {p for c in concepts for p in self._by_concept.get(c, ())}
            ordered = sorted(pairs, key=lambda p: -p[1])
            steps = self._steps_cache[concepts] = [self._step(si, k) for si, k in ordered]
        return steps

    def _step(self, si: int, k: int) -> Step:
        seq = self.sequences[si]
        return Step(
            slot=self._first_slot[si] + k,
            step=k,
            gap=seq.gaps[k - 1] if k else 0.0,
            last=k == len(seq.steps) - 1,
            unless=tuple(seq.unless),
            group=self.groups[si],
            seq_index=si,
        )

    def _viable(self, present_sets: frozenset[Concepts]) -> tuple[frozenset[int], frozenset[str]]:
        """Sequences whose every step has a present concept, and their blockers."""
        found = self._viable_cache.get(present_sets)
        if found is None:
            present = frozenset().union(*present_sets)
            seqs = frozenset(
                si
                for si, s in enumerate(self.sequences)
                if all(not step.isdisjoint(present) for step in s.steps)
            )
            blockers = frozenset().union(*(self.sequences[si].unless for si in seqs))
            found = (seqs, blockers)
            if len(self._viable_cache) < _VIABLE_CACHE_MAX:
                self._viable_cache[present_sets] = found
        return found

    def _table(
        self, present_sets: frozenset[Concepts], active: frozenset[int]
    ) -> dict[Concepts, list[Step]]:
        """Steps per present concept set, for the viable sequences only."""
        return {cs: [s for s in self._steps(cs) if s.seq_index in active] for cs in present_sets}

    def run(self, hits: Iterable[Hit]) -> list[SeqMatch]:
        return self.run_stream(from_hits(hits))

    def run_stream(self, stream: Stream) -> list[SeqMatch]:
        """One match per group that matches, in the order they complete."""
        if not stream.tok:
            return []
        present_sets = frozenset(stream.con)
        active, blockers = self._viable(present_sets)
        if not active:
            return []
        table = self._table(present_sets, active)
        live = sum(map(len, table.values()))  # steps left in ``table``
        # Blocker concepts each concept set carries (only those are remembered).
        # (Only sets that carry one: with none, the walk skips this bookkeeping.)
        watch = {cs: b for cs in present_sets if (b := tuple(cs & blockers))} if blockers else {}
        relevant = {cs for cs in present_sets if table[cs] or watch.get(cs)}
        if len(relevant) < len(present_sets):
            # Hits of the other sets change nothing in the walk: drop them when that
            # saves more than the copy costs.
            keep = bytes(map(relevant.__contains__, stream.con))
            if keep.count(0) * 4 > len(keep):
                stream = stream.select(keep)
        return self._walk(stream, table, live, watch)

    def _walk(
        self,
        stream: Stream,
        table: dict[Concepts, list[Step]],
        live: int,
        watch: dict[Concepts, tuple[str, ...]],
    ) -> list[SeqMatch]:
        """The hot loop: plain locals and tuple unpacking, no attribute lookups per hit.

        Each concept set's steps are planned (see :func:`_plan`): the later steps first,
        then the starts, which in the common case (no blocker seen yet, no match in this
        hit) are plain stores of this hit into their slots.
        """
        nslots = self._first_slot[-1]
        # Per slot, for the latest prefix match: the position of its last hit, and
        # where it started (position, via, first token).
        at: list[float | None] = [None] * nslots
        origin: list[tuple[float, str, str] | None] = [None] * nslots
        done: set[int] = set()  # groups that matched
        pruned = 0  # len(done) when ``table`` was last pruned
        matched: list[SeqMatch] = []
        last_seen: dict[str, float] = {}  # blocker concept → its latest position
        # The latest of them: no start further than BLOCK_GAP after it can be blocked.
        recent = -math.inf
        plans: dict[Concepts, Plan] = {}
        # Hits are made lazily: a walk that stops early never builds the rest.
        for pos, token, concepts, via in zip(
            stream.pos, stream.tok, stream.con, stream.vias(), strict=False
        ):
            plan = plans.get(concepts)
            if plan is None:  # planned on first use: many sets never recur after a match
                plan = plans[concepts] = _plan(table[concepts])
            advance, starts, start_slots, start_unless = plan
            for slot, gap, last, group, si in advance:
                prev = at[slot - 1]
                if prev is None or not 0 < pos - prev <= gap or group in done:
                    continue
                p_start, p_via, p_first = origin[slot - 1]
                at[slot] = pos
                origin[slot] = (p_start, p_via or via, p_first)
                if last:
                    done.add(group)
                    matched.append(SeqMatch(si, p_start, pos, p_via or via, p_first, token))
            if starts:
                if (
                    start_slots is not None
                    and len(done) == pruned
                    and not (start_unless and pos - recent <= BLOCK_GAP)
                ):
                    new_origin = (pos, via, token)  # shared by every sequence this hit starts
                    for slot in start_slots:
                        at[slot] = pos
                        origin[slot] = new_origin
                else:  # blockers to check, a one-step sequence, or a match in this hit
                    new_origin = None
                    for slot, _step, _gap, last, unless, group, si in starts:
                        if group in done:
                            continue
                        if unless and last_seen and _blocked(pos, unless, last_seen):
                            continue
                        if new_origin is None:
                            new_origin = (pos, via, token)
                        at[slot] = pos
                        origin[slot] = new_origin
                        if last:
                            done.add(group)
                            matched.append(SeqMatch(si, pos, pos, via, token, token))
            if len(done) != pruned:  # a rule matched: drop its sequences
                live -= _drop_groups(table, done, plans)
                pruned = len(done)
                if not live:
                    break  # nothing left that could match
            if watch:
                for c in watch.get(concepts, ()):
                    last_seen[c] = pos
                    recent = max(recent, pos)
        return matched


Plan = tuple[
    tuple[tuple[int, float, bool, int, int], ...],  # later steps: slot, gap, last, group, seq
    tuple[Step, ...],  # step 0 entries
    tuple[int, ...] | None,  # their slots, None when one completes a sequence
    bool,  # whether any of them has blockers
]


def _plan(steps: list[Step]) -> Plan:
    """A concept set's steps, split for the walk (same order: later steps come first)."""
    advance, starts, slots = [], [], []
    ends = blockers = False
    for s in steps:
        if s.step:
            advance.append((s.slot, s.gap, s.last, s.group, s.seq_index))
        else:
            starts.append(s)
            slots.append(s.slot)
            ends = ends or s.last
            blockers = blockers or bool(s.unless)
    return tuple(advance), tuple(starts), None if ends else tuple(slots), blockers


def _drop_groups(
    table: dict[Concepts, list[Step]], done: set[int], plans: dict[Concepts, Plan]
) -> int:
    """Remove the steps of matched groups from ``table`` (and forget their plans); return
    how many went.

    Only the lists holding steps of a matched group change, rebuilt as new lists
    (the walk may be iterating over one of them).
    """
    dropped = 0
    for cs, steps in table.items():
        if steps and any(s.group in done for s in steps):
            kept = [s for s in steps if s.group not in done]
            dropped += len(steps) - len(kept)
            table[cs] = kept
            plans.pop(cs, None)
    return dropped


def _blocked(pos: float, unless: tuple[str, ...], last_seen: dict[str, float]) -> bool:
    return any(0 < pos - last_seen.get(c, -1e9) <= BLOCK_GAP for c in unless)
