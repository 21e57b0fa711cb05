"""Reading transcripts for pages and consoles, outside any turn's transaction."""

from __future__ import annotations

from sqlalchemy import func, select

from bot.records import TranscriptLine
from storage.db import Database
from storage.tables import ConversationRow, MessageRow

C = ConversationRow.__table__  # type: ignore[attr-defined]
M = MessageRow.__table__  # type: ignore[attr-defined]


async def newest_conversation(
    database: Database, *, lead_id: int, channel: str, channel_user_id: str
) -> int | None:
    """The lead's newest conversation in that chat, if one was opened."""
    query = (
        select(C.c.id)
        .where(
            C.c.lead_id == lead_id, C.c.channel == channel, C.c.channel_user_id == channel_user_id
        )
        .order_by(C.c.id.desc())
        .limit(1)
    )
    async with database.reading() as connection:
        found = (await connection.execute(query)).scalar()
    return int(found) if found is not None else None


async def transcript_after(
    database: Database, conversation_id: int, after: int, limit: int
) -> list[TranscriptLine]:
    """Lines with an id above `after`, oldest first, at most `limit`."""
    query = (
        select(M.c.id, M.c.author, M.c.text, M.c.options, M.c.question_id, M.c.status)
        .where(M.c.conversation_id == conversation_id, M.c.id > after)
        .order_by(M.c.id)
        .limit(limit)
    )
    async with database.reading() as connection:
        rows = (await connection.execute(query)).all()
    return [
        TranscriptLine(r.id, r.author, r.text, r.options or [], r.question_id, r.status)
        for r in rows
    ]


async def question_of_provider_message(
    database: Database, channel: str, chat: str, provider_message_id: str
) -> str | None:
    """The question a sent message asked (a tapped button's message), if it belongs to the
    chat's current conversation: a button left from an earlier conversation answers nothing."""
    current = (
        select(func.max(C.c.id))
        .where(C.c.channel == channel, C.c.channel_user_id == chat)
        .scalar_subquery()
    )
    query = (
        select(M.c.question_id)
        .where(
            M.c.conversation_id == current,
            M.c.provider_message_id == provider_message_id,
            M.c.author == "bot",
        )
        .limit(1)
    )
    async with database.reading() as connection:
        found = (await connection.execute(query)).scalar()
    return str(found) if found is not None else None


async def awaits_provider_id(database: Database, channel: str, chat: str) -> bool:
    """Whether the chat's current conversation has a question whose send is not recorded yet
    (queued, or sent a moment ago with its provider id not stored)."""
    current = (
        select(func.max(C.c.id))
        .where(C.c.channel == channel, C.c.channel_user_id == chat)
        .scalar_subquery()
    )
    query = (
        select(M.c.id)
        .where(
            M.c.conversation_id == current,
            M.c.author == "bot",
            M.c.question_id.is_not(None),
            M.c.provider_message_id.is_(None),
            M.c.status == "queued",
        )
        .limit(1)
    )
    async with database.reading() as connection:
        return (await connection.execute(query)).first() is not None
