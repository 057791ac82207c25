"""The per-tenant weighted fair queue (start-time fair queuing)."""

from __future__ import annotations

from collections import Counter

from mesh.router.fairqueue import FairQueue


def drain(q: FairQueue) -> list:
    out = []
    while (item := q.pop()) is not None:
        out.append(item)
    return out


def test_a_flooding_tenant_does_not_push_a_later_tenant_behind_its_backlog():
    q: FairQueue[str] = FairQueue()
    for i in range(6):
        q.push("a", f"a{i}")
    q.push("b", "b0")
    q.push("b", "b1")
    # b arrived last but alternates with a's backlog instead of waiting behind it.
    assert drain(q) == ["a0", "b0", "a1", "b1", "a2", "a3", "a4", "a5"]


def test_service_follows_the_weights():
    q: FairQueue[str] = FairQueue()
    for i in range(30):
        q.push("gold", f"g{i}", weight=2)
        q.push("free", f"f{i}", weight=1)
    first = [q.pop() for _ in range(30)]
    counts = Counter(item[0] for item in first)
    assert counts == {"g": 20, "f": 10}


def test_fifo_within_a_tenant():
    q: FairQueue[int] = FairQueue()
    for i in range(5):
        q.push("a", i)
    assert drain(q) == [0, 1, 2, 3, 4]


def test_an_idle_tenant_earns_no_credit():
    q: FairQueue[str] = FairQueue()
    for i in range(10):
        q.push("b", f"b{i}")
    for _ in range(8):
        q.pop()
    for i in range(4):
        q.push("a", f"a{i}")  # a was idle while b was served: it gets no burst for that
    # a starts at the current virtual time: served next, then alternating, never 4 in a row.
    assert drain(q) == ["a0", "b8", "a1", "b9", "a2", "a3"]


def test_bounded_per_tenant_and_in_total():
    q: FairQueue[int] = FairQueue(max_per_tenant=2, max_total=3)
    assert q.push("a", 1) and q.push("a", 2)
    assert not q.push("a", 3)  # a's own bound
    assert q.push("b", 4)
    assert not q.push("c", 5)  # the queue's bound
    assert len(q) == 3 and q.num_queued("a") == 2


def test_removed_requests_do_not_count_against_their_tenant():
    q: FairQueue[str] = FairQueue()
    items = [f"a{i}" for i in range(4)]
    for item in items:
        q.push("a", item)
    assert q.remove(items[1]) and q.remove(items[2]) and not q.remove("zz")
    q.push("b", "b0")
    assert drain(q) == ["a0", "b0", "a3"]
    assert len(q) == 0
