"""Whether each worker is healthy, and its live load: one probe loop and one load stream
per worker.

A worker enters rotation once its `Info` said which models it serves (and its capacity,
`max_num_seqs`) and its standard health check answers SERVING; it leaves rotation on the
first failed probe (the second in a row when they time out), failed call
(`WorkerHandle.mark_failed`), lost load stream, `draining` load report or `Withdraw`, and
comes back by itself when healthy again. An announced
worker down for `forget_after_s` is forgotten; a configured one is probed forever.

Load has one source: the worker's `WatchLoad` stream. It keeps the handle's running /
waiting / KV figures current for placement, and each probe publishes the last reported
figures to the llmaas_worker_* gauges and the alert/console observations (at the probe's
steady cadence, so a load that does not change still counts as fresh for the alerts). A
worker without `WatchLoad` is placed by the router's own in-flight count and publishes
no load.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from mesh import metrics
from mesh.observations import Observations
from mesh.pb import worker_pb2
from mesh.router.registry import WorkerHandle, WorkerRegistry

log = logging.getLogger(__name__)

LOAD_INTERVAL_MS = 200  # WatchLoad: at most one report per this interval
PROBE_TIMEOUT_S = 2.0  # the least a probe waits: a busy worker answers late, not never
# A worker in rotation survives this many probes in a row that time out (Kubernetes'
# failureThreshold): one late answer from a loaded host is not an outage. A refused
# connection or a NOT_SERVING answer takes it out at once.
LATE_PROBES_ALLOWED = 1


def _nothing(*_args: object) -> None:
    return None


class WorkerMonitor:
    def __init__(
        self,
        registry: WorkerRegistry,
        *,
        interval_s: float = 1.0,
        observations: Observations | None = None,
        load_interval_ms: int = LOAD_INTERVAL_MS,
        forget_after_s: float = 300.0,
        probe_timeout_s: float = PROBE_TIMEOUT_S,
        on_room: Callable[[], None] = _nothing,
        on_forget: Callable[[str], None] = _nothing,
    ) -> None:
        """`on_room`: a worker entered rotation or grew its capacity (queued requests may
        go now); `on_forget(address)`: a worker left for good (its cache is gone)."""
        self._registry = registry
        self._interval = interval_s
        self._probe_timeout = max(probe_timeout_s, interval_s)
        self._observations = observations
        self._load_interval_ms = load_interval_ms
        self._forget_after_s = forget_after_s
        self._on_room = on_room
        self._on_forget = on_forget
        self._tasks: dict[str, list[asyncio.Task[None]]] = {}
        self._kicks: dict[str, asyncio.Event] = {}

    def start(self) -> None:
        """Starts the probe loop and load stream of every registered worker not yet watched."""
        for handle in self._registry.workers():
            if handle.address not in self._tasks:
                self._kicks[handle.address] = asyncio.Event()
                self._tasks[handle.address] = [
                    asyncio.create_task(self._probe_loop(handle), name=f"probe {handle.address}"),
                    asyncio.create_task(self._watch_load(handle), name=f"load {handle.address}"),
                ]

    def kick(self, address: str) -> None:
        """Probe `address` now, not at the next interval (announce, lost load stream)."""
        if kick := self._kicks.get(address):
            kick.set()

    async def close(self) -> None:
        tasks = [t for ts in self._tasks.values() for t in ts]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._tasks.clear()

    async def probe(self, worker: WorkerHandle) -> None:
        timeout = self._probe_timeout
        was_in_rotation = worker.in_rotation
        try:
            # Info again after every outage: a restarted worker may serve something else.
            if not worker.is_healthy or not worker.models:
                await self._refresh_info(worker, timeout)
            healthy = await self._check_health(worker, timeout)
        except grpc.aio.AioRpcError as err:
            if self._late_but_tolerated(worker, err):
                return
            worker.mark_failed(f"{err.code().name}: {err.details()}")
            self._publish_load(worker)
            return
        worker.late_probes = 0
        if not healthy:
            worker.mark_failed("health check not SERVING")
            worker.withdrawn = False  # it went down after withdrawing: back once healthy
        elif not worker.is_healthy:
            worker.draining = False  # a fresh process (its load stream will say otherwise)
            worker.down_since = None
        worker.is_healthy = healthy
        if worker.in_rotation and not was_in_rotation:
            log.info(
                "worker %s (%s) in rotation: %s, capacity %d",
                worker.address,
                worker.worker_id,
                sorted(worker.models),
                worker.capacity,
            )
            self._on_room()
        self._publish_load(worker)

    def _late_but_tolerated(self, worker: WorkerHandle, err: grpc.aio.AioRpcError) -> bool:
        if err.code() != grpc.StatusCode.DEADLINE_EXCEEDED or not worker.in_rotation:
            return False
        worker.late_probes += 1
        if worker.late_probes > LATE_PROBES_ALLOWED:
            return False
        log.info(
            "worker %s answered no probe within %.1fs; kept in rotation",
            worker.address,
            self._probe_timeout,
        )
        return True

    async def _probe_loop(self, worker: WorkerHandle) -> None:
        kick = self._kicks[worker.address]
        while True:
            try:
                await self.probe(worker)
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - a probe must never kill the loop
                log.exception("probe of %s failed unexpectedly", worker.address)
            if self._gone_for_good(worker):
                await self._forget(worker.address)
                return
            # Next probe after the interval, or at once when kicked (announce, lost stream).
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._interval):
                    await kick.wait()
            kick.clear()

    def _gone_for_good(self, worker: WorkerHandle) -> bool:
        return (
            not worker.static
            and worker.down_since is not None
            and time.monotonic() - worker.down_since > self._forget_after_s
        )

    async def _forget(self, address: str) -> None:
        """Stops watching `address` (from its own probe loop) and drops it from the registry."""
        self._kicks.pop(address, None)
        current = asyncio.current_task()
        for task in self._tasks.pop(address, []):
            if task is not current:
                task.cancel()
        if await self._registry.remove(address) is not None:
            self._on_forget(address)
            log.info(
                "worker %s forgotten (announced, gone for %.0fs)", address, self._forget_after_s
            )

    async def _refresh_info(self, worker: WorkerHandle, timeout: float) -> None:
        info = await worker.stub.Info(worker_pb2.InfoRequest(), timeout=timeout)
        worker.worker_id = info.worker_id
        worker.models = {m.id: m for m in info.models}
        if info.max_num_seqs > 0:
            worker.max_num_seqs = info.max_num_seqs

    async def _check_health(self, worker: WorkerHandle, timeout: float) -> bool:
        stub = health_pb2_grpc.HealthStub(worker.channel)
        reply = await stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=timeout)
        return reply.status == health_pb2.HealthCheckResponse.SERVING and bool(worker.models)

    async def _watch_load(self, worker: WorkerHandle) -> None:
        """Keeps the worker's live load current (WatchLoad); a lost stream triggers a probe."""
        request = worker_pb2.LoadRequest(interval_ms=self._load_interval_ms)
        while True:
            if not worker.is_healthy:
                await asyncio.sleep(min(self._interval, 0.2))
                continue
            call = worker.stub.WatchLoad(request)
            try:
                async for report in call:
                    self._apply_load(worker, report)
            except asyncio.CancelledError:
                call.cancel()
                raise
            except grpc.aio.AioRpcError as err:
                if err.code() == grpc.StatusCode.UNIMPLEMENTED:
                    log.info(
                        "worker %s has no WatchLoad: placing by router-side load only",
                        worker.address,
                    )
                    return
                if err.code() != grpc.StatusCode.CANCELLED:
                    log.debug(
                        "load stream of %s lost (%s): probing now", worker.address, err.code().name
                    )
                    self.kick(worker.address)
            finally:
                worker.load_live = False
            await asyncio.sleep(min(self._interval, 0.5))

    def _apply_load(self, worker: WorkerHandle, report: worker_pb2.LoadReport) -> None:
        worker.num_running, worker.num_waiting = report.num_running, report.num_waiting
        worker.kv_cache_usage = report.kv_cache_usage
        worker.load_live = True
        if report.max_num_seqs > 0 and report.max_num_seqs != worker.max_num_seqs:
            worker.max_num_seqs = report.max_num_seqs
            self._on_room()
        if report.draining and not worker.draining:
            log.info(
                "worker %s is draining: out of rotation (in flight %d)",
                worker.address,
                worker.num_in_flight,
            )
        worker.draining = report.draining

    def _publish_load(self, worker: WorkerHandle) -> None:
        """The worker's streamed load into the llmaas_worker_* gauges and the alert/console
        observations; a worker down is recorded as down."""
        name = worker.worker_id or worker.address
        if worker.worker_id and self._observations is not None:
            self._observations.forget_worker(worker.address)  # known by its id from now on
        if not worker.is_healthy:
            metrics.forget_worker(name)
            if self._observations is not None:
                self._observations.record_worker_down(name)
            return
        if not worker.load_live:
            return  # no stream (yet): health decides rotation; this skips one sample
        for model in worker.models:
            metrics.observe_worker_load(
                name,
                model,
                running=worker.num_running,
                waiting=worker.num_waiting,
                kv_usage=worker.kv_cache_usage,
            )
            if self._observations is not None:
                self._observations.record_worker(
                    name,
                    model,
                    running=worker.num_running,
                    waiting=worker.num_waiting,
                    kv_usage=worker.kv_cache_usage,
                )
