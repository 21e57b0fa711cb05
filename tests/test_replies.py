"""A turn's reply leaves straight after the turn's commit: the turn leases its conversation's
next message in its own transaction, and each send's record leases the one after it, so no
reply waits for a claim of the dispatcher's loop. Order and at-most-one-worker still hold."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from bot.dispatcher import Dispatcher
from bot.inbound import TextReceived
from bot.service import ConversationService
from tests.backends import BACKENDS, Backend, open_backend
from tests.conftest import FakeClock
from tests.fakes import RecordingSender
from tests.test_service import catalog, started


@pytest.fixture(params=BACKENDS)
async def backend(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Backend]:
    async with open_backend(request.param, tmp_path) as opened:
        yield opened


async def until(condition: Callable[[], bool], what: str) -> None:
    for _ in range(250):
        if condition():
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def texts(sender: RecordingSender) -> list[str]:
    return [str(item.payload["text"]) for item in sender.sent]


async def test_replies_go_out_without_the_claim_loop(backend: Backend) -> None:
    sender = RecordingSender()
    clock = FakeClock()
    # The loop waits 30 s between claims and nothing wakes it: only the turns' own leases and
    # the records' leases can send within the test's few seconds.
    dispatcher = Dispatcher(backend.storage, {"send_text": sender}, clock, idle_wait=30)
    service = ConversationService(backend.storage, catalog(), clock, replies=dispatcher)
    loop = asyncio.create_task(dispatcher.run())
    try:
        await asyncio.sleep(0.1)  # the loop has claimed nothing and waits
        conversation_id = await started(backend, service)
        # The greeting leased by the turn; the question by the greeting's record, after it.
        await until(lambda: texts(sender) == ["Hi Ana!", "Which product?"], "the first turn")
        await service.handle(conversation_id, TextReceived("alpha"))
        await until(lambda: texts(sender)[2:] == ["Budget?"], "the reply to an answer")
    finally:
        loop.cancel()
        with pytest.raises(asyncio.CancelledError):
            await loop
    rows = await backend.outbox()
    assert [(row["status"], row["attempts"]) for row in rows] == [("sent", 1)] * 3


async def test_a_turn_leases_nothing_when_no_dispatcher_runs(backend: Backend) -> None:
    sender = RecordingSender()
    clock = FakeClock()
    dispatcher = Dispatcher(backend.storage, {"send_text": sender}, clock)
    service = ConversationService(backend.storage, catalog(), clock, replies=dispatcher)
    await started(backend, service)
    assert [row["attempts"] for row in await backend.outbox()] == [0, 0]
    # Left for whoever dispatches next, in order, at once.
    assert await dispatcher.run_once() == 1
    assert await dispatcher.run_once() == 1
    assert texts(sender) == ["Hi Ana!", "Which product?"]
