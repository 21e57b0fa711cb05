"""A background loop stops when it is cancelled, even when the cancellation arrives as it is
woken: shutting the app down awaits each loop, and a lost cancellation hangs it for good."""

from __future__ import annotations

import asyncio

import pytest

from bot.wakeups import wake_or_timeout


async def loop_until_cancelled(event: asyncio.Event, rounds: list[int]) -> None:
    """What the dispatcher, the CRM worker and the live pages do between rounds."""
    while True:
        event.clear()
        rounds.append(len(rounds))
        await wake_or_timeout(event, 30)


@pytest.mark.parametrize("turns_between", [0, 1, 2, 3, 4, 5])
async def test_a_cancellation_that_meets_a_wake_stops_the_loop(turns_between: int) -> None:
    event = asyncio.Event()
    rounds: list[int] = []
    task = asyncio.create_task(loop_until_cancelled(event, rounds))
    await asyncio.sleep(0.01)  # the loop waits
    event.set()  # work arrives...
    for _ in range(turns_between):
        await asyncio.sleep(0)
    task.cancel()  # ...as the app shuts down
    done, _ = await asyncio.wait({task}, timeout=2)
    assert task in done, "the loop went on after it was cancelled"
    assert task.cancelled()


async def test_it_says_whether_it_was_woken() -> None:
    event = asyncio.Event()
    assert await wake_or_timeout(event, 0.01) is False
    event.set()
    assert await wake_or_timeout(event, 5) is True
