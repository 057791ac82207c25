"""The worker pool: one channel per worker, what each serves, whether it is healthy, its load.

Workers come from the static config (`[[workers]]`, LLMAAS_WORKER_ADDRS) and from the
Registry (`Announce` / `Withdraw`, registry_service.py). A worker enters rotation once its
`Info` said which models it serves (and its capacity, `max_num_seqs`) and its standard
health check answers SERVING; it leaves rotation on the first failed probe, failed call,
lost load stream, `draining` load report or `Withdraw`, and comes back by itself when
healthy again. Only a worker's own `Info` decides what it is sent: a request never goes to
a worker that did not say it serves the model.

Each worker in rotation streams its load (`WatchLoad`). `acquire` places a request
(placement.py: load with prefix affinity) and counts it in flight until `release`. When
every worker of the model is saturated (in flight >= capacity), the request waits in the
model's per-tenant fair queue (fairqueue.py) until a slot frees, up to a deadline, then
gets 503 with Retry-After.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from mesh import metrics
from mesh.errors import Unavailable
from mesh.observations import Observations
from mesh.pb import common_pb2, worker_pb2, worker_pb2_grpc
from mesh.router.fairqueue import FairQueue
from mesh.router.placement import Placer
from mesh.rpc import open_channel

log = logging.getLogger(__name__)

ChannelFactory = Callable[[str], grpc.aio.Channel]

DEFAULT_CAPACITY = 16  # a worker that did not say its max_num_seqs
LOAD_INTERVAL_MS = 200  # WatchLoad: at most one report per this interval


# A restarted worker is dialled again within ~1 s, not after gRPC's default reconnect
# backoff (which grows to two minutes, and is shared by every channel to the same address).
WORKER_CHANNEL_OPTIONS = (
    ("grpc.initial_reconnect_backoff_ms", 500),
    ("grpc.min_reconnect_backoff_ms", 500),
    ("grpc.max_reconnect_backoff_ms", 1000),
)


def _default_channel(address: str) -> grpc.aio.Channel:
    return open_channel(address, peer_role="worker", options=WORKER_CHANNEL_OPTIONS)


@dataclass(slots=True, eq=False)
class WorkerHandle:
    address: str
    channel: grpc.aio.Channel
    stub: worker_pb2_grpc.WorkerStub
    worker_id: str = ""
    # model id -> what the worker said about it in Info; empty until Info answered.
    models: dict[str, common_pb2.ModelInfo] = field(default_factory=dict)
    is_healthy: bool = False
    num_in_flight: int = 0
    # Sequences decoded together (Info / announcement / load report); 0 = not said.
    max_num_seqs: int = 0
    static: bool = True  # from the config; announced workers are forgotten once long gone
    withdrawn: bool = False  # Withdraw received: out until it re-announces or restarts
    draining: bool = False  # its load report says it is shutting down
    # Live load as the worker reports it (WatchLoad).
    num_running: int = 0
    num_waiting: int = 0
    kv_cache_usage: float = 0.0
    down_since: float | None = None
    # After a failed call: kept out until then even if its health check says SERVING.
    hold_until: float = 0.0

    @property
    def capacity(self) -> int:
        return self.max_num_seqs or DEFAULT_CAPACITY

    @property
    def load(self) -> int:
        return max(self.num_in_flight, self.num_running + self.num_waiting)

    @property
    def has_room(self) -> bool:
        return self.num_in_flight < self.capacity

    @property
    def in_rotation(self) -> bool:
        return (
            self.is_healthy
            and not self.withdrawn
            and not self.draining
            and (not self.hold_until or time.monotonic() >= self.hold_until)
        )

    def serves(self, model: str) -> bool:
        return model in self.models

    def is_available_for(self, model: str) -> bool:
        return self.in_rotation and self.serves(model)


@dataclass(slots=True, eq=False)
class _Waiter:
    hashes: Sequence[bytes]
    future: asyncio.Future[WorkerHandle]


class WorkerPool:
    def __init__(
        self,
        addresses: Iterable[str],
        *,
        health_interval_s: float = 1.0,
        channel_factory: ChannelFactory = _default_channel,
        observations: Observations | None = None,
        placer: Placer | None = None,
        queue_timeout_s: float = 30.0,
        max_queued_per_tenant: int = 256,
        max_queued: int = 4096,
        load_interval_ms: int = LOAD_INTERVAL_MS,
        forget_after_s: float = 300.0,
    ) -> None:
        self._observations = observations
        self._interval = health_interval_s
        self._channel_factory = channel_factory
        self._workers: dict[str, WorkerHandle] = {}
        self._tasks: dict[str, list[asyncio.Task[None]]] = {}
        self._kicks: dict[str, asyncio.Event] = {}
        self.placer = placer or Placer()
        self.queue_timeout_s = queue_timeout_s
        self._max_queued_per_tenant = max_queued_per_tenant
        self._max_queued = max_queued
        self._queues: dict[str, FairQueue[_Waiter]] = {}
        self._load_interval_ms = load_interval_ms
        self._forget_after_s = forget_after_s
        self.counters: Counter[str] = Counter()  # queued, queue_timeouts, queue_full, failovers
        for address in dict.fromkeys(addresses):  # one channel per address, order kept
            self._add(address)

    def _add(self, address: str, *, static: bool = True) -> WorkerHandle:
        channel = self._channel_factory(address)
        handle = WorkerHandle(address, channel, worker_pb2_grpc.WorkerStub(channel), static=static)
        self._workers[address] = handle
        self._kicks[address] = asyncio.Event()
        return handle

    async def start(self) -> None:
        for address, handle in self._workers.items():
            if address not in self._tasks:
                self._tasks[address] = [
                    asyncio.create_task(self._monitor(handle), name=f"probe {address}"),
                    asyncio.create_task(self._watch_load(handle), name=f"load {address}"),
                ]

    async def add(
        self, address: str, *, static: bool = False, max_num_seqs: int = 0
    ) -> WorkerHandle:
        """Adds (or re-admits) a worker at run time (registry): probed at once; it enters
        rotation when its Info and health check say so."""
        handle = self._workers.get(address) or self._add(address, static=static)
        if handle.withdrawn:
            log.info("worker %s re-announced", address)
        handle.withdrawn = False
        handle.down_since = None
        if max_num_seqs > 0 and not handle.max_num_seqs:
            handle.max_num_seqs = max_num_seqs
        if not handle.is_healthy:
            handle.models = {}  # ask Info again: a restarted worker may serve something else
        await self.start()
        self._kicks[address].set()
        return handle

    def withdraw(self, address: str) -> WorkerHandle | None:
        """The worker is leaving (draining): no new requests from now on."""
        handle = self._workers.get(address)
        if handle is None:
            return None
        if not handle.withdrawn:
            log.info(
                "worker %s withdrew: out of rotation (in flight %d)", address, handle.num_in_flight
            )
        handle.withdrawn = True
        return handle

    def get(self, address: str) -> WorkerHandle | None:
        return self._workers.get(address)

    async def _remove(self, address: str) -> None:
        handle = self._workers.pop(address, None)
        self._kicks.pop(address, None)
        tasks = self._tasks.pop(address, [])
        current = asyncio.current_task()
        for task in tasks:
            if task is not current:
                task.cancel()
        if handle is not None:
            self.placer.index.forget(address)
            await handle.channel.close()
            log.info(
                "worker %s forgotten (announced, gone for %.0fs)", address, self._forget_after_s
            )

    async def close(self) -> None:
        tasks = [t for ts in self._tasks.values() for t in ts]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._tasks.clear()
        for queue in self._queues.values():
            while (waiter := queue.pop()) is not None:
                waiter.future.cancel()
        await asyncio.gather(
            *(w.channel.close() for w in self._workers.values()), return_exceptions=True
        )

    # -- what is served ---------------------------------------------------------------

    def workers(self) -> list[WorkerHandle]:
        return list(self._workers.values())

    def is_served(self, model: str) -> bool:
        return any(w.is_available_for(model) for w in self._workers.values())

    def knows(self, model: str) -> bool:
        """Some worker (healthy or not) announced this model."""
        return any(w.serves(model) for w in self._workers.values())

    def model_infos(self) -> dict[str, common_pb2.ModelInfo]:
        """Every announced model, with `served` true when a healthy worker has it."""
        out: dict[str, common_pb2.ModelInfo] = {}
        for w in self._workers.values():
            for model_id, info in w.models.items():
                merged = out.setdefault(model_id, common_pb2.ModelInfo())
                if not merged.id:
                    merged.CopyFrom(info)
                    merged.served = False
                merged.served = merged.served or w.in_rotation
        return out

    def context_length(self, model: str) -> int:
        """The smallest context window a worker in rotation announced for `model` (Info);
        0 when none said."""
        windows = [
            w.models[model].context_length
            for w in self._candidates(model)
            if w.models[model].context_length > 0
        ]
        return min(windows, default=0)

    # -- choosing ---------------------------------------------------------------------

    def _candidates(self, model: str, exclude: Iterable[str] = ()) -> list[WorkerHandle]:
        skip = set(exclude)
        return [
            w for w in self._workers.values() if w.address not in skip and w.is_available_for(model)
        ]

    def pick(
        self, model: str, exclude: Iterable[str] = (), hashes: Sequence[bytes] = ()
    ) -> WorkerHandle | None:
        """Where a request would go now (placement.py); counts nothing in flight."""
        placement = self.placer.choose(self._candidates(model, exclude), hashes)
        return None if placement is None else placement.worker  # type: ignore[return-value]

    async def acquire(
        self,
        model: str,
        *,
        tenant: str = "",
        weight: float = 1.0,
        hashes: Sequence[bytes] = (),
        timeout: float | None = None,
        exclude: Iterable[str] = (),
        wait: bool = True,
    ) -> WorkerHandle | None:
        """A worker for one request, counted in flight until `release`; None when no worker
        in rotation serves the model. With `wait` (a first attempt), a request that finds
        every worker saturated waits its fair turn (raises Unavailable after the deadline or
        when the queue is full); without (a failover), it goes to a worker at once."""
        candidates = self._candidates(model, exclude)
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
        limit = self.queue_timeout_s if timeout is None else min(timeout, self.queue_timeout_s)
        try:
            async with asyncio.timeout(limit):
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
                raise self._saturated(model, f"no slot freed within {limit:.0f}s") from None
            raise

    def release(self, worker: WorkerHandle) -> None:
        worker.num_in_flight -= 1
        self._dispatch_all()

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
            with_room = [w for w in self._candidates(model) if w.has_room]
            if not with_room:
                return
            waiter = queue.pop()
            if waiter is None or waiter.future.done():
                continue
            waiter.future.set_result(self._take(with_room, waiter.hashes))

    def _dispatch_all(self) -> None:
        for model, queue in self._queues.items():
            if queue:
                self._dispatch(model)

    def _saturated(self, model: str, why: str) -> Unavailable:
        capacity = sum(w.capacity for w in self._candidates(model)) or 1
        retry_after = min(30, 1 + self.queued(model) // capacity)
        return Unavailable(
            f"Every worker serving '{model}' is busy and {why}; retry in {retry_after}s.",
            code="model_overloaded",
            param="model",
            retry_after=retry_after,
        )

    def mark_failed(self, worker: WorkerHandle, reason: str, hold_s: float = 0.0) -> None:
        """Out of rotation now, not at the next probe; the probe brings it back (not before
        `hold_s`: a worker whose calls fail while its health check passes is flapping)."""
        if worker.is_healthy:
            log.warning("worker %s out of rotation: %s", worker.address, reason)
        worker.is_healthy = False
        if hold_s:
            worker.hold_until = time.monotonic() + hold_s
        if worker.down_since is None:
            worker.down_since = time.monotonic()

    def forget_models(self, worker: WorkerHandle) -> None:
        """The worker denied serving a model it announced: ask Info again."""
        worker.models = {}
        worker.is_healthy = False

    # -- probing ----------------------------------------------------------------------

    async def _monitor(self, worker: WorkerHandle) -> None:
        kick = self._kicks[worker.address]
        while True:
            try:
                await self.probe(worker)
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - a probe must never kill the loop
                log.exception("probe of %s failed unexpectedly", worker.address)
            if self._gone_for_good(worker):
                await self._remove(worker.address)
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

    async def probe(self, worker: WorkerHandle) -> None:
        timeout = max(0.5, self._interval)
        was_in_rotation = worker.in_rotation
        try:
            # Info again after every outage: a restarted worker may serve something else.
            if not worker.is_healthy or not worker.models:
                await self._refresh_info(worker, timeout)
            healthy = await self._check_health(worker, timeout)
        except grpc.aio.AioRpcError as err:
            self.mark_failed(worker, f"{err.code().name}: {err.details()}")
            await self._observe_load(worker, timeout)
            return
        if not healthy:
            self.mark_failed(worker, "health check not SERVING")
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
            self._dispatch_all()
        await self._observe_load(worker, timeout)

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
                    if kick := self._kicks.get(worker.address):
                        kick.set()
            await asyncio.sleep(min(self._interval, 0.5))

    def _apply_load(self, worker: WorkerHandle, report: worker_pb2.LoadReport) -> None:
        worker.num_running, worker.num_waiting = report.num_running, report.num_waiting
        worker.kv_cache_usage = report.kv_cache_usage
        if report.max_num_seqs > 0 and report.max_num_seqs != worker.max_num_seqs:
            worker.max_num_seqs = report.max_num_seqs
            self._dispatch_all()
        if report.draining and not worker.draining:
            log.info(
                "worker %s is draining: out of rotation (in flight %d)",
                worker.address,
                worker.num_in_flight,
            )
        worker.draining = report.draining

    async def _observe_load(self, worker: WorkerHandle, timeout: float) -> None:
        """The worker's load into the llmaas_worker_* gauges and the alert/console observations."""
        name = worker.worker_id or worker.address
        if worker.worker_id and self._observations is not None:
            self._observations.forget_worker(worker.address)  # known by its id from now on
        if not worker.is_healthy:
            metrics.forget_worker(name)
            if self._observations is not None:
                self._observations.record_worker_down(name)
            return
        try:
            load = await worker.stub.GetLoad(worker_pb2.LoadRequest(), timeout=timeout)
        except grpc.aio.AioRpcError:
            return  # health decides rotation; a missed load report only skips one sample
        for model in worker.models:
            metrics.observe_worker_load(
                name,
                model,
                running=load.num_running,
                waiting=load.num_waiting,
                kv_usage=load.kv_cache_usage,
            )
            if self._observations is not None:
                self._observations.record_worker(
                    name,
                    model,
                    running=load.num_running,
                    waiting=load.num_waiting,
                    kv_usage=load.kv_cache_usage,
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
