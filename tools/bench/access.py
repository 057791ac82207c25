"""Benchmark: the router's per-request cost of key checks and rate limiting (`make bench`).

Measures authenticate + admit + release on a real SQLite-backed Accounts, as the request
path calls them, and prints p50/p99 in microseconds. Goal: under 1 ms p50.
"""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import time
from pathlib import Path

from mesh.router.access import RequestRecord
from mesh.router.accounts import Accounts, Bootstrap
from mesh.router.keys import KeyHasher
from mesh.router.store import SqliteStore
from mesh.router.tenants import DEFAULT_TIERS, Tenant


async def measure(n: int = 5000) -> list[float]:
    with tempfile.TemporaryDirectory() as tmp:
        accounts = Accounts(
            SqliteStore(Path(tmp) / "accounts.sqlite3"),
            KeyHasher(b"bench-pepper-0123456789"),
            dict(DEFAULT_TIERS),
            rotation_check_s=3600,
            bootstrap=Bootstrap(),
        )
        await accounts.start()
        try:
            await accounts.directory.save_tenant(
                Tenant("bench", tier="enterprise", created_at=time.time())
            )
            _key, secret = await accounts.directory.create_key("bench", None, 0.0, False)
            samples = []
            for i in range(n):
                t0 = time.perf_counter()
                principal = await accounts.authenticate(secret)
                admission = await accounts.admit(principal, "smollm2:135m", 100)
                samples.append(time.perf_counter() - t0)
                record = RequestRecord(
                    f"r{i}", "chat.completions", "smollm2:135m", "ok", 200, principal=principal
                )
                await accounts.release(principal, admission, record)
            return samples
        finally:
            await accounts.close()


def main() -> None:
    samples = asyncio.run(measure())
    q = statistics.quantiles(samples, n=100)
    print(
        f"auth + rate limit: p50 {statistics.median(samples) * 1e6:.1f} us, p99 {q[98] * 1e6:.1f} us "
        f"({len(samples)} requests)"
    )


if __name__ == "__main__":
    main()
