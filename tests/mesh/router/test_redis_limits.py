"""Limits shared through Redis (#17): several routers, one tenant, one set of limits.

"Routers" here are separate admission stacks (each its own Redis client, pool and lease
renewal) over one Redis and one key prefix, as two router processes would be. The limit
rules themselves run against both backends (in process and Redis), parametrised. Clocks are
injected: nothing here depends on wall-clock time.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from decimal import Decimal
from pathlib import Path

import grpc
import pytest
from accounts_testkit import T0, FakeClock
from redis_testkit import REDIS_URL, TEST_TIMEOUT_S, TcpProxy, target_of, unique_prefix

from mesh.config import ConfigError
from mesh.errors import QuotaExceeded, RateLimited, Unavailable
from mesh.redis_state import SHARED_STATE_UNAVAILABLE
from mesh.router.access import RequestRecord
from mesh.router.accounts import build_access
from mesh.router.keys import format_key
from mesh.router.ratelimit import Budget, Limiter
from mesh.router.shared import SharedState
from mesh.router.tenants import DEFAULT_TIERS, Tenant, Tier

RPM20 = replace(
    DEFAULT_TIERS["free"], requests_per_minute=20, tokens_per_minute=0, concurrent_requests=0
)
CONC2 = replace(RPM20, requests_per_minute=0, concurrent_requests=2)
TPM = replace(RPM20, requests_per_minute=0, tokens_per_minute=1000)


@dataclass
class Stack:
    """One router's admission parts."""

    limiter: Limiter | object
    budget: Budget | object


@contextlib.asynccontextmanager
async def _redis_stacks() -> AsyncIterator:
    """make(n, clock, lease_ttl_s) -> n routers sharing one Redis prefix."""
    states: list[SharedState] = []
    async with unique_prefix() as prefix:

        def make(n: int, clock: FakeClock, lease_ttl_s: float = 30.0) -> list[Stack]:
            out = []
            for _ in range(n):
                state = SharedState.connect(
                    REDIS_URL,
                    prefix,
                    lease_ttl_s=lease_ttl_s,
                    clock=clock,
                    timeout_s=TEST_TIMEOUT_S,
                )
                states.append(state)
                out.append(Stack(state.limiter, state.budget))
            return out

        try:
            yield make
        finally:
            for state in states:
                await state.close()


@pytest.fixture
async def redis_routers() -> AsyncIterator:
    async with _redis_stacks() as make:
        yield make


@pytest.fixture(params=["memory", "redis"])
async def routers(request) -> AsyncIterator:
    """The same limit rules on both backends: make(n, clock) -> n stacks (in process: the
    one router's parts n times, since in-process state cannot be shared). Only the Redis
    cases skip when Redis does not answer."""
    if request.param == "redis":
        async with _redis_stacks() as make:
            yield make
        return

    def make(n: int, clock: FakeClock, lease_ttl_s: float = 30.0) -> list[Stack]:
        one = Stack(Limiter(clock), Budget(clock))
        return [one] * n

    yield make


async def _reserve(stack: Stack, tier: Tier, cost: Decimal):
    """As a request does: the check at admission, then the hold (atomic in Redis)."""
    stack.budget.check("acme", tier)
    return await stack.budget.reserve("acme", tier, cost)


# -- the rules, on both backends ---------------------------------------------------------------


async def test_sixty_requests_over_two_routers_admit_exactly_twenty(routers) -> None:
    a, b = routers(2, FakeClock())
    tries = [(a if i % 2 else b).limiter.admit("acme", RPM20, 1) for i in range(60)]
    results = await asyncio.gather(*tries, return_exceptions=True)
    admitted = [r for r in results if not isinstance(r, BaseException)]
    refused = [r for r in results if isinstance(r, RateLimited)]
    assert len(admitted) == 20 and len(refused) == 40
    assert "requests per minute" in refused[0].message and refused[0].http_status == 429
    assert refused[0].headers["x-ratelimit-remaining-requests"] == "0"


async def test_the_window_slides(routers) -> None:
    clock = FakeClock()
    a, b = routers(2, clock)
    for i in range(20):
        await (a, b)[i % 2].limiter.admit("acme", RPM20, 1)
        clock.advance(1)
    with pytest.raises(RateLimited) as refused:
        await b.limiter.admit("acme", RPM20, 1)
    assert refused.value.retry_after == pytest.approx(40.0)  # the first leaves at T0+60
    clock.advance(40)
    ticket = await a.limiter.admit("acme", RPM20, 1)
    assert ticket.headers["x-ratelimit-remaining-requests"] == "0"


