"""Which worker gets a request: load, with prefix affinity.

Like the Kubernetes inference gateway's prefix-cache scorer, the router hashes the prompt
text in fixed-size chunks (256 characters), each hash chained to the previous one, so
chunk i's hash stands for the whole prefix up to it. An LRU map remembers, per chunk hash,
the workers that were last sent that prefix. A worker's *match* is the number of leading
chunks it holds; the worker keeps KV for recent prompts of the same tenant (worker/slots.py),
so sending a shared prefix (same conversation, same system prompt) back there skips the
prefill.

Score per candidate (higher wins, ties at random):

    score = affinity_weight * matched_chunks / prompt_chunks  -  utilisation

where utilisation = max(router in-flight, worker-reported running + waiting) / capacity.
So a full match is worth `affinity_weight` (0.5) of utilisation: the affinity worker keeps
the conversation unless it is more than half its capacity busier than another candidate.
Saturated workers (in-flight >= capacity) are passed over while any candidate has room.
Hashes are seeded with the model and the tenant: the worker never shares cached prefixes
across tenants, so neither does affinity.
"""

from __future__ import annotations

import hashlib
import logging
import random
from collections import Counter, OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

from mesh.pb import worker_pb2

log = logging.getLogger(__name__)

CHUNK_CHARS = 256
MAX_CHUNKS = 128  # 32k characters: longer prompts are matched on their first 32k
DEFAULT_INDEX_SIZE = 100_000  # chunk hashes remembered (LRU)
WORKERS_PER_HASH = 4  # most recent workers remembered per chunk


class Placeable(Protocol):
    address: str

    @property
    def capacity(self) -> int: ...
    @property
    def load(self) -> int:
        """Sequences on the worker: router in-flight or worker-reported, whichever is more."""

    @property
    def has_room(self) -> bool:
        """Router in-flight below capacity (exact and immediate, unlike reported load)."""


def prompt_text(request: worker_pb2.GenerateRequest) -> str:
    """The text affinity hashes: the messages in order (role and content), or the raw prompt."""
    if request.WhichOneof("input") == "chat":
        return "".join(f"<{m.role}|{m.name}>{m.content}\x1e" for m in request.chat.messages)
    return request.prompt


def prefix_hashes(
    text: str, *, seed: str = "", chunk_chars: int = CHUNK_CHARS, max_chunks: int = MAX_CHUNKS
) -> list[bytes]:
    """Chained hashes of the full `chunk_chars` chunks of `text` (a partial last chunk is not
    hashed: it is the part most likely to differ between requests)."""
    out: list[bytes] = []
    prev = hashlib.blake2b(seed.encode(), digest_size=16).digest()
    num = min(len(text) // chunk_chars, max_chunks)
    for i in range(num):
        chunk = text[i * chunk_chars : (i + 1) * chunk_chars]
        prev = hashlib.blake2b(prev + chunk.encode(), digest_size=16).digest()
        out.append(prev)
    return out


def request_hashes(request: worker_pb2.GenerateRequest) -> list[bytes]:
    return prefix_hashes(prompt_text(request), seed=f"{request.model}\x1f{request.tenant}")


class PrefixIndex:
    """LRU map chunk hash -> the workers (most recent last) that were sent that prefix."""

    def __init__(self, max_entries: int = DEFAULT_INDEX_SIZE) -> None:
        self._max = max_entries
        self._map: OrderedDict[bytes, list[str]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._map)

    def match(self, hashes: Sequence[bytes]) -> dict[str, int]:
        """Worker address -> number of leading chunks it holds."""
        matched: dict[str, int] = {}
        alive: set[str] | None = None
        for i, h in enumerate(hashes):
            holders = self._map.get(h)
            if not holders:
                break
            alive = set(holders) if alive is None else alive & set(holders)
            if not alive:
                break
            for address in alive:
                matched[address] = i + 1
        return matched

    def record(self, hashes: Sequence[bytes], address: str) -> None:
        for h in hashes:
            holders = self._map.get(h)
            if holders is None:
                self._map[h] = [address]
            else:
                if address in holders:
                    holders.remove(address)
                holders.append(address)
                del holders[:-WORKERS_PER_HASH]
                self._map.move_to_end(h)
        while len(self._map) > self._max:
            self._map.popitem(last=False)

    def forget(self, address: str) -> None:
        """A worker left for good (its cache is gone): drop it everywhere."""
        for h in [h for h, holders in self._map.items() if address in holders]:
            holders = self._map[h]
            holders.remove(address)
            if not holders:
                del self._map[h]


@dataclass(slots=True, frozen=True)
class Placement:
    worker: Placeable
    matched_chunks: int
    total_chunks: int
    affinity: bool  # the chosen worker had the longest prefix match (> 0)
    overridden: bool  # a worker had a longer match but was too busy


def utilisation(worker: Placeable) -> float:
    return worker.load / max(1, worker.capacity)


class Placer:
    def __init__(
        self,
        index: PrefixIndex | None = None,
        *,
        affinity_weight: float = 0.5,
        rng: random.Random | None = None,
    ) -> None:
        self.index = index or PrefixIndex()
        self.affinity_weight = affinity_weight
        self._rng = rng or random.Random()
        # Counters, per worker address (read by tests, logs and metrics).
        self.placements: Counter[str] = Counter()
        self.affinity_hits: Counter[str] = Counter()
        self.affinity_overridden: Counter[str] = Counter()

    def choose(self, candidates: Iterable[Placeable], hashes: Sequence[bytes]) -> Placement | None:
        pool = list(candidates)
        if not pool:
            return None
        with_room = [w for w in pool if w.has_room]
        pool = with_room or pool
        matched = self.index.match(hashes) if hashes else {}
        total = max(1, len(hashes))
        self._rng.shuffle(pool)  # random among equal scores

        def score(w: Placeable) -> float:
            return self.affinity_weight * matched.get(w.address, 0) / total - utilisation(w)

        best = max(pool, key=score)
        longest = max((matched.get(w.address, 0) for w in pool), default=0)
        got = matched.get(best.address, 0)
        placement = Placement(
            best, got, len(hashes), affinity=got > 0 and got == longest, overridden=longest > got
        )
        self._count(placement)
        return placement

    def record(self, placement: Placement, hashes: Sequence[bytes]) -> None:
        if hashes:
            self.index.record(hashes, placement.worker.address)

    def _count(self, p: Placement) -> None:
        address = p.worker.address
        self.placements[address] += 1
        if p.affinity:
            self.affinity_hits[address] += 1
        if p.overridden:
            self.affinity_overridden[address] += 1
        log.debug(
            "placed on %s (load %d/%d, prefix %d/%d chunks, %s)",
            address,
            p.worker.load,
            p.worker.capacity,
            p.matched_chunks,
            p.total_chunks,
            "affinity" if p.affinity else ("load over affinity" if p.overridden else "load"),
        )

    def stats(self) -> dict[str, dict[str, int]]:
        return {
            "placements": dict(self.placements),
            "affinity_hits": dict(self.affinity_hits),
            "affinity_overridden": dict(self.affinity_overridden),
        }
