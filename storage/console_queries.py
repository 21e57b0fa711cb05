"""What the reps' console reads of one conversation: its lead, transcript and audit trail, and
the cheap marks its live stream polls. Reads only, outside any turn's transaction."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select

from storage.db import Database
from storage.tables import AuditRow, ConversationRow, LeadRow, MessageRow

C = ConversationRow.__table__  # type: ignore[attr-defined]
L = LeadRow.__table__  # type: ignore[attr-defined]
M = MessageRow.__table__  # type: ignore[attr-defined]
A = AuditRow.__table__  # type: ignore[attr-defined]

# A line in one of these states will not change again: the live stream stops watching it.
SETTLED = frozenset({"read", "failed", "undelivered", "skipped", "received", "internal"})
TRANSCRIPT_LIMIT = 500  # lines on a conversation's page; the rest is in the export


@dataclass(frozen=True, slots=True)
class LeadCard:
    id: int
    reference: str
    source: str
    script_id: str
    fields: Mapping[str, Any]
    answers: Mapping[str, Any]
    score: int | None
    reasons: Sequence[str]
    outcome: str | None
    qualified: bool | None
    attribution: Mapping[str, Any]
    consent_text: str | None
    consent_at: datetime | None
    phone: str | None
    email: str | None
    language: str | None
    is_test: bool
    submitted_at: datetime
    completed_at: datetime | None


@dataclass(frozen=True, slots=True)
class ConversationDetail:
    id: int
    channel: str
    channel_user_id: str
    script_id: str
    script_version: str
    status: str
    state: Mapping[str, Any]
    version: int
    held_by: int | None
    held_by_name: str | None
    last_inbound_at: datetime | None
    sent_since_inbound: int
    created_at: datetime
    updated_at: datetime
    lead: LeadCard


@dataclass(frozen=True, slots=True)
class ConsoleLine:
    id: int
    author: str  # prospect, bot, rep, system or note
    text: str
    status: str
    error: str | None
    created_at: datetime


@dataclass(frozen=True, slots=True)
class AuditEntry:
    id: int
    actor: str
    action: str
    detail: str | None
    at: datetime


@dataclass(frozen=True, slots=True)
class ConversationMark:
    """What a conversation's stream compares between polls: a change in any is news."""

    version: int
    status: str
    held_by: int | None
    held_by_name: str | None
    last_line: int
    last_audit: int


@dataclass(frozen=True, slots=True)
class LineStatus:
    id: int
    status: str
    error: str | None


async def conversation(database: Database, conversation_id: int) -> ConversationDetail | None:
    query = (
        select(C, *[column.label(f"lead__{column.name}") for column in L.c])
        .join(L, L.c.id == C.c.lead_id)
        .where(C.c.id == conversation_id)
    )
    async with database.reading() as connection:
        row = (await connection.execute(query)).first()
    if row is None:
        return None
    lead = row._mapping
    card = LeadCard(
        id=lead["lead__id"],
        reference=lead["lead__reference"],
        source=lead["lead__source"],
        script_id=lead["lead__script_id"],
        fields=lead["lead__fields"] or {},
        answers=lead["lead__answers"] or {},
        score=lead["lead__score"],
        reasons=list(lead["lead__reasons"] or []),
        outcome=lead["lead__outcome"],
        qualified=lead["lead__qualified"],
        attribution=lead["lead__attribution"] or {},
        consent_text=lead["lead__consent_text"],
        consent_at=lead["lead__consent_at"],
        phone=lead["lead__phone"],
        email=lead["lead__email"],
        language=lead["lead__language"],
        is_test=bool(lead["lead__is_test"]),
        submitted_at=lead["lead__submitted_at"],
        completed_at=lead["lead__completed_at"],
    )
    return ConversationDetail(
        id=row.id,
        channel=row.channel,
        channel_user_id=row.channel_user_id,
        script_id=row.script_id,
        script_version=row.script_version,
        status=row.status,
        state=row.state or {},
        version=row.version,
        held_by=row.held_by,
        held_by_name=row.held_by_name,
        last_inbound_at=row.last_inbound_at,
        sent_since_inbound=row.sent_since_inbound or 0,
        created_at=row.created_at,
        updated_at=row.updated_at,
        lead=card,
    )


