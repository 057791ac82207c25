"""The dispatcher: placement among workers in rotation, in-flight accounting, the fair queue."""

from __future__ import annotations

import asyncio
import random

import pytest

from mesh.errors import Unavailable
from mesh.pb import common_pb2
from mesh.router.dispatcher import Dispatcher
from mesh.router.placement import Placer
from mesh.router.registry import WorkerRegistry


class FakeChannel:
    def __init__(self, address: str) -> None:
        self.address = address

    def unary_unary(self, *_args, **_kw) -> None:
        """The stub's methods are never called here: no RPC leaves these tests."""

    unary_stream = stream_unary = stream_stream = unary_unary

    async def close(self) -> None:
        pass


def make(capacities: dict[str, int], **kw) -> tuple[WorkerRegistry, Dispatcher]:
    """Workers in rotation for model "m", each with the given capacity."""
    registry = WorkerRegistry(capacities, FakeChannel)
    for address, capacity in capacities.items():
        handle = registry.get(address)
        handle.models = {"m": common_pb2.ModelInfo(id="m")}
        handle.is_healthy, handle.max_num_seqs = True, capacity
    return registry, Dispatcher(registry, Placer(rng=random.Random(0)), **kw)


async def settle() -> None:
    """Lets queued tasks run up to their next wait (no wall clock involved)."""
    for _ in range(5):
        await asyncio.sleep(0)


async def test_acquire_counts_in_flight_until_release_and_spreads_by_load():
    registry, dispatcher = make({"a:1": 2, "b:1": 2})
    first = await dispatcher.acquire("m", timeout=1)
    second = await dispatcher.acquire("m", timeout=1)
    assert {first.address, second.address} == {"a:1", "b:1"}  # least loaded goes next
    assert first.num_in_flight == second.num_in_flight == 1
    dispatcher.release(first)
    assert first.num_in_flight == 0
    assert sum(dispatcher.placer.placements.values()) == 2


async def test_no_worker_for_the_model_is_none():
    _, dispatcher = make({"a:1": 1})
    assert await dispatcher.acquire("other", timeout=1) is None
    assert await dispatcher.acquire("m", timeout=1, exclude=["a:1"]) is None
    assert dispatcher.pick("other") is None


async def test_pick_counts_nothing_in_flight():
    registry, dispatcher = make({"a:1": 1})
    assert dispatcher.pick("m") is registry.get("a:1")
    assert registry.get("a:1").num_in_flight == 0


async def test_a_saturated_model_queues_and_a_release_grants_the_next_in_fair_order():
    registry, dispatcher = make({"a:1": 1})
    held = await dispatcher.acquire("m", timeout=1)
    order: list[str] = []

    async def wait(tenant: str) -> None:
        worker = await dispatcher.acquire("m", tenant=tenant, timeout=60)
        order.append(tenant)
        dispatcher.release(worker)

    tasks = [asyncio.create_task(wait(t)) for t in ("flood", "flood", "flood", "quiet")]
    await settle()
    assert dispatcher.queued("m") == 4 and dispatcher.counters["queued"] == 4
    assert dispatcher.stats()["queued_now"] == {"m": 4}
    dispatcher.release(held)
    await asyncio.gather(*tasks)
    assert order == ["flood", "quiet", "flood", "flood"]  # the quiet tenant is not last
    assert registry.get("a:1").num_in_flight == 0 and dispatcher.queued("m") == 0


async def test_a_wait_past_the_deadline_is_503_with_retry_after():
    _, dispatcher = make({"a:1": 1})
    await dispatcher.acquire("m", timeout=1)
    with pytest.raises(Unavailable) as err:
        await dispatcher.acquire("m", timeout=0)
    assert err.value.code == "model_overloaded" and err.value.retry_after >= 1
    assert dispatcher.counters["queue_timeouts"] == 1 and dispatcher.queued("m") == 0


async def test_a_full_queue_answers_at_once():
    _, dispatcher = make({"a:1": 1}, max_queued=1)
    await dispatcher.acquire("m", timeout=1)
    waiting = asyncio.create_task(dispatcher.acquire("m", timeout=60))
    await settle()
    with pytest.raises(Unavailable, match="queue is full"):
        await dispatcher.acquire("m", timeout=60)
    assert dispatcher.counters["queue_full"] == 1
    waiting.cancel()
    await asyncio.gather(waiting, return_exceptions=True)
    assert dispatcher.queued("m") == 0  # a cancelled wait leaves the queue


async def test_a_failover_does_not_wait_its_turn_again():
    registry, dispatcher = make({"a:1": 1})
    await dispatcher.acquire("m", timeout=1)
    worker = await dispatcher.acquire("m", timeout=0, wait=False)
    assert worker is registry.get("a:1") and worker.num_in_flight == 2


async def test_dispatch_all_grants_waiters_when_capacity_grows():
    registry, dispatcher = make({"a:1": 1})
    await dispatcher.acquire("m", timeout=1)
    waiting = asyncio.create_task(dispatcher.acquire("m", timeout=60))
    await settle()
    registry.get("a:1").max_num_seqs = 2  # e.g. a load report said so
    dispatcher.dispatch_all()
    assert (await waiting) is registry.get("a:1")


async def test_lease_counts_a_worker_chosen_by_the_caller():
    registry, dispatcher = make({"a:1": 1})
    worker = registry.get("a:1")
    with dispatcher.lease(worker):
        assert worker.num_in_flight == 1
    assert worker.num_in_flight == 0


async def test_close_cancels_every_waiting_request():
    _, dispatcher = make({"a:1": 1})
    await dispatcher.acquire("m", timeout=1)
    waiting = asyncio.create_task(dispatcher.acquire("m", timeout=60))
    await settle()
    dispatcher.close()
    with pytest.raises(asyncio.CancelledError):
        await waiting
