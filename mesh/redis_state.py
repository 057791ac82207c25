"""Redis for state shared by several processes (LLMAAS_REDIS_URL), and how it fails.

One connection pool per process with sub-second socket and pool timeouts and no client-side
retries, so a dead Redis costs a request at most `timeout_s`, never a stall. Every Redis
error becomes one `Unavailable` (503, code `shared_state_unavailable`, gRPC UNAVAILABLE):
limits fail closed. Nothing here keeps state: when Redis answers again, the next call works
(no restart). Keys are namespaced by LLMAAS_REDIS_PREFIX (default `llmaas`) so several
meshes, or tests, share one Redis without meeting.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Mapping

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from mesh.config import ConfigError, env
from mesh.errors import Unavailable

REDIS_URL_ENV = "LLMAAS_REDIS_URL"
REDIS_PREFIX_ENV = "LLMAAS_REDIS_PREFIX"
REDIS_TIMEOUT_ENV = "LLMAAS_REDIS_TIMEOUT_S"
DEFAULT_PREFIX = "llmaas"
SHARED_STATE_UNAVAILABLE = "shared_state_unavailable"
DEFAULT_TIMEOUT_S = 0.25


def redis_url(environ: Mapping[str, str]) -> str:
    """The configured Redis URL, '' when shared state is off (in-process state)."""
    return environ.get(REDIS_URL_ENV, "").strip()


def redis_prefix(environ: Mapping[str, str]) -> str:
    return environ.get(REDIS_PREFIX_ENV, "").strip() or DEFAULT_PREFIX


def redis_timeout(environ: Mapping[str, str]) -> float:
    """LLMAAS_REDIS_TIMEOUT_S: the longest one Redis call may take (default 0.25 s)."""
    timeout = env(REDIS_TIMEOUT_ENV, float, DEFAULT_TIMEOUT_S, dict(environ))
    if timeout <= 0:
        raise ConfigError(f"{REDIS_TIMEOUT_ENV} must be positive, got {timeout}")
    return timeout


def connect(url: str, *, timeout_s: float = DEFAULT_TIMEOUT_S, max_connections: int = 64):
    """A client over a blocking pool: waits at most `timeout_s` for a free connection,
    a connect, or an answer; no retries (the caller decides, usually: fail closed)."""
    pool = aioredis.BlockingConnectionPool.from_url(
        url,
        max_connections=max_connections,
        timeout=timeout_s,
        socket_timeout=timeout_s,
        socket_connect_timeout=timeout_s,
        retry=Retry(NoBackoff(), 0),
    )
    return aioredis.Redis(connection_pool=pool)


def unavailable(what: str) -> Unavailable:
    return Unavailable(
        f"The shared state store (Redis) is unreachable, so {what} cannot be checked and the "
        "request is refused. Retry in a few seconds.",
        code=SHARED_STATE_UNAVAILABLE,
        retry_after=1,
    )


@contextlib.asynccontextmanager
async def failing_closed(what: str) -> AsyncIterator[None]:
    """Turns any Redis or socket error inside into a 503 `shared_state_unavailable`."""
    try:
        yield
    except (RedisError, OSError, TimeoutError) as exc:
        raise unavailable(what) from exc
