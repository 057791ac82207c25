"""State every router shares through Redis when LLMAAS_REDIS_URL is set.

Unset (the embedded default), each router keeps its limits and budget holds in process
(mesh.router.ratelimit), exactly as with one router. Set, `SharedState` gives `Accounts` a
`RedisLimiter` (requests/tokens per minute, concurrency leases) and a `RedisBudget`
(spend per tenant per month, holds of requests in flight), and `changes` tells every router
when a key or tenant changed. Failure modes, one per part (details in each module):

- limits and budget (`limits`, `budget`): Redis unreachable -> admission answers 503
  `shared_state_unavailable` (fail closed); service resumes as soon as Redis answers.
- leases (`leases`): a dead router's concurrency slots and budget holds expire within
  LLMAAS_REDIS_LEASE_TTL_S (default 30 s).
- settle writes (`budget`): queued and retried in order until Redis answers.
- change notices (`changes`): a key or tenant change reaches every router within 0.5 s
  (pub/sub, a version poll as fallback); while Redis is away it applies on the router that
  made it and is announced once Redis answers.
- worker registry (`workers`): fails open; each router serves with the workers it knows
  and adopts the others' again once Redis answers.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from mesh.config import ConfigError, env
from mesh.redis_state import DEFAULT_TIMEOUT_S, connect, redis_prefix, redis_timeout, redis_url
from mesh.router.directory import Directory
from mesh.router.shared.budget import RedisBudget
from mesh.router.shared.changes import ChangeFeed
from mesh.router.shared.leases import Leases
from mesh.router.shared.limits import RedisLimiter
from mesh.router.shared.workers import Pool, SharedWorkers

log = logging.getLogger(__name__)

LEASE_TTL_ENV = "LLMAAS_REDIS_LEASE_TTL_S"


@dataclass(slots=True)
class SharedState:
    client: object
    prefix: str
    limiter: RedisLimiter
    budget: RedisBudget
    changes: ChangeFeed | None = field(default=None)
    workers: SharedWorkers | None = field(default=None)

    @classmethod
    def connect(
        cls,
        url: str,
        prefix: str,
        *,
        lease_ttl_s: float = 30.0,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        clock: Callable[[], float] = time.time,
    ) -> SharedState:
        client = connect(url, timeout_s=timeout_s)
        limiter = RedisLimiter(client, prefix, lease_ttl_s=lease_ttl_s, clock=clock)
        budget = RedisBudget(client, prefix, Leases(client, lease_ttl_s, clock), clock)
        return cls(client, prefix, limiter, budget)

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> SharedState | None:
        """None without LLMAAS_REDIS_URL (in-process state)."""
        url = redis_url(environ)
        if not url:
            return None
        if not url.startswith(("redis://", "rediss://", "unix://")):
            raise ConfigError(f"LLMAAS_REDIS_URL must be a redis:// URL, got {url!r}")
        ttl = env(LEASE_TTL_ENV, float, 30.0, environ)
        if ttl <= 0:
            raise ConfigError(f"{LEASE_TTL_ENV} must be positive, got {ttl}")
        timeout = redis_timeout(environ)
        log.info("shared state in Redis (%s, prefix %s)", url.split("@")[-1], redis_prefix(environ))
        return cls.connect(url, redis_prefix(environ), lease_ttl_s=ttl, timeout_s=timeout)

    async def watch(self, directory: Directory) -> None:
        """Announces `directory`'s changes to the other routers and reloads theirs."""
        self.changes = ChangeFeed(self.client, self.prefix, directory.reload)
        directory.on_change = self.changes.announce
        await self.changes.start()

    def share_workers(self, pool: Pool) -> SharedWorkers:
        """Heartbeats the workers announced to this router, adopts the others' (see
        mesh.router.shared.workers)."""
        self.workers = SharedWorkers(self.client, self.prefix, pool)
        self.workers.start()
        return self.workers

    async def close(self) -> None:
        if self.workers is not None:
            await self.workers.close()
        if self.changes is not None:
            await self.changes.close()
        await self.limiter.close()
        await self.budget.close()
        await self.client.aclose()