def _line(row: Any) -> ConsoleLine:
    return ConsoleLine(row.id, row.author, row.text, row.status, row.error, row.created_at)


_LINE_COLUMNS = (M.c.id, M.c.author, M.c.text, M.c.status, M.c.error, M.c.created_at)


async def transcript(database: Database, conversation_id: int) -> tuple[list[ConsoleLine], bool]:
    """The newest lines (oldest first), and whether older ones were left out."""
    query = (
        select(*_LINE_COLUMNS)
        .where(M.c.conversation_id == conversation_id)
        .order_by(M.c.id.desc())
        .limit(TRANSCRIPT_LIMIT + 1)
    )
    async with database.reading() as connection:
        rows = (await connection.execute(query)).all()
    lines = [_line(row) for row in reversed(rows[:TRANSCRIPT_LIMIT])]
    return lines, len(rows) > TRANSCRIPT_LIMIT


async def lines_after(
    database: Database, conversation_id: int, after: int, limit: int
) -> list[ConsoleLine]:
    query = (
        select(*_LINE_COLUMNS)
        .where(M.c.conversation_id == conversation_id, M.c.id > after)
        .order_by(M.c.id)
        .limit(limit)
    )
    async with database.reading() as connection:
        return [_line(row) for row in (await connection.execute(query)).all()]


async def line_statuses(database: Database, ids: Sequence[int]) -> list[LineStatus]:
    if not ids:
        return []
    query = select(M.c.id, M.c.status, M.c.error).where(M.c.id.in_(list(ids)))
    async with database.reading() as connection:
        return [LineStatus(r.id, r.status, r.error) for r in (await connection.execute(query))]


async def unsettled_lines(database: Database, conversation_id: int, upto: int) -> list[LineStatus]:
    """Lines whose delivery status may still move (queued, sent, delivered, held...)."""
    query = select(M.c.id, M.c.status, M.c.error).where(
        M.c.conversation_id == conversation_id,
        M.c.id <= upto,
        M.c.status.not_in(sorted(SETTLED)),
    )
    async with database.reading() as connection:
        return [LineStatus(r.id, r.status, r.error) for r in (await connection.execute(query))]


async def audit_trail(database: Database, conversation_id: int, after: int = 0) -> list[AuditEntry]:
    query = (
        select(A.c.id, A.c.actor, A.c.action, A.c.detail, A.c.at)
        .where(A.c.conversation_id == conversation_id, A.c.id > after)
        .order_by(A.c.id)
    )
    async with database.reading() as connection:
        rows = (await connection.execute(query)).all()
    return [AuditEntry(r.id, r.actor, r.action, r.detail, r.at) for r in rows]


async def conversation_mark(database: Database, conversation_id: int) -> ConversationMark | None:
    last_line = (
        select(func.coalesce(func.max(M.c.id), 0))
        .where(M.c.conversation_id == conversation_id)
        .scalar_subquery()
    )
    last_audit = (
        select(func.coalesce(func.max(A.c.id), 0))
        .where(A.c.conversation_id == conversation_id)
        .scalar_subquery()
    )
    query = select(
        C.c.version,
        C.c.status,
        C.c.held_by,
        C.c.held_by_name,
        last_line.label("last_line"),
        last_audit.label("last_audit"),
    ).where(C.c.id == conversation_id)
    async with database.reading() as connection:
        row = (await connection.execute(query)).first()
    if row is None:
        return None
    return ConversationMark(
        row.version,
        row.status,
        row.held_by,
        row.held_by_name,
        int(row.last_line),
        int(row.last_audit),
    )
