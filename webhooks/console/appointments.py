"""The console's appointments page (GET /console/appointments): one day's bookings per place,
in each calendar's own time zone, with the day's free times, and a form to move or cancel each
booking (webhooks/console/appointments_actions.py). The same list as JSON for scripts."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from aiohttp import web

from bot.calendars import capacity_of, day_bounds, opening_slots, zone_of
from bot.catalog import ScriptCatalog
from bot.compiled import pick_language
from bot.spec import CalendarSpec
from storage.appointments_console import ListedAppointment, appointments_between
from webhooks.console.auth import current_rep, login_required, refuse, wants_json
from webhooks.console.csrf import csrf_token
from webhooks.console.pages import console_page
from webhooks.console.present import channel_label, display_name
from webhooks.keys import CATALOG, CONSOLE_CLOCK, DATABASE

PAGE = "/console/appointments"
LANGUAGE = "en"  # the console's; place names are shown in it when the script has it
# A rep picks days near today: the bounds keep date arithmetic (and time zones) in range.
FIRST_DAY, LAST_DAY = date(2000, 1, 1), date(2999, 12, 31)
DONE = {"moved": "Appointment moved; the prospect has been told.",
        "cancelled": "Appointment cancelled; the prospect has been told."}  # fmt: skip
STATUS_LABELS = {"booked": "Booked", "cancelled": "Cancelled"}


class BadQueryError(ValueError):
    """A query or form value the page cannot use; the message says which and why."""


@dataclass(frozen=True, slots=True)
class Place:
    calendar: str
    location: str
    name: str
    address: str | None

    @property
    def key(self) -> str:
        """How the location filter names it: calendar ids are shared by scripts, location ids
        only within their calendar."""
        return f"{self.calendar}:{self.location}"


@dataclass(frozen=True, slots=True)
class Calendar:
    spec: CalendarSpec
    zone: ZoneInfo
    script_name: str
    places: tuple[Place, ...]


def calendars(catalog: ScriptCatalog) -> dict[str, Calendar]:
    """Every calendar of the scripts served, by id. Scripts that name the same calendar share
    its seats; the first script (by id) that defines it describes it here."""
    found: dict[str, Calendar] = {}
    for script_id in catalog.ids():
        spec = catalog.current(script_id).script.spec
        for calendar in spec.calendars:
            if calendar.id in found:
                continue
            places = tuple(
                Place(
                    calendar.id,
                    location.id,
                    pick_language(location.name, LANGUAGE, spec.default_language),
                    location.address,
                )
                for location in calendar.locations
            )
            found[calendar.id] = Calendar(calendar, zone_of(spec, calendar), spec.name, places)
    return found


def parse_day(text: str, name: str = "day") -> date:
    try:
        day = date.fromisoformat(text)
    except ValueError:
        raise BadQueryError(f"{name} must be a date like 2026-01-31, not {text[:20]!r}") from None
    if not FIRST_DAY <= day <= LAST_DAY:
        raise BadQueryError(f"{name} must be between {FIRST_DAY} and {LAST_DAY}")
    return day


def place_of(known: Mapping[str, Calendar], key: str) -> Place:
    calendar_id, _, location = key.partition(":")
    calendar = known.get(calendar_id)
    place = next((p for p in calendar.places if p.location == location), None) if calendar else None
    if place is None:
        raise BadQueryError(f"unknown place {key[:60]!r}: pick one from the list")
    return place


def page_link(day: date | None, place: str = "", **extra: str) -> str:
    query = {"day": day.isoformat() if day else "", "place": place, **extra}
    kept = {key: value for key, value in query.items() if value}
    return f"{PAGE}?{urlencode(kept)}" if kept else PAGE


@login_required
async def appointments_page(request: web.Request) -> web.StreamResponse:
    query = request.query
    try:
        return await render(request, day=query.get("day", ""), place=query.get("place", ""))
    except BadQueryError as error:
        return refuse(request, 400, "bad_request", str(error))


async def render(
    request: web.Request,
    *,
    day: str,
    place: str,
    status: int = 200,
    alert: str | None = None,
) -> web.StreamResponse:
    """The page (or its JSON) for a day and an optional place; raises BadQueryError."""
    known = calendars(request.app[CATALOG])
    chosen = place_of(known, place) if place else None
    now = request.app[CONSOLE_CLOCK]()
    shown = [known[chosen.calendar]] if chosen else list(known.values())
    # No day asked for: today where the (first) calendar is.
    today = now.astimezone(shown[0].zone if shown else UTC).date()
    the_day = parse_day(day) if day else today
    sections = []
    for calendar in shown:
        start, end = day_bounds(calendar.zone, the_day)
        found = await appointments_between(
            request.app[DATABASE], start, end, calendar=calendar.spec.id
        )
        sections.extend(_sections(calendar, chosen, found, the_day, now))
    if wants_json(request):
        body = {"day": the_day.isoformat(), "places": [_section_json(s) for s in sections]}
        return web.json_response(body, status=status, headers={"Cache-Control": "no-store"})
    return console_page(
        request,
        "console_appointments.html",
        status=status,
        title=f"Appointments · {the_day:%a %d %b %Y}",
        rep=await current_rep(request),
        csrf_token=csrf_token(request),
        alert=alert,
        done=None if alert else DONE.get(request.query.get("done", "")),
        day=the_day,
        day_label=f"{the_day:%A, %d %B %Y}",
        place=chosen.key if chosen else "",
        places=[p for calendar in known.values() for p in calendar.places],
        previous=page_link(the_day - timedelta(days=1), chosen.key if chosen else ""),
        next=page_link(the_day + timedelta(days=1), chosen.key if chosen else ""),
        today=page_link(today, chosen.key if chosen else ""),
        sections=sections,
    )


def _sections(
    calendar: Calendar,
    chosen: Place | None,
    found: list[ListedAppointment],
    day: date,
    now: datetime,
) -> list[dict[str, Any]]:
    """One section per place (all of the calendar's, or the chosen one), with its bookings and
    its free times; a place the script no longer has still shows what was booked there."""
    places = [chosen] if chosen else list(calendar.places)
    known = {p.location for p in calendar.places}
    if not chosen:
        gone = sorted({a.appointment.location for a in found} - known)
        places += [Place(calendar.spec.id, location, location, None) for location in gone]
    start, end = day_bounds(calendar.zone, day)
    sections = []
    for place in places:
        mine = [a for a in found if a.appointment.location == place.location]
        taken = Counter(a.appointment.starts_at for a in mine if a.appointment.status == "booked")
        free = [
            slot.starts_at.astimezone(calendar.zone).strftime("%H:%M")
            for slot in opening_slots(calendar.spec, place.location, calendar.zone, start, end)
            if slot.starts_at > now
            and taken[slot.starts_at] < capacity_of(calendar.spec, place.location)
        ]
        sections.append(
            {
                "place": place,
                "calendar": calendar,
                "zone": str(calendar.zone.key),
                "free": free if place.location in known else [],
                "rows": [_row(calendar, listed) for listed in mine],
            }
        )
    return sections


def _row(calendar: Calendar, listed: ListedAppointment) -> dict[str, Any]:
    appointment = listed.appointment
    starts = appointment.starts_at.astimezone(calendar.zone)
    ends = appointment.ends_at.astimezone(calendar.zone)
    cancelled_by = appointment.cancelled_by
    return {
        "id": appointment.id,
        "starts_at": appointment.starts_at,
        "date": starts.date().isoformat(),
        "time": f"{starts:%H:%M}",
        "ends": f"{ends:%H:%M}",
        "location": appointment.location,
        # Erasure is what takes a booking's conversation away; its lead is an empty shell.
        "name": display_name(listed.lead_fields, listed.reference or "")
        if appointment.conversation_id is not None
        else "(erased)",
        "reference": listed.reference if appointment.conversation_id is not None else None,
        "channel": channel_label(listed.channel) if listed.channel else "",
        "channel_id": listed.channel,
        "conversation_id": appointment.conversation_id,
        "status": appointment.status,
        "status_label": STATUS_LABELS.get(appointment.status, appointment.status)
        + (
            f" by {_who(cancelled_by)}"
            if cancelled_by and appointment.status == "cancelled"
            else ""
        ),
        "booked_by": appointment.booked_by,
        # Only a booking still to come, with its conversation, can be moved or cancelled.
        "changeable": appointment.status == "booked" and appointment.conversation_id is not None,
    }


def _who(cancelled_by: str) -> str:
    """ "prospect", "rep", "erased"... as a rep reads it."""
    return {"prospect": "the prospect", "rep": "a rep", "erased": "erasure"}.get(
        cancelled_by, cancelled_by
    )


def _section_json(section: dict[str, Any]) -> dict[str, Any]:
    place: Place = section["place"]
    return {
        "calendar": place.calendar,
        "location": place.location,
        "name": place.name,
        "timezone": section["zone"],
        "free": section["free"],
        "appointments": [
            {
                "id": row["id"],
                "starts_at": row["starts_at"].astimezone(UTC).isoformat(),
                "local_time": f"{row['date']}T{row['time']}",
                "name": row["name"],
                "reference": row["reference"],
                "channel": row["channel_id"],
                "conversation_id": row["conversation_id"],
                "status": row["status"],
                "booked_by": row["booked_by"],
            }
            for row in section["rows"]
        ],
    }
