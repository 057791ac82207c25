"""Placement: chained prefix hashes, the LRU prefix index, and load vs affinity scoring."""

from __future__ import annotations

import random
from dataclasses import dataclass

from mesh.pb import common_pb2, worker_pb2
from mesh.router.placement import CHUNK_CHARS, Placer, PrefixIndex, prefix_hashes, request_hashes


@dataclass
class W:
    address: str
    load: int = 0
    capacity: int = 8

    @property
    def has_room(self) -> bool:
        return self.load < self.capacity


SYSTEM = "".join(f"Rule {i}: be precise and polite. " for i in range(60))  # ~2000 chars


def chat(text: str, tenant: str = "acme", model: str = "m") -> worker_pb2.GenerateRequest:
    return worker_pb2.GenerateRequest(
        model=model,
        tenant=tenant,
        chat=worker_pb2.ChatPrompt(
            messages=[
                common_pb2.ChatMessage(role="system", content=SYSTEM),
                common_pb2.ChatMessage(role="user", content=text),
            ]
        ),
    )


def test_hashes_are_chained_over_full_chunks():
    a = prefix_hashes("x" * CHUNK_CHARS * 3 + "tail")
    b = prefix_hashes("x" * CHUNK_CHARS * 3 + "other tail that is short")
    assert len(a) == 3 and a == b  # the partial last chunk is not hashed
    c = prefix_hashes("x" * CHUNK_CHARS + "y" * CHUNK_CHARS + "x" * CHUNK_CHARS)
    # same first chunk; the third chunk's text equals a's, but its chained hash does not
    assert c[0] == a[0] and c[1] != a[1] and c[2] != a[2]
    assert prefix_hashes("short") == []


def test_hashes_are_per_tenant_and_model():
    assert request_hashes(chat("hi"))[:3] == request_hashes(chat("bye"))[:3]
    assert request_hashes(chat("hi"))[0] != request_hashes(chat("hi", tenant="other"))[0]
    assert request_hashes(chat("hi"))[0] != request_hashes(chat("hi", model="m2"))[0]


def test_index_matches_the_longest_leading_run_per_worker():
    index = PrefixIndex()
    h = prefix_hashes("abcd" * CHUNK_CHARS)  # 4 chunks
    index.record(h[:4], "w1")
    index.record(h[:2], "w2")
    assert index.match(h) == {"w1": 4, "w2": 2}
    other = prefix_hashes("zzzz" * CHUNK_CHARS)
    assert index.match(other) == {}
    index.forget("w1")
    assert index.match(h) == {"w2": 2}


def test_index_is_bounded_lru():
    index = PrefixIndex(max_entries=5)
    old = prefix_hashes("a" * CHUNK_CHARS * 3)
    index.record(old, "w1")
    index.record(prefix_hashes("b" * CHUNK_CHARS * 4), "w2")
    assert len(index) == 5
    assert index.match(old) == {}  # its first chunk was evicted: no leading match left


def test_affinity_wins_at_equal_load_and_is_counted():
    placer = Placer(rng=random.Random(1))
    workers = [W("w1"), W("w2"), W("w3")]
    hashes = request_hashes(chat("question 0"))
    first = placer.choose(workers, hashes)
    placer.record(first, hashes)
    for i in range(1, 20):
        h = request_hashes(chat(f"question {i}"))
        p = placer.choose(workers, h)
        placer.record(p, h)
        assert p.worker is first.worker and p.affinity
    assert placer.affinity_hits[first.worker.address] == 19
    assert sum(placer.placements.values()) == 20


def test_a_much_busier_affinity_worker_loses_to_load():
    placer = Placer(rng=random.Random(2))
    busy, idle = W("busy", load=6), W("idle", load=0)
    hashes = request_hashes(chat("q"))
    placer.index.record(hashes, "busy")
    p = placer.choose([busy, idle], hashes)
    assert p.worker is idle and p.overridden and not p.affinity
    assert placer.affinity_overridden["idle"] == 1
    # slightly busier (2/8 more) still keeps the conversation
    busy.load = 2
    assert placer.choose([busy, idle], hashes).worker is busy


def test_saturated_workers_are_passed_over_while_another_has_room():
    placer = Placer()
    full, free = W("full", load=8), W("free", load=7)
    hashes = request_hashes(chat("q"))
    placer.index.record(hashes, "full")
    assert placer.choose([full, free], hashes).worker is free


def test_without_prefix_the_least_loaded_wins():
    placer = Placer()
    workers = [W("a", load=3), W("b", load=1), W("c", load=2)]
    assert placer.choose(workers, []).worker.address == "b"
    assert placer.choose([], []) is None
