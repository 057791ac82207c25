"""The mesh's readiness, published through the router's standard health service.

Every second the router probes the filter and reads the worker pool, then sets (names in
mesh.wire, the contract the edge reads too):
  llmaas.mesh.filter           SERVING when the filter's health check answers SERVING
  llmaas.mesh.model/<id>       SERVING when at least one healthy worker serves <id>
  llmaas.mesh                  SERVING when all of the above are
The edge's `GET /health` reads them with `Health.List`, so readiness logic lives here.
Models counted: those the config expects (`[[workers]]`, LLMAAS_WORKER_ADDRS) plus any a
worker announced.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1._async import HealthServicer

from mesh.router.workers import WorkerPool
from mesh.wire import HEALTH_FILTER, HEALTH_MESH, HEALTH_MODEL_PREFIX

log = logging.getLogger(__name__)

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


class MeshHealth:
    def __init__(
        self,
        health_servicer: HealthServicer,
        pool: WorkerPool,
        filter_channel: grpc.aio.Channel,
        expected_models: Iterable[str],
        *,
        interval_s: float = 1.0,
    ) -> None:
        self._servicer = health_servicer
        self._pool = pool
        self._filter = health_pb2_grpc.HealthStub(filter_channel)
        self._expected = frozenset(expected_models)
        self._interval = interval_s
        self._task: asyncio.Task[None] | None = None
        self._last: dict[str, bool] = {}

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="mesh health")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _loop(self) -> None:
        while True:
            try:
                await self.update()
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - readiness must keep being reported
                log.exception("mesh health update failed")
            await asyncio.sleep(self._interval)

    async def update(self) -> dict[str, bool]:
        statuses = {HEALTH_FILTER: await self._filter_ok()}
        models = self._expected | set(self._pool.model_infos())
        for model in sorted(models):
            statuses[HEALTH_MODEL_PREFIX + model] = self._pool.is_served(model)
        statuses[HEALTH_MESH] = all(statuses.values()) and bool(models)
        for name, ok in statuses.items():
            if self._last.get(name) != ok:
                log.info("health %s: %s", name, "SERVING" if ok else "NOT_SERVING")
            await self._servicer.set(name, SERVING if ok else NOT_SERVING)
        self._last = statuses
        return statuses

    async def _filter_ok(self) -> bool:
        try:
            reply = await self._filter.Check(
                health_pb2.HealthCheckRequest(service=""), timeout=self._interval
            )
        except grpc.aio.AioRpcError:
            return False
        return reply.status == SERVING
