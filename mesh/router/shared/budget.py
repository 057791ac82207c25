"""Month-to-date spend per tenant, shared by every router through Redis.

Per tenant and month, a counter of what settled requests cost (integer nano-EUR, exact)
and the *holds* of requests in flight (their estimated cost, a lease each: renewed while
the request runs, expiring with a dead router). `reserve` checks and holds in one Lua
script: a request is admitted only while spend + holds < budget, so across routers the
spend passes the budget by at most the request admitted last (plus any request's real cost
over its estimate, as with one router).

Settling (`add` the real cost, then `release` the hold) comes from synchronous code after
the durable record is written: both are queued, in order, to one writer task. The store
stays the record of truth: at start each router seeds the month's counter from it where
Redis has none (a new month, a flushed Redis).

Redis unreachable: `reserve` raises 503 `shared_state_unavailable` (fail closed); queued
settle writes are retried until Redis answers (holds that lapsed meanwhile are gone, which
is right: their cost is in the spend once the write lands).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
import time
from collections.abc import Callable
from decimal import Decimal

from mesh.redis_state import failing_closed
from mesh.router.ratelimit import Hold, month_of, over_budget
from mesh.router.shared.leases import Leases
from mesh.router.tenants import Tier

log = logging.getLogger(__name__)

NANO = Decimal("1e9")
MAX_QUEUED = 100_000

# KEYS: spent, holds zset, hold amounts hash; ARGV: now_ms, budget, amount, id, until_ms
# -> {admitted 0/1, spent, held (before this hold)}
RESERVE_LUA = """
local now, budget, amount = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local dead = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now)
if #dead > 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
  redis.call('HDEL', KEYS[3], unpack(dead))
end
local held = 0
for _, v in ipairs(redis.call('HVALS', KEYS[3])) do held = held + tonumber(v) end
local spent = tonumber(redis.call('GET', KEYS[1]) or '0')
if budget > 0 and spent + held >= budget then return {0, spent, held} end
redis.call('ZADD', KEYS[2], tonumber(ARGV[5]), ARGV[4])
redis.call('HSET', KEYS[3], ARGV[4], amount)
redis.call('PEXPIRE', KEYS[2], 86400000)
redis.call('PEXPIRE', KEYS[3], 86400000)
return {1, spent, held}
"""


def budget_keys(prefix: str, tenant: str, month: str) -> tuple[str, str, str]:
    """The month's spend, the holds (id -> expiry) and their amounts (one hash tag)."""
    base = f"{prefix}:{{{tenant}}}"
    return f"{base}:spent:{month}", f"{base}:holds", f"{base}:holdamt"


def nano(amount: Decimal) -> int:
    return int((amount * NANO).to_integral_value())


