"""Waiting for an event, or a while: what every background loop does between rounds."""

from __future__ import annotations

import asyncio


async def wake_or_timeout(event: asyncio.Event, seconds: float) -> bool:
    """Wait until `event` is set or `seconds` have passed; True when it was set.

    Not `asyncio.wait_for(event.wait(), seconds)`: on Python 3.11 that returns normally when a
    cancellation arrives in the same turn of the loop as the event is set (it sees the event's
    wait done and returns its result), so the cancellation is lost, the loop goes on, and
    whoever cancelled it to shut down waits forever. `asyncio.timeout` tells its own
    cancellation from the caller's and never swallows the caller's."""
    try:
        async with asyncio.timeout(seconds):
            await event.wait()
    except TimeoutError:
        return False
    return True
