"""Stream leads out with their answers and attribution, in constant memory."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

from sqlalchemy import Select, select

from storage.db import Database
from storage.tables import LeadRow

L = LeadRow.__table__  # type: ignore[attr-defined]
BATCH = 1000

# Columns every export has, in this order; form fields, answers and attribution follow.
BASE_COLUMNS = (
    "id",
    "reference",
    "source",
    "external_id",
    "script_id",
    "is_test",
    "submitted_at",
    "conversation_started_at",
    "completed_at",
    "outcome",
    "qualified",
    "score",
    "reasons",
    "phone",
    "email",
    "language",
    "consent_text",
    "consent_at",
)


def _query(since: datetime | None, outcome: str | None) -> Select[Any]:
    query = select(L).order_by(L.c.id)
    if since is not None:
        query = query.where(L.c.submitted_at >= since)
    if outcome is not None:
        query = query.where(L.c.outcome == outcome)
    return query


async def stream_leads(
    database: Database, *, since: datetime | None = None, outcome: str | None = None
) -> AsyncIterator[dict[str, Any]]:
    """Leads oldest first, fetched in batches (a server-side cursor on PostgreSQL)."""
    async with database.reading() as connection:
        result = await connection.stream(_query(since, outcome).execution_options(yield_per=BATCH))
        async for row in result:
            record = {column: getattr(row, column) for column in BASE_COLUMNS}
            record["fields"] = row.fields or {}
            record["answers"] = row.answers or {}
            record["attribution"] = row.attribution or {}
            yield record


async def extra_columns(
    database: Database, *, since: datetime | None = None, outcome: str | None = None
) -> tuple[list[str], list[str], list[str]]:
    """The form-field, answer and attribution keys that occur, for a CSV header."""
    fields: set[str] = set()
    answers: set[str] = set()
    attribution: set[str] = set()
    async for record in stream_leads(database, since=since, outcome=outcome):
        fields.update(record["fields"])
        answers.update(record["answers"])
        attribution.update(record["attribution"])
    return sorted(fields), sorted(answers), sorted(attribution)
