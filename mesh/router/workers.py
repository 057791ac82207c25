"""The worker pool: one channel per worker, what each serves, whether it is healthy, its load.

A worker enters rotation once its `Info` said which models it serves and its standard
health check answers SERVING; it leaves rotation on the first failed probe (or failed
call) and comes back by itself when healthy again. `pick` never returns a worker that did
not announce the model.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from mesh.pb import common_pb2, worker_pb2, worker_pb2_grpc
from mesh.rpc import open_channel

log = logging.getLogger(__name__)

ChannelFactory = Callable[[str], grpc.aio.Channel]


def _default_channel(address: str) -> grpc.aio.Channel:
    return open_channel(address, peer_role="worker")


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

    def serves(self, model: str) -> bool:
        return model in self.models

    def is_available_for(self, model: str) -> bool:
        return self.is_healthy and self.serves(model)


class WorkerPool:
    def __init__(
        self,
        addresses: Iterable[str],
        *,
        health_interval_s: float = 1.0,
        channel_factory: ChannelFactory = _default_channel,
    ) -> None:
        self._interval = health_interval_s
        self._channel_factory = channel_factory
        self._workers: dict[str, WorkerHandle] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}
        for address in dict.fromkeys(addresses):  # one channel per address, order kept
            self._add(address)

    def _add(self, address: str) -> WorkerHandle:
        channel = self._channel_factory(address)
        handle = WorkerHandle(address, channel, worker_pb2_grpc.WorkerStub(channel))
        self._workers[address] = handle
        return handle

    async def start(self) -> None:
        for address, handle in self._workers.items():
            if address not in self._tasks:
                self._tasks[address] = asyncio.create_task(self._monitor(handle), name=f"probe {address}")

    async def add(self, address: str) -> WorkerHandle:
        """Adds a worker at run time (registry); a no-op for a known address."""
        handle = self._workers.get(address) or self._add(address)
        await self.start()
        return handle

    async def close(self) -> None:
        for task in self._tasks.values():
            task.cancel()
        await asyncio.gather(*self._tasks.values(), return_exceptions=True)
        self._tasks.clear()
        await asyncio.gather(*(w.channel.close() for w in self._workers.values()), return_exceptions=True)

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
                merged.served = merged.served or w.is_healthy
        return out

    # -- choosing ---------------------------------------------------------------------

    def pick(self, model: str, exclude: Iterable[str] = ()) -> WorkerHandle | None:
        """The least-loaded healthy worker serving `model`, ties broken at random."""
        skip = set(exclude)
        candidates = [w for w in self._workers.values() if w.address not in skip and w.is_available_for(model)]
        if not candidates:
            return None
        random.shuffle(candidates)
        return min(candidates, key=lambda w: w.num_in_flight)

    @contextlib.contextmanager
    def lease(self, worker: WorkerHandle) -> Iterator[WorkerHandle]:
        worker.num_in_flight += 1
        try:
            yield worker
        finally:
            worker.num_in_flight -= 1

    def mark_failed(self, worker: WorkerHandle, reason: str) -> None:
        """Out of rotation now, not at the next probe; the probe brings it back."""
        if worker.is_healthy:
            log.warning("worker %s out of rotation: %s", worker.address, reason)
        worker.is_healthy = False

    def forget_models(self, worker: WorkerHandle) -> None:
        """The worker denied serving a model it announced: ask Info again."""
        worker.models = {}
        worker.is_healthy = False

    # -- probing ----------------------------------------------------------------------

    async def _monitor(self, worker: WorkerHandle) -> None:
        while True:
            try:
                await self.probe(worker)
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - a probe must never kill the loop
                log.exception("probe of %s failed unexpectedly", worker.address)
            await asyncio.sleep(self._interval)

    async def probe(self, worker: WorkerHandle) -> None:
        timeout = max(0.5, self._interval)
        try:
            # Info again after every outage: a restarted worker may serve something else.
            if not worker.is_healthy or not worker.models:
                await self._refresh_info(worker, timeout)
            healthy = await self._check_health(worker, timeout)
        except grpc.aio.AioRpcError as err:
            self.mark_failed(worker, f"{err.code().name}: {err.details()}")
            return
        if healthy and not worker.is_healthy:
            log.info("worker %s (%s) in rotation: %s", worker.address, worker.worker_id, sorted(worker.models))
        elif not healthy:
            self.mark_failed(worker, "health check not SERVING")
        worker.is_healthy = healthy

    async def _refresh_info(self, worker: WorkerHandle, timeout: float) -> None:
        info = await worker.stub.Info(worker_pb2.InfoRequest(), timeout=timeout)
        worker.worker_id = info.worker_id
        worker.models = {m.id: m for m in info.models}

    async def _check_health(self, worker: WorkerHandle, timeout: float) -> bool:
        stub = health_pb2_grpc.HealthStub(worker.channel)
        reply = await stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=timeout)
        return reply.status == health_pb2.HealthCheckResponse.SERVING and bool(worker.models)
