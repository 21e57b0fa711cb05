"""Keeping the funnel's summary tables current: the days whose leads changed are summed again.

Nothing in the turn's path writes to the summaries (a turn stays as fast as it was): a refresh
finds the days of submission of the leads and conversations changed since its mark (their
`updated_at` is written by every turn, contact and outcome; an appointment's `created_at` and
`cancelled_at`),
deletes those days' summary rows and sums them again from the leads, conversations,
transcript, outbox and audit trail. A refresh looks back `MARGIN` before its mark, so that a
turn stamped just before the mark but committed after it is not missed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Date,
    Select,
    and_,
    case,
    cast,
    column,
    delete,
    false,
    func,
    insert,
    inspect,
    literal,
    or_,
    select,
    table,
    true,
    union,
    update,
)

from bot.funnel import ANSWER_BOUNDS, SPEED_BOUNDS
from storage.db import Database
from storage.sql import insert_ignoring_conflict
from storage.tables import (
    AnalyticsMarkRow,
    AuditRow,
    ConversationRow,
    FunnelDayRow,
    FunnelQuestionDayRow,
    LeadRow,
    MessageRow,
    OutboxRow,
)
from storage.types import UTCDateTime

L = LeadRow.__table__  # type: ignore[attr-defined]
C = ConversationRow.__table__  # type: ignore[attr-defined]
M = MessageRow.__table__  # type: ignore[attr-defined]
O = OutboxRow.__table__  # type: ignore[attr-defined]  # noqa: E741
A = AuditRow.__table__  # type: ignore[attr-defined]
FD = FunnelDayRow.__table__  # type: ignore[attr-defined]
FQ = FunnelQuestionDayRow.__table__  # type: ignore[attr-defined]
MARK = AnalyticsMarkRow.__table__  # type: ignore[attr-defined]
# Written by the appointments feature (migration 0010); named here, not imported, so that the
# funnel depends on these columns only.
APPOINTMENTS = table(
    "appointments",
    column("lead_id"),
    column("status"),
    column("created_at", UTCDateTime),
    column("cancelled_at", UTCDateTime),
)

NAME = "funnel"
MARGIN = timedelta(minutes=10)  # far longer than any turn's transaction
KEYS = ("source", "campaign", "adgroup", "ad", "form", "script", "channel")
WITH_PEOPLE = ("handed_off", "with_rep")  # bot.state.WITH_PEOPLE
# The audit's actions that mean people were asked for or came: bot.service's handoff (whether
# or not a rep took it in time) and bot.desk's take-over.
HANDED_OFF = ("handoff_requested", "took_over")


@dataclass(frozen=True, slots=True)
class Refreshed:
    days: int  # days summed again
    rebuilt: bool  # everything, from nothing


def day_of(dialect: str, moment: Any) -> ColumnElement[Any]:
    """The UTC day of a stored time. SQLite keeps times as 'YYYY-MM-DD HH:MM:SS' text."""
    if dialect == "postgresql":
        return cast(func.timezone("UTC", moment), Date)
    return func.substr(moment, 1, 10)


def seconds_between(dialect: str, later: Any, earlier: Any) -> ColumnElement[Any]:
    if dialect == "postgresql":
        return func.extract("epoch", later - earlier)
    # julianday is a float of days: 20 s come back as 20.0000001 s without the rounding.
    return func.round((func.julianday(later) - func.julianday(earlier)) * 86400.0, 3)


def _bucket(seconds: ColumnElement[Any], bounds: tuple[int, ...]) -> ColumnElement[Any]:
    """The histogram bucket a duration falls in (bot.funnel), NULL for none."""
    whens: list[tuple[ColumnElement[bool], int | None]] = [(seconds.is_(None), None)]
    whens += [(seconds <= bound, index) for index, bound in enumerate(bounds)]
    return case(*whens, else_=len(bounds))


def _attribution(key: str) -> ColumnElement[Any]:
    """A name if the source gave one, else the id: Google gives ids only."""
    name = L.c.attribution[f"{key}_name"].as_string()
    ident = L.c.attribution[f"{key}_id"].as_string()
    return func.coalesce(name, ident, literal(""))


def _flag(condition: ColumnElement[bool]) -> ColumnElement[Any]:
    return case((condition, 1), else_=0)


def _any(*conditions: ColumnElement[bool]) -> ColumnElement[bool]:
    """Whether a row matches, looked up per lead through the indexes. Not EXISTS: PostgreSQL
    turns a correlated EXISTS into a hash of every matching row of the table (all reminders
    ever, say), far more work than the day's leads need; a scalar subquery stays per row."""
    return select(literal(1)).where(*conditions).limit(1).scalar_subquery().is_not(None)


