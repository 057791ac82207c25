"""Requests/tokens per minute and concurrency, shared by every router through Redis.

The same rules as the in-process `Limiter` (mesh.router.ratelimit): an exact sliding-window
log per tenant (a sorted set of admitted requests, their token counts in a hash and a
running sum), and concurrency as *leases*: a sorted set of request ids scored by an expiry
time. One Lua script checks and admits atomically, so two routers never both take the last
slot; refusals consume nothing.

A router renews its leases every `lease_ttl_s / 3` while their requests run; a router that
dies stops renewing, and its leases expire by themselves within `lease_ttl_s` (the next
admission prunes them). A lease that could not be renewed (Redis unreachable for longer
than the TTL) lapses too: concurrency may then briefly exceed the limit, never block forever.

Redis unreachable: admission raises 503 `shared_state_unavailable` (fail closed); releasing
a lease that cannot be written is logged and left to expire.
"""

from __future__ import annotations

import itertools
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass

from mesh.errors import RateLimited
from mesh.redis_state import failing_closed
from mesh.router.access import Admission
from mesh.router.ratelimit import WINDOW_S, format_reset, limit_headers
from mesh.router.shared.leases import Leases
from mesh.router.tenants import Tier

log = logging.getLogger(__name__)

# KEYS: window zset, tokens hash, tokens sum, leases zset
# ARGV: now_ms, window_ms, rpm, tpm, concurrency, estimate, id, lease_until_ms
# -> {verdict, in_flight, requests in window, tokens in window, wait_ms}
#    verdict 0 admitted, 1 concurrency, 2 rpm, 3 request over tpm, 4 tpm
ACQUIRE_LUA = """
local now, win = tonumber(ARGV[1]), tonumber(ARGV[2])
local rpm, tpm, conc = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local est, id, lease_until = tonumber(ARGV[6]), ARGV[7], tonumber(ARGV[8])
while true do
  local old = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now - win, 'LIMIT', 0, 500)
  if #old == 0 then break end
  local gone = 0
  for _, t in ipairs(redis.call('HMGET', KEYS[2], unpack(old))) do gone = gone + (tonumber(t) or 0) end
  redis.call('ZREM', KEYS[1], unpack(old))
  redis.call('HDEL', KEYS[2], unpack(old))
  redis.call('DECRBY', KEYS[3], gone)
end
redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', now)
local in_flight = redis.call('ZCARD', KEYS[4])
local count = redis.call('ZCARD', KEYS[1])
local tokens = tonumber(redis.call('GET', KEYS[3]) or '0')
local newest = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
local reset = 0
if #newest > 0 then reset = tonumber(newest[2]) + win - now end
if conc > 0 and in_flight >= conc then return {1, in_flight, count, tokens, 1000, reset} end
if rpm > 0 and count >= rpm then
  local first = redis.call('ZRANGE', KEYS[1], count - rpm, count - rpm, 'WITHSCORES')
  return {2, in_flight, count, tokens, tonumber(first[2]) + win - now, reset}
end
if tpm > 0 and est > tpm then return {3, in_flight, count, tokens, win, reset} end
if tpm > 0 and tokens + est > tpm then
  local excess, wait, start = tokens + est - tpm, win, 0
  while wait == win do
    local batch = redis.call('ZRANGE', KEYS[1], start, start + 499, 'WITHSCORES')
    if #batch == 0 then break end
    for i = 1, #batch, 2 do
      excess = excess - (tonumber(redis.call('HGET', KEYS[2], batch[i])) or 0)
      if excess <= 0 then wait = tonumber(batch[i + 1]) + win - now break end
    end
    start = start + 500
  end
  return {4, in_flight, count, tokens, wait, reset}
end
redis.call('ZADD', KEYS[1], now, id)
redis.call('HSET', KEYS[2], id, est)
redis.call('INCRBY', KEYS[3], est)
redis.call('ZADD', KEYS[4], lease_until, id)
for i = 1, 3 do redis.call('PEXPIRE', KEYS[i], win * 2) end
redis.call('PEXPIRE', KEYS[4], math.max(lease_until - now, win) * 2)
return {0, in_flight + 1, count + 1, tokens + est, 0, win}
"""

# KEYS: tokens hash, tokens sum, leases zset; ARGV: id, actual tokens (-1: unknown)
RELEASE_LUA = """
redis.call('ZREM', KEYS[3], ARGV[1])
local actual = tonumber(ARGV[2])
if actual >= 0 then
  local old = redis.call('HGET', KEYS[1], ARGV[1])
  if old then
    redis.call('HSET', KEYS[1], ARGV[1], actual)
    redis.call('INCRBY', KEYS[2], actual - tonumber(old))
  end
end
return 1
"""