async def test_concurrency_two_holds_across_routers(routers) -> None:
    a, b = routers(2, FakeClock())
    first = await a.limiter.admit("acme", CONC2, 1)
    await b.limiter.admit("acme", CONC2, 1)
    for stack in (a, b):
        with pytest.raises(RateLimited, match="concurrent"):
            await stack.limiter.admit("acme", CONC2, 1)
    await a.limiter.settle(first, 1)
    await b.limiter.admit("acme", CONC2, 1)
    with pytest.raises(RateLimited, match="concurrent"):
        await a.limiter.admit("acme", CONC2, 1)


async def test_tokens_per_minute_count_the_real_usage(routers) -> None:
    a, b = routers(2, FakeClock())
    ticket = await a.limiter.admit("acme", TPM, 900)
    with pytest.raises(RateLimited, match="tokens per minute"):
        await b.limiter.admit("acme", TPM, 200)
    await a.limiter.settle(ticket, 100)  # the real usage replaces the estimate
    assert (await b.limiter.admit("acme", TPM, 800)).headers[
        "x-ratelimit-remaining-tokens"
    ] == "100"
    with pytest.raises(RateLimited, match="too large"):
        await b.limiter.admit("acme", TPM, 1001)


async def test_budget_is_never_overshot_by_more_than_one_request(routers) -> None:
    clock = FakeClock()
    tier = replace(RPM20, requests_per_minute=0, monthly_budget_eur=Decimal("1"))
    a, b = routers(2, clock)
    cost = Decimal("0.3")
    admitted = 0
    for _round in range(5):  # concurrent reservations from both routers, then settle
        tries = [_reserve((a, b)[i % 2], tier, cost) for i in range(6)]
        results = await asyncio.gather(*tries, return_exceptions=True)
        holds = [
            (s, h)
            for s, h in zip([a, b] * 3, results, strict=True)
            if not isinstance(h, BaseException)
        ]
        assert all(isinstance(r, QuotaExceeded) for r in results if isinstance(r, BaseException))
        for stack, hold in holds:
            stack.budget.add("acme", cost, clock())
            stack.budget.release(hold)
        admitted += len(holds)
        for stack in (a, b):
            if hasattr(stack.budget, "flush"):
                await stack.budget.flush()
    # 0.3 a request against 1 EUR: the 4th request is the one admitted last (1.2 EUR).
    assert admitted == 4
    spent = admitted * cost
    assert Decimal(1) <= spent <= Decimal(1) + cost


# -- Redis only: leases, outages -----------------------------------------------------------------


async def test_a_dead_routers_leases_free_themselves_within_the_ttl(redis_routers) -> None:
    clock = FakeClock()
    a, b = redis_routers(2, clock, lease_ttl_s=5.0)
    await a.limiter.admit("acme", CONC2, 1)
    await a.limiter.admit("acme", CONC2, 1)
    await a.limiter.leases.close()  # router A dies: no release, no more renewals
    clock.advance(4.9)
    with pytest.raises(RateLimited, match="concurrent"):
        await b.limiter.admit("acme", CONC2, 1)
    clock.advance(0.2)  # past the TTL: both leases lapsed
    await b.limiter.admit("acme", CONC2, 1)
    await b.limiter.admit("acme", CONC2, 1)


async def test_a_live_router_renews_its_leases(redis_routers) -> None:
    clock = FakeClock()
    a, b = redis_routers(2, clock, lease_ttl_s=5.0)
    await a.limiter.admit("acme", CONC2, 1)
    await a.limiter.admit("acme", CONC2, 1)
    for _ in range(4):  # 20 s of a long request, renewed as the renewal task does
        clock.advance(4)
        await a.limiter.leases.renew()
    with pytest.raises(RateLimited, match="concurrent"):
        await b.limiter.admit("acme", CONC2, 1)


async def test_a_dead_routers_budget_holds_expire(redis_routers) -> None:
    clock = FakeClock()
    tier = replace(RPM20, requests_per_minute=0, monthly_budget_eur=Decimal("1"))
    a, b = redis_routers(2, clock, lease_ttl_s=5.0)
    await a.budget.reserve("acme", tier, Decimal("1"))
    await a.budget.close()  # dies holding the whole budget
    with pytest.raises(QuotaExceeded, match="reserved for requests in flight"):
        await b.budget.reserve("acme", tier, Decimal("0.1"))
    clock.advance(5.1)
    await b.budget.reserve("acme", tier, Decimal("0.1"))


