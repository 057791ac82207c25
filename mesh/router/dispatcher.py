"""Which worker gets a request, and how many each has in flight.

`acquire` places a request (placement.py: load with prefix affinity) among the registry's
workers in rotation and counts it in flight until `release`. When every worker of the model
is saturated (in flight >= capacity), the request waits in the model's per-tenant fair
queue (fairqueue.py) until a slot frees, up to a deadline, then gets 503 with Retry-After.
A slot frees on `release`, and when a worker enters rotation or grows its capacity (the
monitor calls `dispatch_all`).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

from mesh.errors import Unavailable
from mesh.router.fairqueue import FairQueue
from mesh.router.placement import Placer
from mesh.router.registry import WorkerHandle, WorkerRegistry


@dataclass(slots=True, eq=False)
class _Waiter:
    hashes: Sequence[bytes]
    future: asyncio.Future[WorkerHandle]


class Dispatcher:
    def __init__(
        self,
        registry: WorkerRegistry,
        placer: Placer | None = None,
        *,
        max_queued_per_tenant: int = 256,
        max_queued: int = 4096,
    ) -> None:
        self._registry = registry
        self.placer = placer or Placer()
        self._max_queued_per_tenant = max_queued_per_tenant
        self._max_queued = max_queued
        self._queues: dict[str, FairQueue[_Waiter]] = {}
        self.counters: Counter[str] = Counter()  # queued, queue_timeouts, queue_full, failovers

    def pick(
        self, model: str, exclude: Iterable[str] = (), hashes: Sequence[bytes] = ()
    ) -> WorkerHandle | None:
        """Where a request would go now (placement.py); counts nothing in flight."""
        placement = self.placer.choose(self._registry.candidates(model, exclude), hashes)
        return None if placement is None else placement.worker  # type: ignore[return-value]

    async def acquire(
        self,
        model: str,
        *,
        timeout: float,
        tenant: str = "",
        weight: float = 1.0,
        hashes: Sequence[bytes] = (),
        exclude: Iterable[str] = (),
        wait: bool = True,
    ) -> WorkerHandle | None:
        """A worker for one request, counted in flight until `release`; None when no worker
        in rotation serves the model. With `wait` (a first attempt), a request that finds
        every worker saturated waits its fair turn up to `timeout` s (raises Unavailable
        after it or when the queue is full); without (a failover), it goes to a worker at
        once."""
        candidates = self._registry.candidates(model, exclude)
        if not candidates:
            return None
        queue = self._queues.get(model)
        if not wait or (not queue and any(w.has_room for w in candidates)):
            return self._take(candidates, hashes)
        queue = self._queues.setdefault(
            model, FairQueue(max_per_tenant=self._max_queued_per_tenant, max_total=self._max_queued)
        )
        waiter = _Waiter(hashes, asyncio.get_running_loop().create_future())
        if not queue.push(tenant, waiter, weight=weight):
            self.counters["queue_full"] += 1
            raise self._saturated(model, "its queue is full")
        self.counters["queued"] += 1
        self._dispatch(model)
        try:
            async with asyncio.timeout(timeout):
                return await waiter.future
        except BaseException as exc:
            fut = waiter.future
            if fut.done() and not fut.cancelled():
                self.release(fut.result())  # granted just as we gave up
            else:
                fut.cancel()
                queue.remove(waiter)
            if isinstance(exc, TimeoutError):
                self.counters["queue_timeouts"] += 1
                raise self._saturated(model, f"no slot freed within {timeout:.0f}s") from None
            raise

    def release(self, worker: WorkerHandle) -> None:
        worker.num_in_flight -= 1
        self.dispatch_all()

    @contextlib.contextmanager
    def lease(self, worker: WorkerHandle) -> Iterator[WorkerHandle]:
        """Counts `worker` in flight for the block (callers that chose it themselves)."""
        worker.num_in_flight += 1
        try:
            yield worker
        finally:
            self.release(worker)

    def queued(self, model: str) -> int:
        queue = self._queues.get(model)
        return len(queue) if queue else 0

    def stats(self) -> dict[str, object]:
        return {
            **self.placer.stats(),
            **self.counters,
            "queued_now": {m: len(q) for m, q in self._queues.items() if len(q)},
        }

    def dispatch_all(self) -> None:
        """Grants what waits wherever a slot may have freed (a release, a worker back)."""
        for model, queue in self._queues.items():
            if queue:
                self._dispatch(model)

    def close(self) -> None:
        """Cancels every waiting request (shutdown)."""
        for queue in self._queues.values():
            while (waiter := queue.pop()) is not None:
                waiter.future.cancel()

    def _take(self, candidates: list[WorkerHandle], hashes: Sequence[bytes]) -> WorkerHandle:
        placement = self.placer.choose(candidates, hashes)
        assert placement is not None  # candidates is not empty
        worker: WorkerHandle = placement.worker  # type: ignore[assignment]
        worker.num_in_flight += 1
        self.placer.record(placement, hashes)
        return worker

    def _dispatch(self, model: str) -> None:
        """Grants queued requests of `model` while a worker has room (fair order)."""
        queue = self._queues.get(model)
        while queue:
            with_room = [w for w in self._registry.candidates(model) if w.has_room]
            if not with_room:
                return
            waiter = queue.pop()
            if waiter is None or waiter.future.done():
                continue
            waiter.future.set_result(self._take(with_room, waiter.hashes))

    def _saturated(self, model: str, why: str) -> Unavailable:
        capacity = sum(w.capacity for w in self._registry.candidates(model)) or 1
        retry_after = min(30, 1 + self.queued(model) // capacity)
        return Unavailable(
            f"Every worker serving '{model}' is busy and {why}; retry in {retry_after}s.",
            code="model_overloaded",
            param="model",
            retry_after=retry_after,
        )
