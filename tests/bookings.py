"""What a booked appointment leaves behind, as the channel tests check it: one booked row in the
`appointments` table, holding a seat; the lead's answer naming the same slot; and, in the
confirmation the prospect got, a calendar link under the public URL that serves that booking as
an iCalendar event."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from aiohttp.test_utils import TestClient
from icalendar import Calendar
from sqlalchemy import select

from bot.appointments_links import appointment_from_token
from bot.calendars import Slot
from bot.loader import load_script
from storage.tables import AppointmentRow
from webhooks.keys import DATABASE, SETTINGS, SIGNER

EXAMPLES = Path(__file__).parent.parent / "examples" / "scripts"
APPOINTMENTS = AppointmentRow.__table__  # type: ignore[attr-defined]
LINK = re.compile(r"(https?://\S+)/a/([^\s/]+)\.ics\b")


def bookable_day(script: str, days: int, weekdays: range = range(5)) -> date:
    """A day at least `days` ahead in the calendar's zone, on one of `weekdays` (0 = Monday),
    that is not one of the calendar's closed dates (`script`: an example's file name)."""
    spec = load_script((EXAMPLES / script).read_text(encoding="utf-8")).spec
    [calendar] = spec.calendars
    zone = ZoneInfo(calendar.timezone or spec.timezone)
    day = datetime.now(zone).date() + timedelta(days=days)
    while day.weekday() not in weekdays or day in calendar.closed:
        day += timedelta(days=1)
    return day


def slot_of(value: str) -> tuple[str, datetime]:
    """(place, start in UTC) of an offered slot's option value, e.g. "centro|20260110T0900Z"."""
    slot = Slot.from_value(value, timedelta(0))
    assert slot is not None, value
    return slot.location, slot.starts_at


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


async def stored_booking(client: TestClient[Any, Any], lead: Any, confirmation: str) -> Any:
    """The lead's one booked appointment row, after checking that the lead's answer is its slot
    and that `confirmation` links to its calendar file, which the app serves."""
    app = client.app
    query = select(APPOINTMENTS).where(APPOINTMENTS.c.lead_id == lead.id)
    async with app[DATABASE].reading() as connection:
        rows = (await connection.execute(query)).all()
    [row] = [found for found in rows if found.status == "booked"]
    assert row.seat is not None  # it holds a seat of its slot
    assert lead.answers[row.question_id] == {
        "calendar": row.calendar,
        "location": row.location,
        "starts_at": _iso(row.starts_at),
        "ends_at": _iso(row.ends_at),
    }
    link = LINK.search(confirmation)
    assert link is not None, confirmation
    assert link.group(1) == app[SETTINGS].base_url.rstrip("/")
    assert appointment_from_token(app[SIGNER], link.group(2), datetime.now(UTC)) == row.id
    response = await client.get(f"/a/{link.group(2)}.ics")
    assert response.status == 200, await response.text()
    assert response.content_type == "text/calendar"
    [event] = Calendar.from_ical(await response.text()).walk("VEVENT")
    assert (event.decoded("dtstart"), event.decoded("dtend")) == (row.starts_at, row.ends_at)
    assert str(event["status"]) == "CONFIRMED"
    return row