_REFUSALS = {
    1: "Too many concurrent requests for tenant '{t}' (tier {tier}): limit {conc}.",
    2: "Rate limit reached for requests per minute for tenant '{t}' (tier {tier}): "
    "limit {rpm}, used {used}.",
    3: "Request too large for tokens per minute (tier {tier}): limit {tpm}, requested {est}. "
    "Lower max_tokens or the prompt size.",
    4: "Rate limit reached for tokens per minute for tenant '{t}' (tier {tier}): limit {tpm}, "
    "used {tokens}, requested {est}.",
}


@dataclass(slots=True)
class SharedTicket(Admission):
    """An admission holding a lease (concurrency) and a window entry in Redis."""

    tenant: str = ""
    id: str = ""
    released: bool = False


def tenant_keys(prefix: str, tenant: str) -> tuple[str, str, str, str]:
    # One hash tag per tenant: the script's keys live on one Redis Cluster slot.
    base = f"{prefix}:{{{tenant}}}"
    return f"{base}:win", f"{base}:wintok", f"{base}:winsum", f"{base}:leases"


class RedisLimiter:
    """The async twin of `Limiter` over Redis (see the module docstring)."""

    def __init__(
        self,
        client,
        prefix: str,
        *,
        lease_ttl_s: float = 30.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._redis, self._prefix, self._clock = client, prefix, clock
        self._acquire = client.register_script(ACQUIRE_LUA)
        self._release = client.register_script(RELEASE_LUA)
        self._ids = itertools.count()
        self._router = f"{os.getpid()}-{os.urandom(4).hex()}"
        self.leases = Leases(client, lease_ttl_s, clock)

    async def admit(self, tenant: str, tier: Tier, estimated_tokens: int) -> SharedTicket:
        """Admits one request or raises RateLimited (refusals consume nothing); 503 while
        Redis is unreachable."""
        if not (tier.requests_per_minute or tier.tokens_per_minute or tier.concurrent_requests):
            # Nothing to count (an unlimited tier): no round trip, nothing to fail closed on.
            return SharedTicket(estimated_tokens=estimated_tokens, tenant=tenant, released=True)
        now = self._clock()
        lease_id = f"{self._router}-{next(self._ids)}"
        keys = tenant_keys(self._prefix, tenant)
        args = (
            int(now * 1000),
            int(WINDOW_S * 1000),
            tier.requests_per_minute,
            tier.tokens_per_minute,
            tier.concurrent_requests,
            estimated_tokens,
            lease_id,
            self.leases.until_ms(),
        )
        async with failing_closed("the rate limits"):
            verdict, _in_flight, count, tokens, wait_ms, reset_ms = await self._acquire(keys, args)
        headers = limit_headers(tier, count, tokens, reset_ms / 1000)
        if verdict:
            wait = max(wait_ms / 1000, 0.001)
            message = _REFUSALS[verdict].format(
                t=tenant,
                tier=tier.name,
                conc=tier.concurrent_requests,
                rpm=tier.requests_per_minute,
                tpm=tier.tokens_per_minute,
                used=count,
                tokens=tokens,
                est=estimated_tokens,
            )
            raise RateLimited(
                f"{message} Please try again in {format_reset(wait)}.",
                code="rate_limit_exceeded",
                retry_after=wait,
                headers=headers,
            )
        self.leases.hold(lease_id, keys[3])
        return SharedTicket(
            headers=headers, estimated_tokens=estimated_tokens, tenant=tenant, id=lease_id
        )

    async def settle(self, ticket: Admission, actual_tokens: int | None) -> None:
        """Frees the lease and replaces the token estimate by the real count (once)."""
        if not isinstance(ticket, SharedTicket) or ticket.released:
            return
        ticket.released = True
        self.leases.drop(ticket.id)
        keys = tenant_keys(self._prefix, ticket.tenant)
        actual = -1 if actual_tokens is None else actual_tokens
        try:
            await self._release((keys[1], keys[2], keys[3]), (ticket.id, actual))
        except Exception:  # noqa: BLE001 - the lease expires by itself within its TTL
            log.warning(
                "could not release lease %s of %s in Redis; it expires within %.0f s",
                ticket.id,
                ticket.tenant,
                self.leases.ttl_s,
                exc_info=True,
            )

    async def close(self) -> None:
        await self.leases.close()
