"""SlotTable: which KV-cache slot each sequence holds, and what a free slot still caches.

A slot keeps its K/V after its sequence finishes. When a new sequence of the same tenant
starts with the same tokens, taking that slot skips recomputing the shared prefix.
"""

from __future__ import annotations

from dataclasses import dataclass

from worker.sequence import Sequence


@dataclass(slots=True)
class _Cached:
    tenant: str
    token_ids: list[int]  # tokens whose K/V the slot holds, positions 0..n-1


class SlotTable:
    def __init__(self, num_slots: int, enable_prefix_reuse: bool = True) -> None:
        self.num_slots = num_slots
        self._free: list[int] = list(range(num_slots))
        self._cached: dict[int, _Cached] = {}  # free slot -> what it still holds
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
        """Gives seq a slot; returns how many prompt tokens it already caches."""
        slot, num_reused = self._best_slot(seq)
        self._free.remove(slot)
        self._cached.pop(slot, None)
        seq.slot = slot
        seq.num_computed = seq.num_cached = num_reused
        return num_reused

    def free(self, seq: Sequence) -> None:
        if seq.slot is None:
            return
        if self._enable_prefix_reuse and seq.num_computed:
            computed = (seq.prompt_ids + seq.output_ids)[: seq.num_computed]
            self._cached[seq.slot] = _Cached(seq.tenant, computed)
        # freed slots go to the back: recently used prefixes survive longest
        self._free.append(seq.slot)
        seq.slot = None

    def _best_slot(self, seq: Sequence) -> tuple[int, int]:
        best_slot, best_len = self._coldest_free_slot(), 0
        if not self._enable_prefix_reuse:
            return best_slot, 0
        # keep at least one prompt token to compute: its logits give the first output token
        limit = seq.num_prompt_tokens - 1
        for slot in self._free:
            cached = self._cached.get(slot)
            if cached is None or cached.tenant != seq.tenant:
                continue
            length = _common_prefix_length(cached.token_ids, seq.prompt_ids, limit)
            if length > best_len:
                best_slot, best_len = slot, length
        return best_slot, best_len

    def _coldest_free_slot(self) -> int:
        # prefer a slot that caches nothing, else the one freed longest ago
        empty = [s for s in self._free if s not in self._cached]
        return empty[0] if empty else self._free[0]


def _common_prefix_length(a: list[int], b: list[int], limit: int) -> int:
    n = min(len(a), len(b), limit)
    for i in range(n):
        if a[i] != b[i]:
            return i
    return n
