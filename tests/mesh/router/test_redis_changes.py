"""A key or tenant change made on one router reaches the others (#17): Redis pub/sub plus a
version poll, each router reloading from the shared store (one SQLite file here, as the
PostgreSQL store would be shared). Waits are bounded polls, never timing asserts."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from pathlib import Path

import pytest
from accounts_testkit import PEPPER, T0
from redis_testkit import REDIS_URL, TEST_TIMEOUT_S, TcpProxy, target_of, unique_prefix

from mesh.errors import PermissionDenied, Unauthenticated
from mesh.router.access import check_model_allowed
from mesh.router.accounts import Accounts
from mesh.router.keys import KeyHasher
from mesh.router.shared import SharedState
from mesh.router.store import SqliteStore
from mesh.router.tenants import DEFAULT_TIERS, Tenant


async def eventually(probe: Callable[[], Awaitable[bool]], what: str) -> None:
    """`probe` becomes true within 500 tries of 20 ms (10 s: far above the 0.5 s poll, so a
    slow machine cannot fail it; a feed that never delivers does)."""
    for _ in range(500):
        if await probe():
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"never happened: {what}")


async def _routers(tmp_path: Path, url: str, prefix: str, n: int = 2) -> list[Accounts]:
    out = []
    for _ in range(n):
        acc = Accounts(
            SqliteStore(tmp_path / "shared.sqlite3"),
            KeyHasher(PEPPER),
            dict(DEFAULT_TIERS),
            rotation_check_s=3600,
            shared=SharedState.connect(url, prefix, timeout_s=TEST_TIMEOUT_S),
        )
        await acc.start()
        out.append(acc)
    return out


@pytest.fixture
async def two_routers(tmp_path: Path) -> AsyncIterator[list[Accounts]]:
    async with unique_prefix() as prefix:
        routers = await _routers(tmp_path, REDIS_URL, prefix)
        yield routers
        for acc in routers:
            await acc.close()


async def _refused(acc: Accounts, secret: str) -> bool:
    try:
        await acc.authenticate(secret)
    except Unauthenticated:
        return True
    return False


async def test_a_revocation_on_one_router_is_enforced_on_the_other(two_routers) -> None:
    a, b = two_routers
    await a.directory.save_tenant(Tenant("acme", tier="free", created_at=T0))
    key, secret = await a.directory.create_key("acme", None, 0.0, False)
    await eventually(lambda: _accepted(b, secret), "router B learns the new key")
    await a.directory.revoke(key.id)
    await eventually(lambda: _refused(b, secret), "router B refuses the revoked key")


async def test_tier_and_permission_changes_reach_the_other_router(two_routers) -> None:
    a, b = two_routers
    tenant = await a.directory.save_tenant(Tenant("acme", tier="free", created_at=T0))
    _key, secret = await a.directory.create_key("acme", None, 0.0, False)
    await eventually(lambda: _accepted(b, secret), "router B learns the key")
    await a.directory.save_tenant(replace(tenant, tier="premium", model_patterns=("small-*",)))

    async def changed() -> bool:
        principal = await b.authenticate(secret)
        return principal.tier == "premium"

    await eventually(changed, "router B sees the new tier")
    principal = await b.authenticate(secret)
    check_model_allowed(principal, "small-1")
    with pytest.raises(PermissionDenied):
        check_model_allowed(principal, "large-1")


async def test_a_change_made_while_redis_is_away_is_announced_when_it_is_back(
    tmp_path: Path,
) -> None:
    proxy = TcpProxy(*target_of(REDIS_URL))
    await proxy.start()
    async with unique_prefix() as prefix:
        a, b = await _routers(tmp_path, proxy.url, prefix)
        try:
            await a.directory.save_tenant(Tenant("acme", tier="free", created_at=T0))
            key, secret = await a.directory.create_key("acme", None, 0.0, False)
            await eventually(lambda: _accepted(b, secret), "router B learns the key")
            await proxy.cut()
            await a.directory.revoke(key.id)  # in the store; Redis cannot hear of it
            assert await _refused(a, secret)
            await proxy.restore()
            await eventually(lambda: _refused(b, secret), "router B catches up")
        finally:
            await proxy.cut()
            for acc in (a, b):
                await acc.close()


async def _accepted(acc: Accounts, secret: str) -> bool:
    return not await _refused(acc, secret)