def _keys(dialect: str, channel: ColumnElement[Any]) -> list[ColumnElement[Any]]:
    return [
        day_of(dialect, L.c.submitted_at).label("day"),
        L.c.source.label("source"),
        _attribution("campaign").label("campaign"),
        _attribution("adgroup").label("adgroup"),
        _attribution("ad").label("ad"),
        _attribution("form").label("form"),
        L.c.script_id.label("script"),
        func.coalesce(channel, literal("")).label("channel"),
    ]


def _nudges(conversation: Any) -> Any:
    """Reminders after silence that went out in `conversation` (bot.effects.ReminderPart)."""
    nudge = O.alias()
    sent = and_(
        nudge.c.conversation_id == conversation.c.id,
        nudge.c.payload["reminder"].as_string() == "nudge",
        nudge.c.status == "sent",
    )
    return nudge, sent


def _lead_facts(dialect: str, where: ColumnElement[bool], booked: bool) -> Any:
    """One row per lead: its keys, a 0/1 per stage, and its speed-to-lead bucket."""
    first = C.alias()
    channel = (
        select(first.c.channel)
        .where(first.c.lead_id == L.c.id)
        .order_by(first.c.id)
        .limit(1)
        .scalar_subquery()
    )
    waiting = C.alias()
    taken = C.alias()
    handed_off = or_(
        _any(waiting.c.lead_id == L.c.id, waiting.c.status.in_(WITH_PEOPLE)),
        _any(
            taken.c.lead_id == L.c.id, A.c.conversation_id == taken.c.id, A.c.action.in_(HANDED_OFF)
        ),
    )
    reminded_in = C.alias()
    _, sent = _nudges(reminded_in)
    reminded = _any(reminded_in.c.lead_id == L.c.id, sent)
    back_in = C.alias()
    back_nudge, back_sent = _nudges(back_in)
    reply = M.alias()
    came_back = _any(
        back_in.c.lead_id == L.c.id,
        back_sent,
        reply.c.conversation_id == back_in.c.id,
        reply.c.author == "prospect",
        reply.c.id > back_nudge.c.message_id,
    )
    appointment: ColumnElement[bool] = (
        _any(APPOINTMENTS.c.lead_id == L.c.id, APPOINTMENTS.c.status == "booked")
        if booked
        else false()
    )
    speed = seconds_between(dialect, L.c.first_contact_at, L.c.submitted_at)
    return (
        select(
            *_keys(dialect, channel),
            _flag(L.c.first_contact_at.is_not(None)).label("reached"),
            _flag(L.c.conversation_started_at.is_not(None)).label("started"),
            _flag(L.c.completed_at.is_not(None)).label("completed"),
            _flag(L.c.qualified == true()).label("qualified"),
            _flag(handed_off).label("handed_off"),
            _flag(appointment).label("booked"),
            _flag(reminded).label("reminded"),
            _flag(came_back).label("came_back"),
            _bucket(speed, SPEED_BOUNDS).label("speed"),
        )
        .where(where)
        .subquery()
    )


def _funnel_rows(dialect: str, where: ColumnElement[bool], booked: bool) -> Select[Any]:
    facts = _lead_facts(dialect, where, booked)
    keys = [facts.c.day, *(facts.c[key] for key in KEYS)]
    stages = ("reached", "started", "completed", "qualified", "handed_off", "booked")
    return select(
        *keys,
        func.count().label("submitted"),
        *(func.sum(facts.c[name]).label(name) for name in (*stages, "reminded", "came_back")),
        *(
            func.sum(_flag(facts.c.speed == index)).label(f"speed_{index}")
            for index in range(len(SPEED_BOUNDS) + 1)
        ),
    ).group_by(*keys)


def _question_rows(dialect: str, where: ColumnElement[bool]) -> Select[Any]:
    """Per (conversation, question): first asked when, the prospect's first message after that
    (a join, not a subquery per row: the buckets read it a dozen times), expired at it."""
    reply = M.alias()
    answers = (
        select(
            *_keys(dialect, C.c.channel),
            M.c.question_id.label("question"),
            func.min(M.c.created_at).label("asked_at"),
            # Any prospect line after any asking: the earliest is the first after the first.
            func.min(reply.c.created_at).label("answered_at"),
            _flag(and_(C.c.abandoned_question == M.c.question_id, C.c.status == "expired")).label(
                "abandoned"
            ),
        )
        .select_from(
            L.join(C, C.c.lead_id == L.c.id)
            .join(M, M.c.conversation_id == C.c.id)
            .outerjoin(
                reply,
                and_(
                    reply.c.conversation_id == C.c.id,
                    reply.c.author == "prospect",
                    reply.c.id > M.c.id,
                ),
            )
        )
        .where(where, M.c.author == "bot", M.c.question_id.is_not(None))
        .group_by(L.c.id, C.c.id, M.c.question_id)
        .subquery()
    )
    waited = seconds_between(dialect, answers.c.answered_at, answers.c.asked_at)
    took = _bucket(waited, ANSWER_BOUNDS)
    keys = [answers.c.day, *(answers.c[key] for key in KEYS), answers.c.question]
    return select(
        *keys,
        func.count().label("asked"),
        func.sum(_flag(answers.c.answered_at.is_not(None))).label("answered"),
        func.sum(answers.c.abandoned).label("abandoned"),
        *(
            func.sum(_flag(took == index)).label(f"answer_{index}")
            for index in range(len(ANSWER_BOUNDS) + 1)
        ),
    ).group_by(*keys)


