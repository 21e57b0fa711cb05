"""What the reps' appointments page and the calendar-file link read of a booking: the booking
with its lead's name and its conversation's channel and language. Reads only, outside any
turn's transaction (a rep's move or cancel goes through the conversation service)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select

from bot.records import Appointment
from storage.appointments import appointment_of
from storage.db import Database
from storage.tables import AppointmentRow, ConversationRow, LeadRow

A = AppointmentRow.__table__  # type: ignore[attr-defined]
C = ConversationRow.__table__  # type: ignore[attr-defined]
L = LeadRow.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True, slots=True)
class ListedAppointment:
    """A booking as the console lists it. Erasure keeps a booking's row but takes its
    conversation away: then channel, language and the script version are None."""

    appointment: Appointment
    lead_fields: Mapping[str, Any]
    reference: str | None
    channel: str | None
    script_version: str | None
    language: str | None  # the conversation's, as the engine keeps it in its state


# The booking's own columns keep their names, so storage.appointments maps them; the others are
# prefixed, since conversations and leads have an id, a script_id... of their own.
_COLUMNS = (
    *A.c,
    L.c.fields.label("lead__fields"),
    L.c.reference.label("lead__reference"),
    C.c.channel.label("conversation__channel"),
    C.c.script_version.label("conversation__script_version"),
    C.c.state.label("conversation__state"),
)


def _listed(row: Any) -> ListedAppointment:
    state = row.conversation__state
    language = state.get("language") if isinstance(state, dict) else None
    return ListedAppointment(
        appointment=appointment_of(row),
        lead_fields=row.lead__fields or {},
        reference=row.lead__reference,
        channel=row.conversation__channel,
        script_version=row.conversation__script_version,
        language=language if isinstance(language, str) else None,
    )


def _query() -> Any:
    return (
        select(*_COLUMNS)
        .select_from(A)
        .outerjoin(L, L.c.id == A.c.lead_id)
        .outerjoin(C, C.c.id == A.c.conversation_id)
    )


async def appointments_between(
    database: Database, since: datetime, until: datetime, *, calendar: str
) -> list[ListedAppointment]:
    """The calendar's bookings (cancelled ones too) starting in [since, until), in time order."""
    query = (
        _query()
        .where(A.c.calendar == calendar, A.c.starts_at >= since, A.c.starts_at < until)
        .order_by(A.c.starts_at, A.c.location, A.c.id)
    )
    async with database.reading() as connection:
        return [_listed(row) for row in (await connection.execute(query)).all()]


async def listed_appointment(database: Database, appointment_id: int) -> ListedAppointment | None:
    query = _query().where(A.c.id == appointment_id)
    async with database.reading() as connection:
        row = (await connection.execute(query)).first()
    return _listed(row) if row is not None else None
