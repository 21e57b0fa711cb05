"""What the reps' console reads for its inbox: conversations newest activity first, by state,
channel and search, the ones waiting for a rep, and the mark its live stream polls."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, func, literal, or_, select

from storage.db import Database
from storage.tables import AuditRow, ConversationRow, LeadRow, MessageRow

C = ConversationRow.__table__  # type: ignore[attr-defined]
L = LeadRow.__table__  # type: ignore[attr-defined]
M = MessageRow.__table__  # type: ignore[attr-defined]
A = AuditRow.__table__  # type: ignore[attr-defined]

NAME_FIELDS = ("first_name", "last_name", "full_name", "name")


@dataclass(frozen=True, slots=True)
class SearchTerms:
    """What a rep typed in the inbox's search box, already understood by the web layer."""

    text: str  # matched in names and emails (contains, any case)
    phones: tuple[str, ...] = ()  # E.164 numbers the text may stand for
    digits: str | None = None  # a partial number: the end of a stored phone
    reference: str | None = None  # a lead's reference code, upper-case


@dataclass(frozen=True, slots=True)
class InboxRow:
    id: int
    lead_id: int
    channel: str
    status: str
    held_by: int | None
    held_by_name: str | None
    updated_at: datetime
    created_at: datetime
    reference: str
    fields: Mapping[str, Any]
    phone: str | None
    email: str | None
    score: int | None
    outcome: str | None
    is_test: bool
    last_author: str | None = None
    last_text: str | None = None
    waiting_since: datetime | None = None  # handed off: when we last said anything


@dataclass(frozen=True, slots=True)
class InboxPage:
    rows: list[InboxRow]
    has_more: bool
    counts: Mapping[str, int]  # conversations per status, for the same channel and search


@dataclass(frozen=True, slots=True)
class InboxMark:
    """Grows with every new conversation, line and rep action, in any worker."""

    conversations: int
    lines: int
    audit: int
    waiting: int


