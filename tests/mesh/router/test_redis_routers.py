"""Two routers' request pipelines over one Redis (#17): the shared limits as clients see them.

Each "router" is a real InferenceServicer over gRPC with real `Accounts` (its own SQLite
file here; the store is not what is tested) whose limits and budget are in one Redis prefix. A
tenant limited to 20 requests a minute gets exactly 20 of 60 requests spread over both; a
Redis outage is a 503 (gRPC UNAVAILABLE with a message) and service resumes without a
restart. No timing asserts: the minute never passes (FakeClock)."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from decimal import Decimal
from pathlib import Path

import grpc
import pytest
from accounts_testkit import PEPPER, T0, FakeClock
from redis_testkit import REDIS_URL, TEST_TIMEOUT_S, TcpProxy, target_of, unique_prefix
from router_fakes import KEY, FakeWorker, chat

from mesh.errors import from_rpc_error
from mesh.redis_state import SHARED_STATE_UNAVAILABLE
from mesh.router.accounts import Accounts
from mesh.router.keys import KeyHasher
from mesh.router.shared import SharedState
from mesh.router.store import SqliteStore
from mesh.router.tenants import DEFAULT_TIERS, Tenant

pytestmark = pytest.mark.timeout(60)

TIERS = {
    **DEFAULT_TIERS,
    "rpm20": replace(
        DEFAULT_TIERS["free"],
        name="rpm20",
        requests_per_minute=20,
        tokens_per_minute=0,
        concurrent_requests=0,
        monthly_budget_eur=Decimal(0),
    ),
}


async def _accounts(
    tmp_path: Path, url: str, prefix: str, clock: FakeClock, name: str = "a"
) -> Accounts:
    acc = Accounts(
        SqliteStore(tmp_path / f"{name}.sqlite3"),
        KeyHasher(PEPPER),
        TIERS,
        clock=clock,
        rotation_check_s=3600,
        shared=SharedState.connect(url, prefix, clock=clock, timeout_s=TEST_TIMEOUT_S),
    )
    await acc.start()
    await acc.directory.save_tenant(Tenant("acme", tier="rpm20", created_at=T0))
    await acc.directory.ensure_key("acme", KEY, admin=False)
    return acc


async def _outcome(mesh) -> grpc.StatusCode:
    try:
        [c async for c in mesh.stub.ChatCompletion(chat(), metadata=mesh.md())]
    except grpc.aio.AioRpcError as err:
        return err.code()
    return grpc.StatusCode.OK


async def test_sixty_requests_over_two_routers_get_exactly_twenty(make_mesh, tmp_path) -> None:
    clock = FakeClock()
    async with unique_prefix() as prefix:
        accounts = []
        try:
            for name in ("a", "b"):
                accounts.append(await _accounts(tmp_path, REDIS_URL, prefix, clock, name))
            meshes = [
                await make_mesh([FakeWorker("w1", ("chat:1m",))], access=acc) for acc in accounts
            ]
            codes = await asyncio.gather(*(_outcome(meshes[i % 2]) for i in range(60)))
            assert codes.count(grpc.StatusCode.OK) == 20
            assert codes.count(grpc.StatusCode.RESOURCE_EXHAUSTED) == 40
            assert sum(len(m.workers[0].calls) for m in meshes) == 20  # both routers served
            assert all(m.workers[0].calls for m in meshes)
        finally:
            for acc in accounts:
                await acc.close()


async def test_redis_down_is_a_503_and_service_resumes(make_mesh, tmp_path) -> None:
    proxy = TcpProxy(*target_of(REDIS_URL))
    await proxy.start()
    async with unique_prefix() as prefix:
        acc = await _accounts(tmp_path, proxy.url, prefix, FakeClock())
        try:
            mesh = await make_mesh([FakeWorker("w1", ("chat:1m",))], access=acc)
            assert await _outcome(mesh) == grpc.StatusCode.OK
            await proxy.cut()
            with pytest.raises(grpc.aio.AioRpcError) as down:
                [c async for c in mesh.stub.ChatCompletion(chat(), metadata=mesh.md())]
            assert down.value.code() == grpc.StatusCode.UNAVAILABLE
            err = from_rpc_error(down.value)
            assert (err.http_status, err.code) == (503, SHARED_STATE_UNAVAILABLE)
            assert "Redis" in err.message and len(mesh.workers[0].calls) == 1
            await proxy.restore()
            assert await _outcome(mesh) == grpc.StatusCode.OK
        finally:
            await proxy.cut()
            await acc.close()


async def test_a_budget_is_not_overshot_by_more_than_one_request(make_mesh, tmp_path) -> None:
    clock = FakeClock()
    async with unique_prefix() as prefix:
        accounts = []
        try:
            for name in ("a", "b"):
                accounts.append(await _accounts(tmp_path, REDIS_URL, prefix, clock, name))
            meshes = [
                await make_mesh([FakeWorker("w1", ("chat:1m",))], access=acc) for acc in accounts
            ]
            assert await _outcome(meshes[0]) == grpc.StatusCode.OK
            one = await _spent(accounts)  # what one request costs
            budget = one * Decimal("3.5")
            for acc in accounts:
                acc.tiers["rpm20"] = replace(
                    acc.tiers["rpm20"], requests_per_minute=0, monthly_budget_eur=budget
                )
            codes = []
            for _batch in range(5):  # four at a time, over both routers
                codes += await asyncio.gather(*(_outcome(meshes[i % 2]) for i in range(4)))
            # Each refusal is the budget's; the spend reached it and passed it by one at most.
            assert set(codes) == {grpc.StatusCode.OK, grpc.StatusCode.RESOURCE_EXHAUSTED}
            spent = await _spent(accounts)
            assert budget <= spent <= budget + one
        finally:
            for acc in accounts:
                await acc.close()


async def _spent(accounts: list[Accounts]) -> Decimal:
    """The month's spend as the stores recorded it, both routers together."""
    for acc in accounts:
        await acc.budget.flush()
    total = Decimal(0)
    for acc in accounts:
        total += (await acc.store.month_spend(T0)).get("acme", Decimal(0))
    return total
