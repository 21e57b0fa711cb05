"""The reps' Telegram group: each conversation's thread there, the bot's messages in it, the reps
linked to Telegram users, and the facts a lead's card shows.

Like storage/reps.py these are not conversation turns, so they use the Database directly. The
outbox rows written here are the ones a turn's commit led to (a card, a prospect's line shown
to the reps); their idempotency keys make a repeated write a no-op."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from storage.db import Database
from storage.errors import StorageError
from storage.sql import ignoring_conflict
from storage.tables import (
    ConversationRow,
    LeadRow,
    MessageRow,
    OutboxRow,
    ReceiptRow,
    RepGroupMessageRow,
    RepRow,
    RepThreadRow,
)

C = ConversationRow.__table__  # type: ignore[attr-defined]
L = LeadRow.__table__  # type: ignore[attr-defined]
M = MessageRow.__table__  # type: ignore[attr-defined]
O = OutboxRow.__table__  # type: ignore[attr-defined]  # noqa: E741
R = RepRow.__table__  # type: ignore[attr-defined]
T = RepThreadRow.__table__  # type: ignore[attr-defined]
G = RepGroupMessageRow.__table__  # type: ignore[attr-defined]
X = ReceiptRow.__table__  # type: ignore[attr-defined]


class TelegramUserTakenError(StorageError):
    """Another rep is linked to this Telegram user."""


@dataclass(frozen=True, slots=True)
class LinkedRep:
    id: int
    name: str
    email: str
    telegram_user_id: int | None


@dataclass(frozen=True, slots=True)
class Thread:
    conversation_id: int
    chat_id: int
    topic_id: int | None
    root_message_id: int | None  # the first card: replies to it form the thread


@dataclass(frozen=True, slots=True)
class CardFacts:
    """What a card says about a conversation and its lead, as stored."""

    conversation_id: int
    channel: str
    status: str
    held_by_name: str | None
    script_id: str
    script_version: str
    state: Mapping[str, Any]  # the conversation's state (bot.state.ConversationState as JSON)
    reference: str
    fields: Mapping[str, Any]
    phone: str | None
    email: str | None
    score: int | None
    reasons: Sequence[str]
    last_line_id: int  # the newest transcript line when read


@dataclass(frozen=True, slots=True)
class Line:
    id: int
    text: str


@dataclass(frozen=True, slots=True)
class OutboxEntry:
    kind: str
    idempotency_key: str
    payload: Mapping[str, Any]


def _thread(row: Any) -> Thread:
    return Thread(row.conversation_id, row.chat_id, row.topic_id, row.root_message_id)


async def _queue(connection: AsyncConnection, entry: OutboxEntry, now: datetime) -> bool:
    values = {
        "kind": entry.kind,
        "idempotency_key": entry.idempotency_key,
        "payload": dict(entry.payload),
        "status": "pending",
        "due_at": now,
        "attempts": 0,
        "created_at": now,
    }
    done = await connection.execute(ignoring_conflict(connection.dialect.name, O).values(values))
    return bool(done.rowcount)


class SqlRepThreads:
    def __init__(self, database: Database) -> None:
        self._database = database

    # -- reps on Telegram ----------------------------------------------------------------------

    async def linked_rep(self, telegram_user_id: int) -> LinkedRep | None:
        """The active rep linked to this Telegram user, if any."""
        query = select(R).where(R.c.telegram_user_id == telegram_user_id, R.c.disabled.is_(False))
        async with self._database.reading() as connection:
            row = (await connection.execute(query)).first()
        return LinkedRep(row.id, row.name, row.email, row.telegram_user_id) if row else None

    async def link(self, email: str, telegram_user_id: int | None) -> LinkedRep | None:
        """Link the rep with this email to a Telegram user (None: unlink); None when there is
        no such rep. Raises TelegramUserTakenError when another rep has that user."""
        email = email.strip().lower()
        async with self._database.writing() as connection:
            if telegram_user_id is not None:
                taken = select(R.c.email).where(
                    R.c.telegram_user_id == telegram_user_id, R.c.email != email
                )
                holder = (await connection.execute(taken)).scalar()
                if holder is not None:
                    raise TelegramUserTakenError(
                        f"Telegram user {telegram_user_id} is linked to {holder} already"
                    )
            statement = (
                update(R)
                .where(R.c.email == email)
                .values(telegram_user_id=telegram_user_id)
                .returning(R.c.id, R.c.name, R.c.email, R.c.telegram_user_id)
            )
            row = (await connection.execute(statement)).first()
            await connection.commit()
        return LinkedRep(row.id, row.name, row.email, row.telegram_user_id) if row else None

    # -- cards and lines -----------------------------------------------------------------------

    async def card_facts(self, conversation_id: int) -> CardFacts | None:
        newest = (
            select(M.c.id)
            .where(M.c.conversation_id == C.c.id)
            .order_by(M.c.id.desc())
            .limit(1)
            .scalar_subquery()
        )
        query = (
            select(
                C.c.channel,
                C.c.status,
                C.c.held_by_name,
                C.c.script_id,
                C.c.script_version,
                C.c.state,
                L.c.reference,
                L.c.fields,
                L.c.phone,
                L.c.email,
                L.c.score,
                L.c.reasons,
                newest.label("last_line_id"),
            )
            .join(L, L.c.id == C.c.lead_id)
            .where(C.c.id == conversation_id)
        )
        async with self._database.reading() as connection:
            row = (await connection.execute(query)).first()
        if row is None:
            return None
        return CardFacts(
            conversation_id=conversation_id,
            channel=row.channel,
            status=row.status,
            held_by_name=row.held_by_name,
            script_id=row.script_id,
            script_version=row.script_version,
            state=row.state or {},
            reference=row.reference,
            fields=row.fields or {},
            phone=row.phone,
            email=row.email,
            score=row.score,
            reasons=tuple(row.reasons or ()),
            last_line_id=row.last_line_id or 0,
        )

    async def queue(self, entries: Sequence[OutboxEntry], now: datetime) -> int:
        """Queue outbox rows; those whose key is already there are skipped. How many were new."""
        async with self._database.writing() as connection:
            added = [await _queue(connection, entry, now) for entry in entries]
            await connection.commit()
        return sum(added)

    # -- threads and the bot's messages in the group -------------------------------------------

    async def thread(self, conversation_id: int, chat_id: int) -> Thread | None:
        query = select(T).where(T.c.conversation_id == conversation_id, T.c.chat_id == chat_id)
        async with self._database.reading() as connection:
            row = (await connection.execute(query)).first()
        return _thread(row) if row is not None else None

    async def open_thread(
        self,
        conversation_id: int,
        chat_id: int,
        now: datetime,
        *,
        topic_id: int | None = None,
        root_message_id: int | None = None,
    ) -> Thread:
        """The conversation's thread in this chat: this one, or the one another worker opened
        first. A thread without a topic (or a root card) takes the one given."""
        values = {
            "conversation_id": conversation_id,
            "chat_id": chat_id,
            "topic_id": topic_id,
            "root_message_id": root_message_id,
            "mirrored_until": 0,  # unused since lines are queued with their turn
            "created_at": now,
        }
        key = and_(T.c.conversation_id == conversation_id, T.c.chat_id == chat_id)
        async with self._database.writing() as connection:
            await connection.execute(ignoring_conflict(connection.dialect.name, T).values(values))
            if topic_id is not None:
                await connection.execute(
                    update(T).where(key, T.c.topic_id.is_(None)).values(topic_id=topic_id)
                )
            if root_message_id is not None:
                await connection.execute(
                    update(T)
                    .where(key, T.c.root_message_id.is_(None))
                    .values(root_message_id=root_message_id)
                )
            row = (await connection.execute(select(T).where(key))).one()
            await connection.commit()
        return _thread(row)

    async def record_message(
        self,
        chat_id: int,
        message_id: int,
        conversation_id: int,
        outbox_key: str | None,
        now: datetime,
    ) -> None:
        values = {
            "chat_id": chat_id,
            "message_id": message_id,
            "conversation_id": conversation_id,
            "outbox_key": outbox_key,
            "created_at": now,
        }
        async with self._database.writing() as connection:
            await connection.execute(ignoring_conflict(connection.dialect.name, G).values(values))
            await connection.commit()

    async def posted(self, outbox_key: str) -> int | None:
        """The message an outbox row already posted (its worker died before recording it)."""
        query = select(G.c.message_id).where(G.c.outbox_key == outbox_key)
        async with self._database.reading() as connection:
            found = (await connection.execute(query)).scalar()
        return int(found) if found is not None else None

    async def conversation_of(
        self, chat_id: int, message_ids: Sequence[int], topic_id: int | None
    ) -> int | None:
        """The conversation a group message is about: one of the bot's messages it answers (or
        the thread it is in), else the forum topic it was written in."""
        async with self._database.reading() as connection:
            if message_ids:
                query = (
                    select(G.c.conversation_id)
                    .where(G.c.chat_id == chat_id, G.c.message_id.in_(list(message_ids)))
                    .order_by(G.c.message_id.desc())
                    .limit(1)
                )
                found = (await connection.execute(query)).scalar()
                if found is not None:
                    return int(found)
            if topic_id is None:
                return None
            query = (
                select(T.c.conversation_id)
                .where(T.c.chat_id == chat_id, T.c.topic_id == topic_id)
                .order_by(T.c.conversation_id.desc())
                .limit(1)
            )
            found = (await connection.execute(query)).scalar()
        return int(found) if found is not None else None

    async def conversation_of_card(self, chat_id: int, message_id: int) -> int | None:
        query = select(G.c.conversation_id).where(
            G.c.chat_id == chat_id, G.c.message_id == message_id
        )
        async with self._database.reading() as connection:
            found = (await connection.execute(query)).scalar()
        return int(found) if found is not None else None

    async def holder(self, conversation_id: int) -> int | None:
        """The rep holding the conversation, if any."""
        query = select(C.c.held_by).where(C.c.id == conversation_id)
        async with self._database.reading() as connection:
            found = (await connection.execute(query)).scalar()
        return int(found) if found is not None else None

    # -- receipts of the group's updates -------------------------------------------------------

    async def seen(self, channel: str, provider_id: str) -> bool:
        query = select(X.c.provider_id).where(
            X.c.channel == channel, X.c.provider_id == provider_id
        )
        async with self._database.reading() as connection:
            return (await connection.execute(query)).first() is not None

    async def remember(self, channel: str, provider_id: str, now: datetime) -> None:
        values = {"channel": channel, "provider_id": provider_id, "received_at": now}
        async with self._database.writing() as connection:
            await connection.execute(ignoring_conflict(connection.dialect.name, X).values(values))
            await connection.commit()
