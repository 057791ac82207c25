"""Weighted fair queuing across tenants (one queue per model).

When every worker of a model is saturated, requests wait here instead of piling up in a
worker's FIFO. The order is start-time fair queuing (SFQ): a tenant's request gets a start
tag `max(V, tenant's last finish tag)` and a finish tag `start + cost / weight`; the
request with the smallest start tag goes next and V (virtual time) moves to its start tag.
So each backlogged tenant gets service in proportion to its weight (the billing tier's
`weight`), a tenant that floods only queues behind itself, and a tenant that was idle gets
no credit for it (no burst after silence). Ties go to the earlier arrival.

Bounded: at most `max_per_tenant` waiting per tenant and `max_total` per queue; `push`
returns False beyond that (the caller answers 503 with Retry-After at once).
"""

from __future__ import annotations

import itertools
from collections import deque
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")


@dataclass(slots=True)
class _Entry(Generic[T]):
    start: float
    finish: float
    seq: int
    item: T
    cost: float
    weight: float


class FairQueue(Generic[T]):
    def __init__(self, *, max_per_tenant: int = 256, max_total: int = 4096) -> None:
        self.max_per_tenant = max_per_tenant
        self.max_total = max_total
        self._queues: dict[str, deque[_Entry[T]]] = {}
        self._finish: dict[str, float] = {}  # tenant -> finish tag of its last request
        self._where: dict[int, str] = {}  # id(item) -> tenant
        self._virtual = 0.0
        self._seq = itertools.count()
        self._len = 0

    def __len__(self) -> int:
        return self._len

    def num_queued(self, tenant: str) -> int:
        q = self._queues.get(tenant)
        return len(q) if q else 0

    def push(self, tenant: str, item: T, *, weight: float = 1.0, cost: float = 1.0) -> bool:
        if self._len >= self.max_total or self.num_queued(tenant) >= self.max_per_tenant:
            return False
        weight = max(weight, 1e-6)
        start = max(self._virtual, self._finish.get(tenant, 0.0))
        entry = _Entry(start, start + cost / weight, next(self._seq), item, cost, weight)
        self._finish[tenant] = entry.finish
        self._queues.setdefault(tenant, deque()).append(entry)
        self._where[id(item)] = tenant
        self._len += 1
        return True

    def peek(self) -> T | None:
        tenant = self._next_tenant()
        return None if tenant is None else self._queues[tenant][0].item

    def pop(self) -> T | None:
        tenant = self._next_tenant()
        if tenant is None:
            return None
        q = self._queues[tenant]
        entry = q.popleft()
        self._virtual = max(self._virtual, entry.start)
        self._forget(tenant, entry)
        return entry.item

    def remove(self, item: T) -> bool:
        """Takes a waiting item out (deadline, client gone); later requests of the same
        tenant move up by its share, so a tenant is not charged for what it never got."""
        tenant = self._where.get(id(item))
        if tenant is None:
            return False
        q = self._queues[tenant]
        index = next(i for i, e in enumerate(q) if e.item is item)
        entry = q[index]
        del q[index]
        share = entry.cost / entry.weight
        for later in itertools.islice(q, index, None):
            later.start -= share
            later.finish -= share
        self._finish[tenant] = q[-1].finish if q else max(self._virtual, entry.start)
        self._forget(tenant, entry)
        return True

    def _next_tenant(self) -> str | None:
        best: tuple[float, int] | None = None
        best_tenant = None
        for tenant, q in self._queues.items():
            head = q[0]
            key = (head.start, head.seq)
            if best is None or key < best:
                best, best_tenant = key, tenant
        return best_tenant

    def _forget(self, tenant: str, entry: _Entry[T]) -> None:
        self._where.pop(id(entry.item), None)
        self._len -= 1
        if not self._queues[tenant]:
            del self._queues[tenant]
            if self._finish.get(tenant, 0.0) <= self._virtual:
                del self._finish[tenant]  # no debt left: nothing to remember