class RedisBudget:
    """`Budget`'s interface (mesh.router.ratelimit) over Redis; see the module docstring.
    `spent`/`held`/`check` read the last figures this router saw (metrics, fast refusals);
    `reserve` is the authoritative check."""

    remote = True  # a round trip per reserve: the pipeline takes it with the limits at once

    def __init__(
        self, client, prefix: str, leases: Leases, clock: Callable[[], float] = time.time
    ) -> None:
        self._redis, self._prefix, self._leases, self._clock = client, prefix, leases, clock
        self._reserve = client.register_script(RESERVE_LUA)
        self._ids = itertools.count()
        self._router = f"{os.getpid()}-{os.urandom(4).hex()}"
        self._seen: dict[str, tuple[str, Decimal, Decimal]] = {}  # tenant -> month, spent, held
        self._queue: asyncio.Queue[tuple] = asyncio.Queue(MAX_QUEUED)
        self._writer: asyncio.Task | None = None

    @property
    def month(self) -> str:
        return month_of(self._clock())

    def seed(self, month: str, spent: dict[str, Decimal]) -> None:
        """The store's month-to-date spend, written where Redis has no counter yet."""
        for tenant, amount in spent.items():
            self._enqueue(("seed", budget_keys(self._prefix, tenant, month)[0], nano(amount)))

    def spent(self, tenant: str) -> Decimal:
        seen = self._seen.get(tenant)
        return seen[1] if seen and seen[0] == self.month else Decimal(0)

    def held(self, tenant: str) -> Decimal:
        seen = self._seen.get(tenant)
        return seen[2] if seen and seen[0] == self.month else Decimal(0)

    def check(self, tenant: str, tier: Tier) -> None:
        """A fast refusal once the spend seen reached the budget (a month's spend only
        grows, so this never goes stale; holds come and go: `reserve` counts them)."""
        if tier.monthly_budget_eur and self.spent(tenant) >= tier.monthly_budget_eur:
            raise over_budget(tenant, tier, Decimal(0))

    async def reserve(self, tenant: str, tier: Tier, amount: Decimal) -> Hold:
        """Checks spend + holds < budget and holds `amount`, atomically across routers;
        raises QuotaExceeded, or 503 while Redis is unreachable."""
        amount = max(Decimal(0), amount)
        if not tier.monthly_budget_eur:
            return Hold(tenant, amount)  # no budget: nothing to hold (the spend still adds up)
        month = self.month
        hold_id = f"{self._router}-{next(self._ids)}"
        keys = budget_keys(self._prefix, tenant, month)
        args = (
            int(self._clock() * 1000),
            nano(tier.monthly_budget_eur),
            nano(amount),
            hold_id,
            self._leases.until_ms(),
        )
        async with failing_closed("the budget"):
            admitted, spent, held = await self._reserve(keys, args)
        spent_eur, held_eur = Decimal(spent) / NANO, Decimal(held) / NANO
        self._seen[tenant] = (month, spent_eur, held_eur + (amount if admitted else 0))
        if not admitted:
            raise over_budget(tenant, tier, held_eur)
        self._leases.hold(hold_id, keys[1])
        return Hold(tenant, amount, hold_id=hold_id)

    def add(self, tenant: str, cost: Decimal, at: float) -> None:
        """A settled request's real cost (queued, written in order)."""
        month = month_of(at)
        seen = self._seen.get(tenant)
        if seen and seen[0] == month:
            self._seen[tenant] = (month, seen[1] + cost, seen[2])
        self._enqueue(("spend", budget_keys(self._prefix, tenant, month)[0], nano(cost)))

    def release(self, hold: Hold) -> None:
        """Ends a reservation (after its real cost was added); idempotent."""
        if hold.released or not hold.hold_id:
            hold.released = True
            return
        hold.released = True
        self._leases.drop(hold.hold_id)
        seen = self._seen.get(hold.tenant)
        if seen:
            self._seen[hold.tenant] = (seen[0], seen[1], max(Decimal(0), seen[2] - hold.amount))
        _spent, holds, amounts = budget_keys(self._prefix, hold.tenant, self.month)
        self._enqueue(("unhold", holds, amounts, hold.hold_id))

    def _enqueue(self, op: tuple) -> None:
        try:
            self._queue.put_nowait(op)
        except asyncio.QueueFull:
            log.error("budget writes to Redis are %d behind; dropped %s", MAX_QUEUED, op[0])
            return
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write_forever(), name="budget-writer")

    async def _write_forever(self) -> None:
        while True:
            ops = [await self._queue.get()]
            while not self._queue.empty() and len(ops) < 500:
                ops.append(self._queue.get_nowait())
            while True:
                try:
                    await self._apply(ops)
                    break
                except Exception:  # noqa: BLE001 - Redis away: retry until it answers
                    log.warning(
                        "%d budget writes to Redis failed; retrying", len(ops), exc_info=True
                    )
                    await asyncio.sleep(0.5)
            for _ in ops:
                self._queue.task_done()

    async def _apply(self, ops: list[tuple]) -> None:
        """One round trip (MULTI/EXEC), in order. A batch that failed is sent again: harmless
        for seeds and unholds; a spend counts twice only if the connection died after Redis
        applied it (the store's usage stays exact)."""
        async with self._redis.pipeline(transaction=True) as pipe:
            for op in ops:
                if op[0] == "seed":
                    pipe.set(op[1], op[2], nx=True, ex=40 * 86400)
                elif op[0] == "spend":
                    pipe.incrby(op[1], op[2]).expire(op[1], 40 * 86400)
                else:
                    pipe.zrem(op[1], op[3]).hdel(op[2], op[3])
            await pipe.execute()

    async def flush(self) -> None:
        """Waits until every queued write is applied (tests, shutdown)."""
        await self._queue.join()

    async def close(self, drain_s: float = 2.0) -> None:
        """Stops renewing holds; gives queued writes `drain_s` to land."""
        await self._leases.close()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._queue.join(), drain_s)
        if self._writer is not None:
            self._writer.cancel()
            self._writer = None
