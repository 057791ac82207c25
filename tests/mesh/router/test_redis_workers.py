"""Workers announced to one router are visible to every router through Redis (#17).

Unit tests: the pools are small fakes recording what the shared registry asks of them
(a real pool would probe the addresses); the Redis is real. Clocks injected."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from accounts_testkit import FakeClock
from redis_testkit import REDIS_URL, TEST_TIMEOUT_S, TcpProxy, target_of, unique_prefix

from mesh.pb import common_pb2
from mesh.redis_state import connect
from mesh.router.registry import WorkerHandle
from mesh.router.shared.workers import SharedWorkers


class FakePool:
    def __init__(self) -> None:
        self.handles: dict[str, WorkerHandle] = {}

    def announce(self, address: str, healthy: bool = True) -> WorkerHandle:
        """What the Registry service and the monitor do for a worker announced here."""
        handle = WorkerHandle(address, None, None, static=False, is_healthy=healthy)
        handle.models = {"m": common_pb2.ModelInfo(id="m")}
        handle.max_num_seqs, handle.num_running = 8, 3
        self.handles[address] = handle
        return handle

    def workers(self) -> list[WorkerHandle]:
        return list(self.handles.values())

    def get(self, address: str) -> WorkerHandle | None:
        return self.handles.get(address)

    async def add(self, address: str, *, static: bool = False, max_num_seqs: int = 0):
        handle = self.handles.get(address) or WorkerHandle(address, None, None, static=static)
        handle.withdrawn, handle.max_num_seqs = False, max_num_seqs
        self.handles[address] = handle
        return handle

    def withdraw(self, address: str) -> WorkerHandle | None:
        handle = self.handles.get(address)
        if handle is not None:
            handle.withdrawn = True
        return handle


@pytest.fixture
async def prefix() -> AsyncIterator[str]:
    async with unique_prefix() as p:
        yield p


def _router(prefix: str, clock: FakeClock, url: str = REDIS_URL) -> tuple[SharedWorkers, FakePool]:
    pool = FakePool()
    return SharedWorkers(
        connect(url, timeout_s=TEST_TIMEOUT_S), prefix, pool, ttl_s=10, clock=clock
    ), pool


async def test_a_worker_announced_to_one_router_is_adopted_by_the_other(prefix) -> None:
    clock = FakeClock()
    (a, pool_a), (b, pool_b) = _router(prefix, clock), _router(prefix, clock)
    try:
        pool_a.announce("10.0.0.7:50061")
        await a.sync()
        await b.sync()
        adopted = pool_b.get("10.0.0.7:50061")
        assert adopted is not None and adopted.max_num_seqs == 8 and not adopted.withdrawn
        info = (await b.snapshot())["10.0.0.7:50061"]
        assert info["models"] == ["m"] and info["num_running"] == 3
        await b.sync()  # B never heartbeats what it adopted...
        pool_a.withdraw("10.0.0.7:50061")  # ...so once A stops (withdrawn), it expires
        await a.sync()
        clock.advance(10.1)
        await b.sync()
        assert pool_b.get("10.0.0.7:50061").withdrawn and not b.adopted
    finally:
        for r in (a, b):
            await r._redis.aclose()


async def test_unhealthy_and_static_workers_are_not_announced(prefix) -> None:
    clock = FakeClock()
    (a, pool_a), (b, pool_b) = _router(prefix, clock), _router(prefix, clock)
    try:
        pool_a.announce("10.0.0.8:1", healthy=False)
        pool_a.announce("10.0.0.9:1").static = True
        await a.sync()
        await b.sync()
        assert pool_b.workers() == []
    finally:
        for r in (a, b):
            await r._redis.aclose()


async def test_redis_unreachable_fails_open(prefix) -> None:
    proxy = TcpProxy(*target_of(REDIS_URL))
    await proxy.start()
    a, pool_a = _router(prefix, FakeClock(), proxy.url)
    try:
        pool_a.announce("10.0.0.7:50061")
        await proxy.cut()
        with pytest.raises(Exception):  # noqa: B017 - any Redis error; the loop logs it
            await a.sync()
        assert pool_a.get("10.0.0.7:50061").in_rotation  # the local registry is untouched
        await proxy.restore()
        await a.sync()
        assert "10.0.0.7:50061" in await a.snapshot()
    finally:
        await proxy.cut()
        await a._redis.aclose()
