"""Key and tenant changes reach every router: a version counter and a pub/sub channel.

A router that changes a key or tenant (revocation, rotation, tier or permission change)
writes it to the store first (`Directory`), then bumps `{prefix}:directory:version` and
publishes the new version on `{prefix}:directory`. Every router listens on the channel and
also polls the counter every `poll_s` (a notice lost while Redis or the connection was away
is caught by the poll), and on a version it has not seen reloads tenants and keys from the
store, which must be shared (PostgreSQL): within `poll_s` (0.5 s) in the worst case, a few
milliseconds usually.

Redis unreachable: the change is still in the store and applies on the router that made
it; its announcement is retried every `poll_s` until Redis answers, and the other routers
reload then. A reload that fails (store away) is retried at the next poll.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from mesh.aio import cancel_and_wait, wait_event

log = logging.getLogger(__name__)


class ChangeFeed:
    def __init__(
        self,
        client,
        prefix: str,
        reload: Callable[[], Awaitable[None]],
        *,
        poll_s: float = 0.5,
    ) -> None:
        self._redis, self._reload, self.poll_s = client, reload, poll_s
        self._version_key = f"{prefix}:directory:version"
        self._channel = f"{prefix}:directory"
        self._seen: int | None = None
        self._unannounced = 0
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task] = []
        self._closing = False
        self.reloads = 0

    async def start(self) -> None:
        """Remembers the current version (this router just loaded the store) and listens."""
        with contextlib.suppress(Exception):  # Redis away: the poll learns the version later
            self._seen = int(await self._redis.get(self._version_key) or 0)
        self._tasks = [
            asyncio.create_task(self._poll_forever(), name="directory-poll"),
            asyncio.create_task(self._listen_forever(), name="directory-listen"),
        ]

    async def announce(self) -> None:
        """After a change was written to the store: tells the other routers (never raises;
        an announcement Redis could not take is retried by the poll)."""
        self._unannounced += 1
        with contextlib.suppress(Exception):
            await self._announce_pending()

    async def _announce_pending(self) -> None:
        if not self._unannounced:
            return
        pending, self._unannounced = self._unannounced, 0
        try:
            version = int(await self._redis.incr(self._version_key))
        except Exception:
            self._unannounced += pending
            raise
        # Not marked seen: another router's change may share the jump; one reload is cheap.
        await self._redis.publish(self._channel, str(version))

    async def check(self) -> None:
        """Reloads when the shared version moved past the one this router saw."""
        await self._announce_pending()
        version = int(await self._redis.get(self._version_key) or 0)
        if version != self._seen:
            await self._reload()
            self._seen = version
            self.reloads += 1

    # Both loops also stop on `_closing`: a cancellation swallowed on its way through the
    # Redis client or the store (seen under load, Python 3.11) must not hang `close()`.
    async def _poll_forever(self) -> None:
        while not self._closing:
            await wait_event(self._wake, self.poll_s)
            self._wake.clear()
            try:
                await self.check()
            except Exception:  # noqa: BLE001 - Redis or the store away: next poll retries
                log.debug("directory change check failed; retrying", exc_info=True)

    async def _listen_forever(self) -> None:
        while not self._closing:
            try:
                async with self._redis.pubsub() as pubsub:
                    await pubsub.subscribe(self._channel)
                    while not self._closing:
                        msg = await pubsub.get_message(ignore_subscribe_messages=True, timeout=0.2)
                        if msg is not None:
                            self._wake.set()  # the poller reloads now
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - resubscribe; the poll covers the gap
                log.debug("directory change channel lost; resubscribing", exc_info=True)
                await asyncio.sleep(self.poll_s)

    async def close(self) -> None:
        self._closing = True
        self._wake.set()
        for task in self._tasks:
            await cancel_and_wait(task)
        self._tasks = []
