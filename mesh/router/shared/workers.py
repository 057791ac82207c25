"""Announced workers and their load, visible to every router through Redis.

A worker announces itself to a router (Registry service); that router heartbeats it into
Redis every `interval_s` while the worker is healthy: `{prefix}:workers:alive` (a sorted
set, address -> expiry now + `ttl_s`) and `{prefix}:workers` (address -> what it serves,
its capacity and its load as last reported: running, waiting, KV cache use). Every other
router adopts the addresses it does not know (its own monitor then probes them: a worker
is only sent what its own `Info` says), and withdraws an adopted worker once no router
heartbeats it any more (withdrawn, dead, or unreachable from all of them) within `ttl_s`.

Redis unreachable: fail open, unlike limits. Each router keeps serving with the workers it
knows (workers announce to every router of LLMAAS_ROUTER_ADDRS anyway); adoption and the
shared load view resume when Redis answers. Logged once per outage.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable
from typing import Protocol

from mesh.aio import cancel_and_wait
from mesh.router.registry import WorkerHandle

log = logging.getLogger(__name__)


class Pool(Protocol):
    def workers(self) -> list[WorkerHandle]: ...

    def get(self, address: str) -> WorkerHandle | None: ...

    async def add(
        self, address: str, *, static: bool = False, max_num_seqs: int = 0
    ) -> WorkerHandle: ...

    def withdraw(self, address: str) -> WorkerHandle | None: ...


def describe(w: WorkerHandle) -> dict:
    return {
        "worker_id": w.worker_id,
        "models": sorted(w.models),
        "max_num_seqs": w.max_num_seqs,
        "num_running": w.num_running,
        "num_waiting": w.num_waiting,
        "kv_cache_usage": w.kv_cache_usage,
    }


class SharedWorkers:
    def __init__(
        self,
        client,
        prefix: str,
        pool: Pool,
        *,
        ttl_s: float = 10.0,
        interval_s: float = 2.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._redis, self._pool, self._clock = client, pool, clock
        self.ttl_s, self.interval_s = ttl_s, interval_s
        self._alive_key, self._info_key = f"{prefix}:workers:alive", f"{prefix}:workers"
        self.adopted: set[str] = set()  # learned from Redis, not announced to this router
        self._task: asyncio.Task | None = None
        self._down = False

    def start(self) -> None:
        self._task = asyncio.create_task(self._run_forever(), name="shared-workers")

    async def sync(self) -> None:
        """One round: heartbeat the workers announced here, adopt and drop the others."""
        now = self._clock()
        mine = [
            w
            for w in self._pool.workers()
            if not w.static and w.address not in self.adopted and w.in_rotation
        ]
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.zremrangebyscore(self._alive_key, "-inf", now)
            for w in mine:
                pipe.zadd(self._alive_key, {w.address: now + self.ttl_s})
                pipe.hset(self._info_key, w.address, json.dumps(describe(w)))
            pipe.expire(self._alive_key, int(self.ttl_s * 10) + 1)
            pipe.expire(self._info_key, int(self.ttl_s * 10) + 1)
            pipe.zrangebyscore(self._alive_key, now, "+inf")
            alive = {a.decode() for a in (await pipe.execute())[-1]}
        infos = await self.snapshot(alive)
        for address in alive:
            await self._adopt(address, infos.get(address, {}))
        for address in list(self.adopted):
            if address not in alive:
                self.adopted.discard(address)
                if self._pool.withdraw(address) is not None:
                    log.info("worker %s: no router heartbeats it any more; withdrawn", address)

    async def _adopt(self, address: str, info: dict) -> None:
        handle = self._pool.get(address)
        if handle is not None and not (address in self.adopted and handle.withdrawn):
            return  # known here (announced here, static, or adopted and in rotation)
        self.adopted.add(address)
        await self._pool.add(address, static=False, max_num_seqs=int(info.get("max_num_seqs", 0)))
        log.info("worker %s announced to another router: adopted", address)

    async def snapshot(self, addresses: set[str] | None = None) -> dict[str, dict]:
        """address -> what its router last said (models, capacity, load)."""
        if addresses is None:
            found = await self._redis.zrangebyscore(self._alive_key, self._clock(), "+inf")
            addresses = {a.decode() for a in found}
        if not addresses:
            return {}
        order = sorted(addresses)
        raw = await self._redis.hmget(self._info_key, order)
        return {a: json.loads(r) for a, r in zip(order, raw, strict=True) if r is not None}

    async def _run_forever(self) -> None:
        while True:
            try:
                await self.sync()
                if self._down:
                    log.info("shared worker registry: Redis answers again")
                self._down = False
            except Exception:  # noqa: BLE001 - fail open: local registry keeps serving
                if not self._down:
                    log.warning(
                        "shared worker registry: Redis unreachable; serving with the workers "
                        "this router knows",
                        exc_info=True,
                    )
                self._down = True
            await asyncio.sleep(self.interval_s)

    async def close(self) -> None:
        await cancel_and_wait(self._task)
        self._task = None
