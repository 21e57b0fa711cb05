"""Answers to reps in their Telegram group ("Only text reaches the prospect from here", "Take
this lead over first"...): outbox rows (kind `rep_note`) sent by the dispatcher, so they are
paced and retried like any message. What the group hears about leads themselves is written with
each turn (telegram_reps_watch)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from storage.rep_threads import OutboxEntry, SqlRepThreads
from webhooks.channels.telegram_reps_watch import REP_NOTE, note_payload


class RepsNotifier:
    def __init__(
        self,
        threads: SqlRepThreads,
        *,
        chat_id: int,
        clock: Callable[[], datetime],
        wake: Callable[[], None],
    ) -> None:
        self.threads = threads
        self.chat_id = chat_id
        self._clock = clock
        self._wake = wake

    async def note(
        self,
        key: str,
        text: str,
        *,
        conversation_id: int | None = None,
        reply_to: int | None = None,
        topic: int | None = None,
    ) -> None:
        """Queue a message to the group (an answer to a rep), and wake the dispatcher."""
        payload = note_payload(
            self.chat_id, text, conversation_id=conversation_id, reply_to=reply_to, topic=topic
        )
        if await self.threads.queue([OutboxEntry(REP_NOTE, key, payload)], self._clock()):
            self._wake()
