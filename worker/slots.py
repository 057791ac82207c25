"""SlotTable: which KV-cache slot each sequence holds, and what a free slot still caches.

A slot keeps its K/V after its sequence finishes. When a new sequence of the same tenant
starts with tokens whose K/V some slot already holds, they are not computed again: the free
slot holding the longest such prefix is taken and keeps them in place, and a running
sequence holding a longer one has them copied over (positions a running sequence has
computed never change). So a tenant's shared system prompt is prefilled once, even while every slot is busy.
Copies are queued here and run by the engine before the step's forward (`take_copies`).
"""

from __future__ import annotations

from dataclasses import dataclass

from worker.sequence import Sequence


@dataclass(slots=True)
class _Cached:
    tenant: str
    token_ids: list[int]  # tokens whose K/V the slot holds, positions 0..n-1


@dataclass(frozen=True, slots=True)
class PrefixCopy:
    """Copy K/V positions 0..length-1 of slot src into slot dst."""

    src: int
    dst: int
    length: int


class SlotTable:
    def __init__(self, num_slots: int, enable_prefix_reuse: bool = True) -> None:
        self.num_slots = num_slots
        self._free: list[int] = list(range(num_slots))
        self._cached: dict[int, _Cached] = {}  # free slot -> what it still holds
        self._active: dict[int, Sequence] = {}  # slot in use -> its sequence
        self._copies: list[PrefixCopy] = []
        self._enable_prefix_reuse = enable_prefix_reuse

    @property
    def num_free(self) -> int:
        return len(self._free)

    @property
    def num_used(self) -> int:
        return self.num_slots - len(self._free)

    def can_allocate(self) -> bool:
        return bool(self._free)

    def allocate(self, seq: Sequence) -> int:
        """Gives seq a slot; returns how many prompt tokens it need not compute (kept in
        place, or copied in by a queued PrefixCopy)."""
        slot, num_reused = self._best_slot(seq)
        self._free.remove(slot)
        self._cached.pop(slot, None)
        donor, length = self._best_running_donor(seq)
        self._active[slot] = seq
        if length > num_reused:
            self._copies.append(PrefixCopy(donor, slot, length))
            num_reused = length
        seq.slot = slot
        seq.num_computed = seq.num_cached = num_reused
        return num_reused

    def fork(self, parent: Sequence, child: Sequence) -> None:
        """n > 1: gives `child` a free slot holding a copy of parent's computed K/V (its
        prompt, just prefilled), queued like a prefix copy. Needs a free slot."""
        slot = self._coldest_free_slot()
        self._free.remove(slot)
        self._cached.pop(slot, None)
        self._active[slot] = child
        assert parent.slot is not None  # the parent runs: it has a slot
        self._copies.append(PrefixCopy(parent.slot, slot, parent.num_computed))
        child.slot = slot
        child.num_computed = parent.num_computed
        child.num_cached = 0  # computed once, for the parent: not a cache hit

    def take_copies(self) -> list[PrefixCopy]:
        """The copies queued since the last call, in order (a later one may read what an
        earlier one wrote): run them before the next forward."""
        copies, self._copies = self._copies, []
        return copies

    def free(self, seq: Sequence) -> None:
        if seq.slot is None:
            return
        self._active.pop(seq.slot, None)
        if self._enable_prefix_reuse and seq.num_computed:
            self._cached[seq.slot] = _Cached(seq.tenant, _computed_tokens(seq))
        # freed slots go to the back: recently used prefixes survive longest
        self._free.append(seq.slot)
        seq.slot = None

    def _best_slot(self, seq: Sequence) -> tuple[int, int]:
        best_slot, best_len = self._coldest_free_slot(), 0
        if not self._enable_prefix_reuse:
            return best_slot, 0
        for slot in self._free:
            cached = self._cached.get(slot)
            if cached is None or cached.tenant != seq.tenant:
                continue
            length = _common_prefix_length(cached.token_ids, seq.prompt_ids, _limit(seq))
            if length > best_len:
                best_slot, best_len = slot, length
        return best_slot, best_len

    def _best_running_donor(self, seq: Sequence) -> tuple[int, int]:
        """The slot of the running sequence of seq's tenant holding the longest prefix of
        seq's prompt, and that length (0: none). Free slots need no look: the one holding
        the longest prefix is the one seq just took."""
        best_slot, best_len = -1, 0
        if not self._enable_prefix_reuse:
            return best_slot, best_len
        for slot, other in self._active.items():
            if other.tenant != seq.tenant or not other.num_computed:
                continue
            length = _common_prefix_length(_computed_tokens(other), seq.prompt_ids, _limit(seq))
            if length > best_len:
                best_slot, best_len = slot, length
        return best_slot, best_len

    def _coldest_free_slot(self) -> int:
        # prefer a slot that caches nothing, else the one freed longest ago
        empty = [s for s in self._free if s not in self._cached]
        return empty[0] if empty else self._free[0]


def _limit(seq: Sequence) -> int:
    # keep at least one prompt token to compute: its logits give the first output token
    return seq.num_prompt_tokens - 1


def _computed_tokens(seq: Sequence) -> list[int]:
    """The tokens whose K/V seq's slot holds, positions 0..num_computed-1."""
    if seq.num_computed <= seq.num_prompt_tokens:
        return seq.prompt_ids[: seq.num_computed]
    return (seq.prompt_ids + seq.output_ids)[: seq.num_computed]


def _common_prefix_length(a: list[int], b: list[int], limit: int) -> int:
    n = min(len(a), len(b), limit)
    if a[:n] == b[:n]:  # the common case for a shared prefix: one C-speed comparison
        return n
    lo, hi = 0, n  # a[:lo] == b[:lo] and a[:hi] != b[:hi]
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if a[lo:mid] == b[lo:mid]:
            lo = mid
        else:
            hi = mid
    return lo