def _like(text: str) -> str:
    """A LIKE pattern that finds `text` anywhere, its own % and _ taken literally."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _search_condition(terms: SearchTerms) -> ColumnElement[bool]:
    # lower() on both sides: PostgreSQL folds every letter; SQLite's lower() and LIKE fold only
    # ASCII, so the title-cased text is tried as well ("álvaro" finds "Álvaro" there too).
    lowered, titled = _like(terms.text.lower()), _like(terms.text.title())
    names = [L.c.fields[key].as_string() for key in NAME_FIELDS]
    both = func.coalesce(names[0], "") + literal(" ") + func.coalesce(names[1], "")
    found: list[ColumnElement[bool]] = []
    for column in (*names, both, L.c.email):
        found.append(func.lower(column).like(lowered, escape="\\"))
        found.append(column.like(titled, escape="\\"))
    if terms.phones:
        found.append(L.c.phone.in_(terms.phones))
        found.append(C.c.channel_user_id.in_(terms.phones))
    if terms.digits:
        found.append(L.c.phone.like(f"%{terms.digits}"))
    if terms.reference:
        found.append(L.c.reference == terms.reference)
    return or_(*found)


def _where(
    channel: str | None, search: SearchTerms | None, statuses: Sequence[str] | None = None
) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = []
    if statuses is not None:
        conditions.append(C.c.status.in_(list(statuses)))
    if channel is not None:
        conditions.append(C.c.channel == channel)
    if search is not None:
        conditions.append(_search_condition(search))
    return conditions


async def inbox(
    database: Database,
    *,
    statuses: Sequence[str] | None,
    channel: str | None,
    search: SearchTerms | None,
    limit: int,
    offset: int,
) -> InboxPage:
    """Conversations, newest activity first: a page of them, and counts per status."""
    query = (
        select(
            C.c.id,
            C.c.lead_id,
            C.c.channel,
            C.c.status,
            C.c.held_by,
            C.c.held_by_name,
            C.c.updated_at,
            C.c.created_at,
            L.c.reference,
            L.c.fields,
            L.c.phone,
            L.c.email,
            L.c.score,
            L.c.outcome,
            L.c.is_test,
        )
        .join(L, L.c.id == C.c.lead_id)
        .where(and_(True, *_where(channel, search, statuses)))
        .order_by(C.c.updated_at.desc(), C.c.id.desc())
        .limit(limit + 1)
        .offset(offset)
    )
    counting = (
        select(C.c.status, func.count())
        .select_from(C.join(L, L.c.id == C.c.lead_id))
        .where(and_(True, *_where(channel, search)))
        .group_by(C.c.status)
    )
    async with database.reading() as connection:
        found = (await connection.execute(query)).all()
        counts = {str(status): int(n) for status, n in (await connection.execute(counting)).all()}
        ids = [row.id for row in found[:limit]]
        last = await _last_lines(connection, ids)
        waiting_ids = [row.id for row in found[:limit] if row.status == "handed_off"]
        waiting = await _waiting_since(connection, waiting_ids)
    rows = []
    for row in found[:limit]:
        author, text = last.get(row.id, (None, None))
        rows.append(
            InboxRow(
                id=row.id,
                lead_id=row.lead_id,
                channel=row.channel,
                status=row.status,
                held_by=row.held_by,
                held_by_name=row.held_by_name,
                updated_at=row.updated_at,
                created_at=row.created_at,
                reference=row.reference,
                fields=row.fields or {},
                phone=row.phone,
                email=row.email,
                score=row.score,
                outcome=row.outcome,
                is_test=bool(row.is_test),
                last_author=author,
                last_text=text,
                waiting_since=waiting.get(row.id, row.updated_at)
                if row.status == "handed_off"
                else None,
            )
        )
    return InboxPage(rows, len(found) > limit, counts)


async def _last_lines(connection: Any, ids: Sequence[int]) -> dict[int, tuple[str, str]]:
    """The newest line of each conversation (notes included: they are what a rep last saw)."""
    if not ids:
        return {}
    newest = (
        select(func.max(M.c.id))
        .where(M.c.conversation_id.in_(list(ids)))
        .group_by(M.c.conversation_id)
    ).scalar_subquery()
    query = select(M.c.conversation_id, M.c.author, M.c.text).where(M.c.id.in_(newest))
    return {row.conversation_id: (row.author, row.text) for row in await connection.execute(query)}


async def _waiting_since(connection: Any, ids: Sequence[int]) -> dict[int, datetime]:
    """While a conversation waits for a rep the bot is silent, so the last thing we said (the
    bot's "someone is coming", or a rep's last line) is when the prospect started waiting."""
    if not ids:
        return {}
    query = (
        select(M.c.conversation_id, func.max(M.c.created_at).label("at"))
        .where(M.c.conversation_id.in_(list(ids)), M.c.author.in_(["bot", "rep"]))
        .group_by(M.c.conversation_id)
    )
    rows = (await connection.execute(query)).all()
    return {row.conversation_id: row.at for row in rows if row.at is not None}


async def waiting(database: Database, limit: int = 1000) -> tuple[int, datetime | None]:
    """How many conversations wait for a rep, and since when the longest (of the first
    `limit`) has waited."""
    query = select(C.c.id, C.c.updated_at).where(C.c.status == "handed_off")
    async with database.reading() as connection:
        rows = (await connection.execute(query)).all()
        since = await _waiting_since(connection, [row.id for row in rows[:limit]])
    times = [since.get(row.id, row.updated_at) for row in rows[:limit]]
    return len(rows), min(times) if times else None


async def inbox_mark(database: Database) -> InboxMark:
    """Maxima of primary keys (each an index lookup) and the count of waiting conversations
    (on the status index): cheap enough for every open inbox to ask every two seconds."""
    query = select(
        select(func.coalesce(func.max(C.c.id), 0)).scalar_subquery(),
        select(func.coalesce(func.max(M.c.id), 0)).scalar_subquery(),
        select(func.coalesce(func.max(A.c.id), 0)).scalar_subquery(),
        select(func.count()).where(C.c.status == "handed_off").scalar_subquery(),
    )
    async with database.reading() as connection:
        row = (await connection.execute(query)).one()
    return InboxMark(int(row[0]), int(row[1]), int(row[2]), int(row[3]))
