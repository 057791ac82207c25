"""ChangeFeed.close() returns even when a cancellation is swallowed on its way through the
Redis client or the store (it hung a CI run: a router's close waited forever on its change
poll). Fakes only; loop turns and events, never wall time."""

from __future__ import annotations

import asyncio
import contextlib

from mesh.router.shared.changes import ChangeFeed


class _FakeRedis:
    """A version that moves on every read, so every poll reloads; no pub/sub."""

    def __init__(self) -> None:
        self.version = 0

    async def get(self, _key: str) -> int:
        self.version += 1
        return self.version

    def pubsub(self):
        raise ConnectionError("no pub/sub here: the poll covers it")


async def test_close_returns_although_the_reload_swallows_the_cancellation() -> None:
    entered = asyncio.Event()

    async def stubborn_reload() -> None:
        entered.set()
        with contextlib.suppress(asyncio.CancelledError):  # as a library might, by mistake
            await asyncio.Event().wait()

    feed = ChangeFeed(_FakeRedis(), "t", stubborn_reload, poll_s=3600)
    await feed.start()
    feed._wake.set()  # poll now
    await entered.wait()
    closing = asyncio.create_task(feed.close())
    done, _ = await asyncio.wait({closing}, timeout=60)  # a bound on failure only
    assert closing in done, "close() hangs"
    assert feed._tasks == []
