"""asyncio plumbing every component's background loops share."""

from __future__ import annotations

import asyncio
import contextlib


async def cancel_and_wait(task: asyncio.Task | None) -> None:
    """Cancels a background task (None: nothing to do) and waits until it has stopped; its
    own cancellation is not an error."""
    if task is None:
        return
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def wait_event(event: asyncio.Event, timeout_s: float) -> bool:
    """Whether `event` was set within `timeout_s`. Background loops wait with this, never
    with `asyncio.wait_for(event.wait(), ...)`: on Python 3.11 that swallows a cancellation
    arriving as the event fires, so the loop runs on and whoever cancelled it (a close)
    waits forever. `asyncio.timeout` counts cancellations and lets an outside one through."""
    try:
        async with asyncio.timeout(timeout_s):
            await event.wait()
    except TimeoutError:
        return False
    return True
