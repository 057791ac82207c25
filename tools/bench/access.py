"""Benchmark: the router's per-request cost of key checks and rate limiting (`make bench`).

Measures authenticate + admit + release on a real SQLite-backed Accounts, as the request
path calls them, and prints p50/p99 in microseconds. Goal: under 1 ms p50.

Then the same with the limits and budget in Redis (LLMAAS_REDIS_URL's mode, #17), against
LLMAAS_BENCH_REDIS_URL (default the local redis://127.0.0.1:6379/0) under a throwaway key
prefix: one Lua round trip per admission. Goal: p99 <= 2 ms. Skipped, saying so, when no
Redis answers.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import tempfile
import time
import uuid
from decimal import Decimal
from pathlib import Path

import uvloop

from mesh.redis_state import connect
from mesh.router.access import RequestRecord
from mesh.router.accounts import Accounts, Bootstrap
from mesh.router.keys import KeyHasher
from mesh.router.shared import SharedState
from mesh.router.store import SqliteStore
from mesh.router.tenants import DEFAULT_TIERS, Tenant, Tier

# Limits high enough for every sample, and a budget, so the admission holds its cost as the
# pipeline does (limits + budget: the whole admission).
BENCH_TIER = Tier("bench", 1_000_000, 0, 128, Decimal("1000000"), 1)


async def measure(n: int = 5000, redis_url: str = "") -> list[float]:
    """Samples of authenticate + admit + budget hold; with `redis_url`, limits and budget
    in Redis."""
    prefix = f"llmaas-bench-{uuid.uuid4().hex[:12]}"
    shared = SharedState.connect(redis_url, prefix) if redis_url else None
    with tempfile.TemporaryDirectory() as tmp:
        accounts = Accounts(
            SqliteStore(Path(tmp) / "accounts.sqlite3"),
            KeyHasher(b"bench-pepper-0123456789"),
            {**DEFAULT_TIERS, BENCH_TIER.name: BENCH_TIER},
            rotation_check_s=3600,
            bootstrap=Bootstrap(),
            shared=shared,
        )
        await accounts.start()
        try:
            await accounts.directory.save_tenant(
                Tenant("bench", tier=BENCH_TIER.name, created_at=time.time())
            )
            _key, secret = await accounts.directory.create_key("bench", None, 0.0, False)
            samples = []
            for i in range(n):
                t0 = time.perf_counter()
                principal = await accounts.authenticate(secret)
                tier = accounts.tier(principal.tier)
                # As the pipeline's Admit step: the limits and the budget hold, at once
                # when they are round trips (Redis), else one after the other.
                admitting = accounts.admit(principal, "smollm2:135m", 100)
                holding = accounts.budget.reserve("bench", tier, Decimal("0.0001"))
                if accounts.budget.remote:
                    admission, hold = await asyncio.gather(admitting, holding)
                else:
                    admission, hold = await admitting, await holding
                samples.append(time.perf_counter() - t0)
                accounts.budget.add("bench", Decimal("0.0001"), time.time())
                accounts.budget.release(hold)
                record = RequestRecord(
                    f"r{i}", "chat.completions", "smollm2:135m", "ok", 200, principal=principal
                )
                await accounts.release(principal, admission, record)
            return samples
        finally:
            if shared is not None:
                keys = [k async for k in shared.client.scan_iter(match=f"{prefix}:*")]
                if keys:
                    await shared.client.delete(*keys)
            await accounts.close()


async def redis_floor(url: str, n: int = 2000) -> list[float] | None:
    """PING round trips: the floor any Redis-backed admission pays on this machine (None:
    no Redis answers)."""
    client = connect(url)
    try:
        await client.ping()
        samples = []
        for _ in range(n):
            t0 = time.perf_counter()
            await client.ping()
            samples.append(time.perf_counter() - t0)
        return samples
    except Exception:  # noqa: BLE001 - any failure: no Redis to measure against
        return None
    finally:
        await client.aclose()


def report(what: str, samples: list[float]) -> None:
    q = statistics.quantiles(samples, n=100)
    print(
        f"{what}: p50 {statistics.median(samples) * 1e6:.1f} us, p99 {q[98] * 1e6:.1f} us "
        f"({len(samples)} requests)"
    )


def main() -> None:
    report("auth + rate limit + budget", asyncio.run(measure()))
    url = os.environ.get("LLMAAS_BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
    floor = uvloop.run(redis_floor(url))
    if floor is None:
        print(f"auth + rate limit + budget (Redis): skipped, no Redis answers at {url}")
        return
    report("Redis PING round trip (the floor)", floor)
    # uvloop, as the router runs (mesh.router.__main__).
    report("auth + rate limit + budget (Redis)", uvloop.run(measure(redis_url=url)))


if __name__ == "__main__":
    main()
