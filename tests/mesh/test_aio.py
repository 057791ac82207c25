"""mesh.aio.wait_event: a background loop waiting on an event stops when cancelled, however
the cancellation lines up with the event (on Python 3.11 `asyncio.wait_for` swallowed it,
and a router's close waited forever on its change poll). Loop turns, never wall time."""

from __future__ import annotations

import asyncio

import pytest

from mesh.aio import wait_event


async def _turns(n: int) -> None:
    for _ in range(n):
        await asyncio.sleep(0)


@pytest.mark.parametrize("turns_before_cancel", range(8))
async def test_a_cancel_that_races_the_event_stops_the_loop(turns_before_cancel: int) -> None:
    event = asyncio.Event()

    async def poll_forever() -> None:
        while True:
            await wait_event(event, 3600)
            event.clear()

    task = asyncio.create_task(poll_forever())
    await _turns(3)
    event.set()
    await _turns(turns_before_cancel)
    task.cancel()
    await _turns(20)
    assert task.cancelled()


async def test_it_says_whether_the_event_came() -> None:
    event = asyncio.Event()
    assert not await wait_event(event, 0.01)
    event.set()
    assert await wait_event(event, 3600)