async def test_redis_unreachable_fails_closed_with_503_and_resumes() -> None:
    proxy = TcpProxy(*target_of(REDIS_URL))
    await proxy.start()
    async with unique_prefix() as prefix:
        state = SharedState.connect(proxy.url, prefix, clock=FakeClock(), timeout_s=TEST_TIMEOUT_S)
        try:
            await state.limiter.admit("acme", RPM20, 1)
            await proxy.cut()
            for what, call in (
                ("rate limits", lambda: state.limiter.admit("acme", RPM20, 1)),
                ("budget", lambda: state.budget.reserve("acme", RPM20, Decimal("0.1"))),
            ):
                with pytest.raises(Unavailable) as down:
                    await call()
                err = down.value
                assert err.code == SHARED_STATE_UNAVAILABLE and what in err.message
                assert err.http_status == 503 and err.kind.grpc_code == grpc.StatusCode.UNAVAILABLE
                assert err.to_openai()["error"]["type"] == "service_unavailable"
            await proxy.restore()
            # the same client, no restart: the pool reconnects on the next call
            ticket = await state.limiter.admit("acme", RPM20, 1)
            assert ticket.headers["x-ratelimit-remaining-requests"] == "18"
        finally:
            await proxy.cut()
            await state.close()


# -- wired into the accounts by LLMAAS_REDIS_URL -----------------------------------------------


async def test_two_routers_accounts_share_the_limits(tmp_path) -> None:
    """build_access with LLMAAS_REDIS_URL: admit/release of two routers' Accounts (each
    with its own store here) meet in Redis; without it the in-process limiter is used."""
    plain = build_access({}, {"LLMAAS_RUN_DIR": str(tmp_path / "plain")})
    assert isinstance(plain.limiter, Limiter) and plain.shared is None
    config = {"tiers": {"free": {"requests_per_minute": 3, "concurrent_requests": 2}}}
    async with unique_prefix() as prefix:
        routers = []
        for name in ("a", "b"):
            environ = {
                "LLMAAS_RUN_DIR": str(tmp_path / name),
                "LLMAAS_KEY_PEPPER": "p" * 32,
                "LLMAAS_REDIS_URL": REDIS_URL,
                "LLMAAS_REDIS_PREFIX": prefix,
                "LLMAAS_REDIS_TIMEOUT_S": str(TEST_TIMEOUT_S),
            }
            acc = build_access(config, environ)
            await acc.start()
            await acc.directory.save_tenant(Tenant("acme", tier="free", created_at=T0))
            routers.append(acc)
        try:
            a, b = routers
            secret = format_key("acme0000000001")
            for acc in routers:
                await acc.directory.ensure_key("acme", secret, admin=False)
            pa, pb = await a.authenticate(secret), await b.authenticate(secret)
            first = await a.admit(pa, "m", 10)
            second = await b.admit(pb, "m", 10)
            with pytest.raises(RateLimited, match="concurrent"):
                await a.admit(pa, "m", 10)
            record = RequestRecord("r1", "chat.completions", "m", "ok", 200, principal=pa)
            await a.release(pa, first, record)
            third = await b.admit(pb, "m", 10)  # the third request of the minute
            await b.release(pb, first, record)  # released once only
            with pytest.raises(RateLimited, match="concurrent"):
                await a.admit(pa, "m", 10)
            for ticket in (second, third):
                await b.release(pb, ticket, record)
            with pytest.raises(RateLimited, match="requests per minute"):
                await a.admit(pa, "m", 10)
        finally:
            for acc in routers:
                await acc.close()


async def test_settle_writes_made_while_redis_is_away_land_when_it_is_back() -> None:
    proxy = TcpProxy(*target_of(REDIS_URL))
    await proxy.start()
    tier = replace(RPM20, monthly_budget_eur=Decimal("1"))
    clock = FakeClock()
    async with unique_prefix() as prefix:
        state = SharedState.connect(proxy.url, prefix, clock=clock, timeout_s=TEST_TIMEOUT_S)
        try:
            hold = await state.budget.reserve("acme", tier, Decimal("0.4"))
            await proxy.cut()
            state.budget.add("acme", Decimal("0.7"), clock())  # the request settles meanwhile
            state.budget.release(hold)
            await proxy.restore()
            await state.budget.flush()  # retried until Redis answered
            await state.budget.reserve("acme", tier, Decimal("0.4"))  # 0.7 spent, no hold left
            with pytest.raises(QuotaExceeded):  # 0.7 + 0.4 held >= 1
                await state.budget.reserve("acme", tier, Decimal("0.1"))
        finally:
            await proxy.cut()
            await state.close()


