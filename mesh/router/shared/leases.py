"""Leases: sorted-set members scored by an expiry time, renewed while their owner lives.

A router adds `member -> expiry` to a sorted set when it takes something (a concurrency
slot, a budget hold) and keeps pushing the expiry `ttl_s` ahead every `ttl_s / 3` while it
holds it. A router that dies stops renewing, so whatever it held expires by itself within
`ttl_s`: the scripts that read these sets drop members whose expiry passed. A renewal that
cannot reach Redis is retried next round; past the TTL the lease lapses (never held forever).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from mesh.aio import cancel_and_wait

log = logging.getLogger(__name__)


class Leases:
    def __init__(self, client, ttl_s: float, clock: Callable[[], float] = time.time) -> None:
        self._redis, self.ttl_s, self._clock = client, ttl_s, clock
        self._live: dict[str, str] = {}  # member -> its sorted set
        self._task: asyncio.Task | None = None

    def until_ms(self) -> int:
        """The expiry of a lease taken or renewed now."""
        return int((self._clock() + self.ttl_s) * 1000)

    def hold(self, member: str, key: str) -> None:
        """Renews `member` of `key` from now on (its owner added it with `until_ms()`)."""
        self._live[member] = key
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._renew_forever(), name="lease-renewal")

    def drop(self, member: str) -> None:
        self._live.pop(member, None)

    def __len__(self) -> int:
        return len(self._live)

    async def renew(self) -> None:
        """Pushes every held lease's expiry `ttl_s` ahead (one round trip); XX: a lease
        that already lapsed is not brought back."""
        if not self._live:
            return
        until = self.until_ms()
        async with self._redis.pipeline(transaction=False) as pipe:
            for member, key in list(self._live.items()):
                pipe.zadd(key, {member: until}, xx=True)
            await pipe.execute()

    async def _renew_forever(self) -> None:
        while self._live:
            await asyncio.sleep(self.ttl_s / 3)
            try:
                await self.renew()
            except Exception:  # noqa: BLE001 - retried next round; leases lapse after the TTL
                log.warning("could not renew %d leases in Redis", len(self._live), exc_info=True)

    async def close(self) -> None:
        """Stops renewing (the leases then expire unless released)."""
        await cancel_and_wait(self._task)
        self._task = None
