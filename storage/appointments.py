"""Appointments: a booking takes the lowest free seat of its slot, and the unique key on
(calendar, location, starts_at, seat) makes two bookings of one seat impossible, on SQLite and
on PostgreSQL with any number of workers. A cancelled booking gives its seat back (NULL)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, func, select, update

from bot.records import Appointment, NewAppointment
from storage.sql import insert_returning_id
from storage.tables import AppointmentRow

A = AppointmentRow.__table__  # type: ignore[attr-defined]
BOOKED = "booked"
CANCELLED = "cancelled"


def appointment_of(row: Any) -> Appointment:
    return Appointment(
        id=row.id,
        lead_id=row.lead_id,
        conversation_id=row.conversation_id,
        script_id=row.script_id,
        question_id=row.question_id,
        calendar=row.calendar,
        location=row.location,
        starts_at=row.starts_at,
        ends_at=row.ends_at,
        status=row.status,
        seat=row.seat,
        booked_by=row.booked_by,
        created_at=row.created_at,
        cancelled_at=row.cancelled_at,
        cancelled_by=row.cancelled_by,
    )


class SqlAppointments:
    """Implements bot.ports.Appointments."""

    def __init__(self, connection: Connection) -> None:
        self._connection = connection

    def seats_taken(
        self, calendars: Sequence[str], since: datetime, until: datetime
    ) -> dict[tuple[str, str, datetime], int]:
        if not calendars:
            return {}
        query = (
            select(A.c.calendar, A.c.location, A.c.starts_at, func.count())
            .where(
                A.c.calendar.in_(list(calendars)),
                A.c.starts_at >= since,
                A.c.starts_at < until,
                A.c.seat.is_not(None),
            )
            .group_by(A.c.calendar, A.c.location, A.c.starts_at)
        )
        return {
            (calendar, location, starts_at): int(count)
            for calendar, location, starts_at, count in self._connection.execute(query)
        }

    def book(self, new: NewAppointment, capacity: int, now: datetime) -> Appointment | None:
        values = {
            "lead_id": new.lead_id,
            "conversation_id": new.conversation_id,
            "script_id": new.script_id,
            "question_id": new.question_id,
            "calendar": new.calendar,
            "location": new.location,
            "starts_at": new.starts_at,
            "ends_at": new.ends_at,
            "status": BOOKED,
            "booked_by": new.booked_by,
            "created_at": now,
        }
        # Seat by seat: a seat someone holds is a conflict and nothing happens (on PostgreSQL,
        # one being taken by an open transaction waits for it, then conflicts if it committed).
        for seat in range(1, capacity + 1):
            new_id = insert_returning_id(self._connection, A, {**values, "seat": seat})
            if new_id is not None:
                return self.get(new_id)
        return None

    def cancel_booked(
        self, conversation_id: int, *, by: str, now: datetime, keep: int | None = None
    ) -> list[Appointment]:
        mine = [A.c.conversation_id == conversation_id, A.c.status == BOOKED]
        if keep is not None:
            mine.append(A.c.id != keep)
        ids = list(self._connection.execute(select(A.c.id).where(*mine)).scalars())
        if not ids:
            return []
        self._connection.execute(
            update(A)
            .where(A.c.id.in_(ids))
            .values(status=CANCELLED, seat=None, cancelled_at=now, cancelled_by=by)
        )
        rows = self._connection.execute(select(A).where(A.c.id.in_(ids)).order_by(A.c.id))
        return [appointment_of(row) for row in rows]

    def get(self, appointment_id: int) -> Appointment | None:
        row = self._connection.execute(select(A).where(A.c.id == appointment_id)).first()
        return appointment_of(row) if row is not None else None

    def between(
        self,
        since: datetime,
        until: datetime,
        *,
        calendar: str | None = None,
        location: str | None = None,
        booked_only: bool = False,
    ) -> list[Appointment]:
        query = select(A).where(A.c.starts_at >= since, A.c.starts_at < until)
        if calendar is not None:
            query = query.where(A.c.calendar == calendar)
        if location is not None:
            query = query.where(A.c.location == location)
        if booked_only:
            query = query.where(A.c.status == BOOKED)
        rows = self._connection.execute(query.order_by(A.c.starts_at, A.c.location, A.c.id))
        return [appointment_of(row) for row in rows]
