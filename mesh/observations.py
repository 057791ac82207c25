"""A tiny in-memory time series the router feeds: one record per request, worker snapshots,
tenant budget ratios. Alerts (`mesh.alerts`) and the console (`mesh.console.data`) read it.

Bounded twice: records older than `retention_s` are dropped, and at most `max_records` are
kept (the oldest go first), so memory stays flat under any load. Longer history belongs to
Prometheus. Single-threaded by design: feed and read it from the router's event loop.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass


@dataclass(slots=True, frozen=True)
class RequestSample:
    """One finished request. `status` is the HTTP-equivalent code ("200", "429", "503")."""

    t: float  # unix seconds, when it finished
    model: str
    tenant: str
    status: str
    ttft_s: float | None = None
    duration_s: float | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    reasoning_tokens: int = 0
    cost_eur: float = 0.0
    energy_kwh: float = 0.0
    request_id: str = ""

    @property
    def is_error(self) -> bool:
        """A server-side failure (5xx); refusals (4xx) are the caller's, not an outage."""
        return self.status.isdigit() and int(self.status) >= 500


@dataclass(slots=True, frozen=True)
class WorkerSnapshot:
    t: float
    worker: str
    model: str
    running: int = 0
    waiting: int = 0
    kv_usage: float = 0.0
    up: bool = True


class Observations:
    def __init__(
        self,
        retention_s: float = 3600.0,
        max_records: int = 50_000,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.retention_s = retention_s
        self.clock = clock
        self._records: deque[RequestSample] = deque(maxlen=max_records)
        self._workers: dict[str, WorkerSnapshot] = {}
        self._down_since: dict[str, float] = {}
        self._budgets: dict[str, tuple[float, float]] = {}  # tenant -> (t, used ratio)

    # --- feeding (router) -----------------------------------------------------------------
    def record_request(self, record: RequestSample) -> None:
        self._records.append(record)
        self._prune(record.t)

    def request(self, model: str, tenant: str, status: str | int, **fields) -> RequestSample:
        """Shorthand: builds the record at `clock()` and records it."""
        rec = RequestSample(
            t=self.clock(), model=model, tenant=tenant, status=str(status), **fields
        )
        self.record_request(rec)
        return rec

    def record_worker(
        self,
        worker: str,
        model: str,
        *,
        running: int = 0,
        waiting: int = 0,
        kv_usage: float = 0.0,
        up: bool = True,
        t: float | None = None,
    ) -> None:
        t = self.clock() if t is None else t
        self._workers[worker] = WorkerSnapshot(t, worker, model, running, waiting, kv_usage, up)
        if up:
            self._down_since.pop(worker, None)
        else:
            self._down_since.setdefault(worker, t)

    def record_worker_down(self, worker: str, t: float | None = None) -> None:
        """The worker's health check or load stream failed (it stays known, as down).

        Only explicit reports count: an idle worker may push no load for a long time.
        """
        snap = self._workers.get(worker)
        t = self.clock() if t is None else t
        self._workers[worker] = WorkerSnapshot(t, worker, snap.model if snap else "", up=False)
        self._down_since.setdefault(worker, t)

    def forget_worker(self, worker: str) -> None:
        """Withdrawn on purpose (drain, scale-in): not an outage."""
        self._workers.pop(worker, None)
        self._down_since.pop(worker, None)

    def record_budget(self, tenant: str, used_ratio: float, t: float | None = None) -> None:
        self._budgets[tenant] = (self.clock() if t is None else t, used_ratio)

    # --- reading (alerts, console) --------------------------------------------------------
    def requests_since(self, since: float) -> Iterator[RequestSample]:
        """Records with t >= since, newest first."""
        for rec in reversed(self._records):  # newest first: stop at the window's start
            if rec.t < since:
                break
            yield rec

    def records(self) -> list[RequestSample]:
        return list(self._records)

    def workers(self) -> list[WorkerSnapshot]:
        return list(self._workers.values())

    def down_since(self, worker: str) -> float | None:
        return self._down_since.get(worker)

    def budgets(self) -> dict[str, tuple[float, float]]:
        return dict(self._budgets)

    def _prune(self, now: float) -> None:
        cutoff = now - self.retention_s
        while self._records and self._records[0].t < cutoff:
            self._records.popleft()
