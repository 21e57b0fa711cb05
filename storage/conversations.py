"""Conversations and their transcript."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, bindparam, or_, select, update

from bot.errors import ConcurrentUpdateError, ConversationExistsError
from bot.records import Conversation, DeliveryTarget, Window
from bot.state import ConversationState
from storage.prepared import execute
from storage.sql import insert_returning_id, insert_row
from storage.tables import ConversationRow, MessageRow

C = ConversationRow.__table__  # type: ignore[attr-defined]
M = MessageRow.__table__  # type: ignore[attr-defined]

# The statements every turn runs, built once: SQLAlchemy builds a statement's cache key and
# looks up its compiled form on each execution of a new statement object, which cost more than
# SQLite's own work on the row.
_IN_CHAT = (C.c.channel == bindparam("b_channel"), C.c.channel_user_id == bindparam("b_chat"))
_FIND = (
    select(C).where(C.c.lead_id == bindparam("b_lead"), *_IN_CHAT).order_by(C.c.id.desc()).limit(1)
)
# FOR UPDATE holds the row on PostgreSQL until commit: a second worker handling the same
# conversation waits there. SQLite ignores it; its writers are serialised anyway.
_LOCK = select(C).where(C.c.id == bindparam("b_id")).with_for_update()
_LOCK_LATEST_IN_CHAT = select(C).where(*_IN_CHAT).order_by(C.c.id.desc()).limit(1).with_for_update()
# The turn's state, only onto the version the turn read (optimistic concurrency).
_SAVE = update(C).where(C.c.id == bindparam("b_id"), C.c.version == bindparam("b_version"))


def _conversation(row: Any) -> Conversation:
    return Conversation(
        id=row.id,
        lead_id=row.lead_id,
        channel=row.channel,
        channel_user_id=row.channel_user_id,
        script_id=row.script_id,
        script_version=row.script_version,
        state=ConversationState.from_dict(row.state) if row.state else None,
        version=row.version,
        held_by=row.held_by,
        held_by_name=row.held_by_name,
    )


class SqlConversationRepository:
    def __init__(self, connection: Connection) -> None:
        self._connection = connection

    def add(
        self,
        *,
        lead_id: int,
        channel: str,
        channel_user_id: str,
        script_id: str,
        script_version: str,
        now: datetime,
    ) -> Conversation:
        values = {
            "lead_id": lead_id,
            "channel": channel,
            "channel_user_id": channel_user_id,
            "script_id": script_id,
            "script_version": script_version,
            "status": "new",
            "mode": "bot",
            "version": 0,
            "created_at": now,
            "updated_at": now,
        }
        new_id = insert_returning_id(self._connection, C, values)
        if new_id is None:  # another worker opened it a moment ago
            raise ConversationExistsError(f"lead {lead_id} already has a conversation there")
        return Conversation(
            new_id, lead_id, channel, channel_user_id, script_id, script_version, None, 0
        )

    def find(self, lead_id: int, channel: str, channel_user_id: str) -> Conversation | None:
        """The conversation this lead already has in this chat, if any (the newest)."""
        where = {"b_lead": lead_id, "b_channel": channel, "b_chat": channel_user_id}
        row = execute(self._connection, _FIND, where).first()
        return _conversation(row) if row is not None else None

    def lock_latest_in_chat(self, channel: str, channel_user_id: str) -> Conversation | None:
        where = {"b_channel": channel, "b_chat": channel_user_id}
        row = execute(self._connection, _LOCK_LATEST_IN_CHAT, where).first()
        return _conversation(row) if row is not None else None

    def lock(self, conversation_id: int) -> Conversation | None:
        row = execute(self._connection, _LOCK, {"b_id": conversation_id}).first()
        return _conversation(row) if row is not None else None

    def mark_unreachable(self, conversation_id: int, now: datetime) -> None:
        """The prospect blocked the bot: nothing more goes out until they write again."""
        self._connection.execute(
            update(C).where(C.c.id == conversation_id).values(status="unreachable", updated_at=now)
        )

    def mark_abandoned(self, conversation_id: int, question_id: str | None, now: datetime) -> None:
        self._connection.execute(
            update(C)
            .where(C.c.id == conversation_id)
            .values(abandoned_at=now, abandoned_question=question_id)
        )

    def take(self, conversation_id: int, rep_id: int, rep_name: str) -> str | None:
        taken = self._connection.execute(
            update(C)
            .where(C.c.id == conversation_id, or_(C.c.held_by.is_(None), C.c.held_by == rep_id))
            .values(held_by=rep_id, held_by_name=rep_name)
        )
        if taken.rowcount == 1:
            return None
        holder = select(C.c.held_by_name).where(C.c.id == conversation_id)
        return str(self._connection.execute(holder).scalar_one_or_none() or "another rep")

    def release(self, conversation_id: int) -> None:
        self._connection.execute(
            update(C).where(C.c.id == conversation_id).values(held_by=None, held_by_name=None)
        )

    def windows(self, conversation_ids: Sequence[int]) -> dict[int, Window]:
        query = select(C.c.id, C.c.last_inbound_at, C.c.sent_since_inbound).where(
            C.c.id.in_(list(conversation_ids))
        )
        return {
            row.id: Window(row.last_inbound_at, row.sent_since_inbound)
            for row in self._connection.execute(query)
        }

    def count_sent(self, conversation_id: int) -> None:
        self._connection.execute(
            update(C)
            .where(C.c.id == conversation_id)
            .values(sent_since_inbound=C.c.sent_since_inbound + 1)
        )

    def save(
        self, conversation: Conversation, state: ConversationState, *, now: datetime, inbound: bool
    ) -> None:
        values: dict[str, Any] = {
            "state": state.to_dict(),
            "status": state.status.value,
            "version": conversation.version + 1,
            "updated_at": now,
        }
        if inbound:  # the prospect wrote: channel windows open again
            values["last_inbound_at"] = now
            values["sent_since_inbound"] = 0
        values.update(b_id=conversation.id, b_version=conversation.version)
        result = execute(self._connection, _SAVE, values)
        if result.rowcount != 1:
            raise ConcurrentUpdateError(f"conversation {conversation.id} changed during the turn")


class SqlTranscript:
    def __init__(self, connection: Connection) -> None:
        self._connection = connection

    def add(
        self,
        *,
        conversation_id: int,
        author: str,
        text: str,
        status: str,
        now: datetime,
        options: Sequence[Mapping[str, str]] = (),
        question_id: str | None = None,
        provider_message_id: str | None = None,
    ) -> int:
        values = {
            "conversation_id": conversation_id,
            "author": author,
            "text": text,
            "options": [dict(o) for o in options],
            "question_id": question_id,
            "provider_message_id": provider_message_id,
            "status": status,
            "created_at": now,
        }
        return insert_row(self._connection, M, values)

    def set_delivery_status(
        self, provider_message_id: str, status: str, error: str | None
    ) -> DeliveryTarget | None:
        query = (
            select(M.c.id, M.c.status, C.c.id.label("conversation_id"), C.c.channel)
            .add_columns(C.c.channel_user_id)
            .join(C, C.c.id == M.c.conversation_id)
            .where(M.c.provider_message_id == provider_message_id)
            .limit(1)
        )
        row = self._connection.execute(query).first()
        if row is None:
            return None
        if STATUS_RANK.get(status, 0) > STATUS_RANK.get(row.status, 0):
            changes: dict[str, Any] = {"status": status}
            if error is not None:
                changes["error"] = error[:1000]
            self._connection.execute(update(M).where(M.c.id == row.id).values(**changes))
        return DeliveryTarget(row.conversation_id, row.channel, row.channel_user_id)


# Delivery reports can arrive out of order ("delivered" before "sent"): a line only moves
# forward, and a final state (failed, undelivered, read) is never replaced.
STATUS_RANK = {
    "queued": 1,
    "accepted": 1,
    "sending": 2,
    "sent": 3,
    "delivered": 4,
    "read": 5,
    "undelivered": 6,
    "failed": 6,
}