async def test_redis_answers_exactly_as_the_in_process_limiter(redis_routers) -> None:
    """The same script of admissions, settlements and clock steps on both limiters: the
    same headers, refusals, messages and retry-after at every step."""
    tier = replace(
        DEFAULT_TIERS["free"], requests_per_minute=4, tokens_per_minute=1000, concurrent_requests=2
    )
    clock = FakeClock()
    local = Limiter(clock)
    (shared,) = redis_routers(1, clock)
    tickets: dict[str, list] = {"local": [], "shared": []}

    async def step(estimate: int) -> list:
        out = []
        for name, limiter in (("local", local), ("shared", shared.limiter)):
            try:
                ticket = await limiter.admit("acme", tier, estimate)
            except RateLimited as err:
                out.append(("refused", err.message, round(err.retry_after, 3), err.headers))
            else:
                tickets[name].append(ticket)
                out.append(("admitted", ticket.headers))
        return out

    async def settle(actual: int) -> None:
        await local.settle(tickets["local"].pop(0), actual)
        await shared.limiter.settle(tickets["shared"].pop(0), actual)

    for estimate, actual, advance in (
        (300, None, 1), (300, None, 1), (300, 250, 2), (100, 100, 5), (900, None, 1),
        (500, 50, 10), (100, None, 1), (10, 10, 30), (10, None, 15), (10, None, 1),
    ):  # fmt: skip
        local_out, shared_out = await step(estimate)
        assert local_out == shared_out, (estimate, local_out, shared_out)
        if actual is not None and tickets["local"]:
            await settle(actual)
        clock.advance(advance)


async def test_a_killed_routers_leases_free_themselves(tmp_path) -> None:
    """A real process holds two leases (renewing them), is killed with SIGKILL, and its
    slots come back by themselves; bounded waits, no timing asserts."""
    async with unique_prefix() as prefix:
        script = tmp_path / "router.py"
        script.write_text(
            "import asyncio, sys\n"
            "from dataclasses import replace\n"
            "from mesh.router.shared import SharedState\n"
            "from mesh.router.tenants import DEFAULT_TIERS\n"
            "async def main():\n"
            f"    state = SharedState.connect({REDIS_URL!r}, {prefix!r}, lease_ttl_s=5.0,\n"
            f"                                timeout_s={TEST_TIMEOUT_S})\n"
            "    tier = replace(DEFAULT_TIERS['free'], requests_per_minute=0,\n"
            "                   concurrent_requests=2)\n"
            "    for _ in range(2):\n"
            "        await state.limiter.admit('acme', tier, 1)\n"
            "    print('held', flush=True)\n"
            "    await asyncio.sleep(600)\n"
            "asyncio.run(main())\n"
        )
        proc = await asyncio.create_subprocess_exec(
            sys.executable, str(script), stdout=asyncio.subprocess.PIPE, cwd=Path.cwd()
        )
        state = SharedState.connect(REDIS_URL, prefix, timeout_s=TEST_TIMEOUT_S)
        try:
            line = await asyncio.wait_for(proc.stdout.readline(), 120)
            assert line.strip() == b"held"
            with pytest.raises(RateLimited, match="concurrent"):
                await state.limiter.admit("acme", CONC2, 1)
            proc.kill()  # kill -9: no release, no more renewals
            await proc.wait()
            for _ in range(300):  # the TTL is 5 s; 60 s is a bound, not an expectation
                try:
                    await state.limiter.admit("acme", CONC2, 1)
                    break
                except RateLimited:
                    await asyncio.sleep(0.2)
            else:
                raise AssertionError("the killed router's leases never expired")
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
            await state.close()


async def test_an_unlimited_tier_needs_no_redis(redis_routers) -> None:
    (stack,) = redis_routers(1, FakeClock())
    free = replace(RPM20, requests_per_minute=0)
    await stack.limiter.settle(await stack.limiter.admit("acme", free, 5), 5)
    limiter = stack.limiter
    assert await limiter.leases._redis.keys(f"{limiter._prefix}:*") == []  # nothing written


def test_bad_redis_settings_are_refused_by_name() -> None:
    assert SharedState.from_env({}) is None  # unset: in-process state
    for environ, name in (
        ({"LLMAAS_REDIS_URL": "http://127.0.0.1:6379"}, "LLMAAS_REDIS_URL"),
        ({"LLMAAS_REDIS_URL": REDIS_URL, "LLMAAS_REDIS_LEASE_TTL_S": "0"}, "LEASE_TTL"),
        ({"LLMAAS_REDIS_URL": REDIS_URL, "LLMAAS_REDIS_TIMEOUT_S": "-1"}, "TIMEOUT"),
        ({"LLMAAS_REDIS_URL": REDIS_URL, "LLMAAS_REDIS_TIMEOUT_S": "soon"}, "TIMEOUT"),
    ):
        with pytest.raises(ConfigError, match=name):
            SharedState.from_env(environ)
