"""The funnel's reports, read from the summary tables (storage/analytics_refresh.py)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, Connection, Select, and_, desc, func, select, true

from bot.funnel import (
    ANSWER_BOUNDS,
    DIMENSIONS,
    SPEED_BOUNDS,
    DayCount,
    Filters,
    FunnelCounts,
    FunnelGroup,
    FunnelReport,
    QuestionStat,
)
from storage.analytics_refresh import FD, FQ
from storage.db import Database

STAGE_COUNTS = ("submitted", "reached", "started", "completed", "qualified", "handed_off")
COUNTS = (*STAGE_COUNTS, "booked", "reminded", "came_back")
MAX_GROUPS = 500  # lines of a split funnel; the rest are summed in no line


def _where(summary: Any, filters: Filters) -> ColumnElement[bool]:
    parts: list[ColumnElement[bool]] = [true()]
    if filters.since is not None:
        parts.append(summary.c.day >= filters.since)
    if filters.until is not None:
        parts.append(summary.c.day <= filters.until)
    parts += [summary.c[key] == value for key, value in filters.attribution().items()]
    return and_(*parts)


def _counts(row: Any) -> FunnelCounts:
    return FunnelCounts(**{name: int(row._mapping[name] or 0) for name in COUNTS})


def _sums(names: tuple[str, ...] | list[str], summary: Any) -> list[Any]:
    return [func.coalesce(func.sum(summary.c[name]), 0).label(name) for name in names]


def _funnel(filters: Filters) -> Select[Any]:
    speeds = [f"speed_{index}" for index in range(len(SPEED_BOUNDS) + 1)]
    return select(*_sums(COUNTS, FD), *_sums(speeds, FD)).where(_where(FD, filters))


def _groups(filters: Filters, by: str) -> Select[Any]:
    key = FD.c[by].label("key")
    return (
        select(key, *_sums(COUNTS, FD))
        .where(_where(FD, filters))
        .group_by(key)
        .order_by(desc("submitted"), key)
        .limit(MAX_GROUPS)
    )


def _questions(filters: Filters) -> Select[Any]:
    names = ["asked", "answered", "abandoned"]
    names += [f"answer_{index}" for index in range(len(ANSWER_BOUNDS) + 1)]
    return (
        select(FQ.c.question, *_sums(names, FQ))
        .where(_where(FQ, filters))
        .group_by(FQ.c.question)
        .order_by(desc("asked"), FQ.c.question)
    )


def _days(filters: Filters) -> Select[Any]:
    return (
        select(FD.c.day, *_sums(("submitted", "qualified"), FD))
        .where(_where(FD, filters))
        .group_by(FD.c.day)
        .order_by(FD.c.day)
    )


def read_report(connection: Connection, filters: Filters, by: str | None) -> FunnelReport:
    if by is not None and by not in DIMENSIONS:
        raise ValueError(f"cannot split the funnel by {by!r}: use {', '.join(DIMENSIONS)}")
    total = connection.execute(_funnel(filters)).one()
    speed = tuple(int(total._mapping[f"speed_{i}"]) for i in range(len(SPEED_BOUNDS) + 1))
    groups: tuple[FunnelGroup, ...] = ()
    if by is not None:
        groups = tuple(
            FunnelGroup(str(row.key), _counts(row))
            for row in connection.execute(_groups(filters, by))
        )
    questions = tuple(
        QuestionStat(
            question=row.question,
            asked=int(row.asked),
            answered=int(row.answered),
            abandoned=int(row.abandoned),
            answer_histogram=tuple(
                int(row._mapping[f"answer_{i}"]) for i in range(len(ANSWER_BOUNDS) + 1)
            ),
        )
        for row in connection.execute(_questions(filters))
    )
    days = tuple(
        DayCount(row.day, int(row.submitted), int(row.qualified))
        for row in connection.execute(_days(filters))
    )
    return FunnelReport(filters, by, _counts(total), groups, questions, speed, days)


async def report(database: Database, filters: Filters, by: str | None = None) -> FunnelReport:
    """The funnel as the summaries have it: refresh them first (analytics_refresh.refresh)."""
    async with database.reading() as connection:
        return await connection.run_sync(lambda sync: read_report(sync, filters, by))