def _sum_into(connection: Connection, where: ColumnElement[bool], booked: bool) -> None:
    dialect = connection.dialect.name
    where = and_(L.c.is_test == false(), where)
    for target, rows in (
        (FD, _funnel_rows(dialect, where, booked)),
        (FQ, _question_rows(dialect, where)),
    ):
        names = [c.name for c in rows.selected_columns]
        connection.execute(insert(target).from_select(names, rows))


def _as_day(value: Any) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value))


def _changed_days(connection: Connection, since: datetime, booked: bool) -> list[date]:
    dialect = connection.dialect.name
    day = day_of(dialect, L.c.submitted_at)
    parts = [
        select(day).where(L.c.updated_at > since),
        select(day).select_from(L.join(C, C.c.lead_id == L.c.id)).where(C.c.updated_at > since),
    ]
    if booked:
        parts.append(
            select(day)
            .select_from(L.join(APPOINTMENTS, APPOINTMENTS.c.lead_id == L.c.id))
            .where(or_(APPOINTMENTS.c.created_at > since, APPOINTMENTS.c.cancelled_at > since))
        )
    return sorted({_as_day(value) for value in connection.execute(union(*parts)).scalars()})


def _newest(connection: Connection, booked: bool) -> datetime | None:
    found = [
        connection.execute(select(func.max(L.c.updated_at))).scalar(),
        connection.execute(select(func.max(C.c.updated_at))).scalar(),
    ]
    if booked:
        found.append(connection.execute(select(func.max(APPOINTMENTS.c.created_at))).scalar())
        found.append(connection.execute(select(func.max(APPOINTMENTS.c.cancelled_at))).scalar())
    times = [moment for moment in found if moment is not None]
    return max(times) if times else None


def _day_range(day: date) -> ColumnElement[bool]:
    start = datetime.combine(day, time(), tzinfo=UTC)
    return and_(L.c.submitted_at >= start, L.c.submitted_at < start + timedelta(days=1))


def refresh_sync(connection: Connection, now: datetime, *, rebuild: bool = False) -> Refreshed:
    booked = inspect(connection).has_table("appointments")
    if connection.dialect.name == "postgresql":
        # These statements are short; compiling them (JIT) took longer than running them.
        connection.exec_driver_sql("SET LOCAL jit = off")
    insert_ignoring_conflict(connection, MARK, {"name": NAME, "mark": None, "refreshed_at": now})
    # Locked until commit: a second worker's refresh waits, then finds little left to do.
    mark = connection.execute(
        select(MARK.c.mark).where(MARK.c.name == NAME).with_for_update()
    ).scalar()
    newest = _newest(connection, booked)
    if rebuild or mark is None:
        connection.execute(delete(FD))
        connection.execute(delete(FQ))
        _sum_into(connection, true(), booked)
        summed = connection.execute(select(func.count(func.distinct(FD.c.day)))).scalar() or 0
        rebuilt = True
    else:
        days = _changed_days(connection, mark - MARGIN, booked)
        if days and connection.dialect.name == "postgresql":
            # A day is some thousands of leads among millions: reach their conversations and
            # transcripts through the indexes. The planner, misjudging how few rows a day's
            # leads join, otherwise scans and hashes the whole conversations table per day.
            connection.exec_driver_sql("SET LOCAL enable_hashjoin = off")
            connection.exec_driver_sql("SET LOCAL enable_mergejoin = off")
        for day in days:
            connection.execute(delete(FD).where(FD.c.day == day))
            connection.execute(delete(FQ).where(FQ.c.day == day))
            _sum_into(connection, _day_range(day), booked)
        summed, rebuilt = len(days), False
    if newest is not None and (mark is None or newest > mark):
        mark = newest
    connection.execute(update(MARK).where(MARK.c.name == NAME).values(mark=mark, refreshed_at=now))
    return Refreshed(summed, rebuilt)


async def refresh(database: Database, now: datetime, *, rebuild: bool = False) -> Refreshed:
    """Bring the summaries up to date (all of them again with `rebuild`), in one transaction."""
    async with database.writing() as connection:
        done = await connection.run_sync(lambda sync: refresh_sync(sync, now, rebuild=rebuild))
        await connection.commit()
    return done
