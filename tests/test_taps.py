"""A button tapped before its message's provider id is recorded still answers its question."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncConnection

from bot.ports import Transaction
from bot.records import NewLead, OutboxItem
from storage.db import Database
from storage.transactions import SqlStorage
from tests.conftest import NOW
from webhooks.channels.taps import RECORD_WAIT, question_of_tap


@dataclass
class RecordedAfterFirstRead(Database):
    """The database, with the send's record committed the moment its first read ends: the
    tap's lookup has just missed the record, and every read after it sees it."""

    record: Callable[[], Awaitable[None]] | None = None

    @asynccontextmanager
    async def reading(self) -> AsyncIterator[AsyncConnection]:
        async with super().reading() as connection:
            yield connection
        if self.record is not None:
            record, self.record = self.record, None
            await record()


async def _sent_question(storage: SqlStorage) -> OutboxItem:
    """A conversation whose bot line "Which product?" is queued, not yet recorded as sent."""

    def work(tx: Transaction) -> OutboxItem:
        lead, _ = tx.leads.add(NewLead("api", "t-1", "quote", NOW), "RTAPS1", NOW)
        tx.scripts.ensure("quote", "v1", "source", NOW)
        conversation = tx.conversations.add(
            lead_id=lead.id,
            channel="telegram",
            channel_user_id="42",
            script_id="quote",
            script_version="v1",
            now=NOW,
        )
        message_id = tx.transcript.add(
            conversation_id=conversation.id,
            author="bot",
            text="Which product?",
            status="queued",
            now=NOW,
            question_id="product",
        )
        return OutboxItem(1, "send_text", "k", {}, 1, conversation.id, message_id)

    return await storage.run(work)


async def test_a_tap_that_beats_the_record_of_its_message_finds_its_question(
    database: Database,
) -> None:
    storage = SqlStorage(database)
    try:
        item = await _sent_question(storage)

        async def record_later() -> None:
            await asyncio.sleep(0.3)  # the dispatcher records the send a moment after the tap
            await storage.run(lambda tx: tx.outbox.mark_sent(item, "777", NOW))

        recording = asyncio.create_task(record_later())
        found = await question_of_tap(database, "telegram", "42", "777")
        await recording
        assert found == "product"
        assert RECORD_WAIT > 0.3
        # A message leadbot never sent answers nothing (after the wait).
        assert await question_of_tap(database, "telegram", "42", "999") is None
    finally:
        await storage.close()


async def test_a_record_landing_between_the_taps_two_reads_still_finds_its_question(
    database: Database,
) -> None:
    """The lookup misses the record, which then commits before the check for a send still
    awaiting its id: that check finds none, and the tap must still be read again, not taken
    for a tap on a message leadbot does not know (CI caught this race under load)."""
    storage = SqlStorage(database)
    try:
        item = await _sent_question(storage)

        async def record() -> None:
            await storage.run(lambda tx: tx.outbox.mark_sent(item, "777", NOW))

        racing = RecordedAfterFirstRead(
            database.engine, database.url, database.schema, database.write_gate, record
        )
        assert await question_of_tap(racing, "telegram", "42", "777") == "product"
        assert racing.record is None  # the record did land between the reads
    finally:
        await storage.close()
