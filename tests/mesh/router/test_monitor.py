"""The worker monitor: health probes and the load stream, against in-process workers on
127.0.0.1 (real gRPC, fake engines). Waits are bounded loops on a condition."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import grpc
import pytest
from grpc_health.v1 import health_pb2_grpc
from prometheus_client import REGISTRY

from mesh.observations import Observations
from mesh.pb import common_pb2, worker_pb2, worker_pb2_grpc
from mesh.router.monitor import WorkerMonitor
from mesh.router.registry import WorkerRegistry
from mesh.rpc import add_port, build_server, set_serving

SERVICE = "llmaas.v1.Worker"


class LoadWorker(worker_pb2_grpc.WorkerServicer):
    """Serves "m"; its WatchLoad reports `streamed`; GetLoad (which the router must not
    need) says something else and counts its calls."""

    def __init__(self) -> None:
        self.streamed = worker_pb2.LoadReport(
            worker_id="mon-w1", num_running=3, num_waiting=2, kv_cache_usage=0.25, max_num_seqs=6
        )
        self.reports: asyncio.Queue[worker_pb2.LoadReport] = asyncio.Queue()
        self.get_load_calls = 0

    async def Info(self, request, context):
        return worker_pb2.InfoResponse(
            worker_id="mon-w1",
            models=[common_pb2.ModelInfo(id="m", context_length=1024)],
            max_num_seqs=4,
        )

    async def GetLoad(self, request, context):
        self.get_load_calls += 1
        return worker_pb2.LoadReport(worker_id="mon-w1", num_running=99, num_waiting=99)

    async def WatchLoad(self, request, context) -> AsyncIterator[worker_pb2.LoadReport]:
        yield self.streamed
        while True:
            yield await self.reports.get()


@pytest.fixture
async def worker() -> AsyncIterator[tuple[LoadWorker, str, grpc.aio.Server]]:
    fake = LoadWorker()
    server, health = build_server([SERVICE])
    worker_pb2_grpc.add_WorkerServicer_to_server(fake, server)
    port = add_port(server, "127.0.0.1", 0, "test")
    await server.start()
    await set_serving(health, [SERVICE], True)
    yield fake, f"127.0.0.1:{port}", server
    await server.stop(0)


def _channel(address: str) -> grpc.aio.Channel:
    return grpc.aio.insecure_channel(address)


async def until(predicate, steps: int = 200) -> None:
    for _ in range(steps):
        if predicate():
            return
        await asyncio.sleep(0.025)
    raise AssertionError("condition not reached")


async def test_a_probe_puts_a_worker_in_rotation_with_what_its_info_says(worker):
    _fake, address, _server = worker
    registry = WorkerRegistry([address], _channel)
    room: list[bool] = []
    monitor = WorkerMonitor(registry, interval_s=0.1, on_room=lambda: room.append(True))
    handle = registry.get(address)
    await monitor.probe(handle)
    assert handle.in_rotation and handle.worker_id == "mon-w1" and handle.capacity == 4
    assert registry.context_length("m") == 1024 and room == [True]
    await monitor.probe(handle)
    assert room == [True]  # only entering rotation frees room
    await registry.close()


async def test_a_probe_of_an_unreachable_worker_takes_it_out_and_records_it_down():
    registry = WorkerRegistry(["127.0.0.1:9"], _channel)  # discard port: nothing listens
    observations = Observations()
    monitor = WorkerMonitor(registry, interval_s=0.1, observations=observations)
    handle = registry.get("127.0.0.1:9")
    handle.is_healthy, handle.models = True, {"m": common_pb2.ModelInfo(id="m")}
    await monitor.probe(handle)
    assert not handle.is_healthy and handle.down_since is not None
    assert observations.down_since("127.0.0.1:9") is not None
    await registry.close()


async def test_load_comes_from_the_stream_only_and_each_probe_publishes_it(worker):
    fake, address, _server = worker
    registry = WorkerRegistry([address], _channel)
    now = [1000.0]
    observations = Observations(clock=lambda: now[0])
    monitor = WorkerMonitor(registry, interval_s=0.05, observations=observations)
    handle = registry.get(address)
    monitor.start()
    await until(lambda: handle.load_live)
    assert (handle.num_running, handle.num_waiting, handle.capacity) == (3, 2, 6)
    await monitor.probe(handle)
    (snap,) = observations.workers()
    assert (snap.worker, snap.model, snap.running, snap.waiting) == ("mon-w1", "m", 3, 2)
    labels = {"worker": "mon-w1", "model": "m"}
    assert REGISTRY.get_sample_value("llmaas_worker_running_sequences", labels) == 3
    assert REGISTRY.get_sample_value("llmaas_worker_queue_depth", labels) == 2
    # A load that does not change is published again at the next probe (fresh for alerts).
    now[0] += 10
    await monitor.probe(handle)
    assert observations.workers()[0].t == 1010.0
    assert fake.get_load_calls == 0  # the poll is gone: one source of load
    await monitor.close()
    await registry.close()


async def test_a_worker_whose_stream_has_not_reported_publishes_no_load(worker):
    fake, address, _server = worker
    registry = WorkerRegistry([address], _channel)
    observations = Observations()
    monitor = WorkerMonitor(registry, interval_s=0.05, observations=observations)
    handle = registry.get(address)
    await monitor.probe(handle)  # no load stream started: nothing known of its load
    assert handle.in_rotation and observations.workers() == []
    assert fake.get_load_calls == 0
    await registry.close()


async def test_a_draining_report_takes_the_worker_out(worker):
    fake, address, _server = worker
    registry = WorkerRegistry([address], _channel)
    monitor = WorkerMonitor(registry, interval_s=0.05)
    handle = registry.get(address)
    monitor.start()
    await until(lambda: handle.in_rotation and handle.load_live)
    await fake.reports.put(worker_pb2.LoadReport(worker_id="mon-w1", max_num_seqs=6, draining=True))
    await until(lambda: handle.draining)
    assert not handle.in_rotation and not registry.is_served("m")
    await monitor.close()
    await registry.close()


async def test_an_announced_worker_gone_for_long_is_forgotten():
    registry = WorkerRegistry([], _channel)
    forgotten: list[str] = []
    monitor = WorkerMonitor(
        registry, interval_s=0.05, forget_after_s=0.0, on_forget=forgotten.append
    )
    registry.admit("127.0.0.1:9")  # announced, then never answers
    registry.admit("127.0.0.1:7", static=False)
    static = WorkerRegistry(["127.0.0.1:9"], _channel)  # a configured one stays
    static_monitor = WorkerMonitor(static, interval_s=0.05, forget_after_s=0.0)
    monitor.start()
    static_monitor.start()
    await until(lambda: not registry.workers())
    assert sorted(forgotten) == ["127.0.0.1:7", "127.0.0.1:9"]
    assert static.get("127.0.0.1:9") is not None
    await monitor.close()
    await static_monitor.close()
    await static.close()


class SilentHealth(health_pb2_grpc.HealthServicer):
    """A health check that never answers: a worker too busy to reply in time."""

    async def Check(self, request, context):
        await asyncio.Event().wait()


async def test_one_late_probe_is_tolerated_and_the_second_in_a_row_takes_the_worker_out():
    server = grpc.aio.server()
    health_pb2_grpc.add_HealthServicer_to_server(SilentHealth(), server)
    address = f"127.0.0.1:{server.add_insecure_port('127.0.0.1:0')}"
    await server.start()
    registry = WorkerRegistry([address], _channel)
    monitor = WorkerMonitor(registry, interval_s=0.05, probe_timeout_s=0.05)
    handle = registry.get(address)
    handle.is_healthy, handle.models = True, {"m": common_pb2.ModelInfo(id="m")}
    await monitor.probe(handle)
    assert handle.in_rotation and handle.late_probes == 1
    await monitor.probe(handle)
    assert not handle.in_rotation and handle.down_since is not None
    await registry.close()
    await server.stop(0)
