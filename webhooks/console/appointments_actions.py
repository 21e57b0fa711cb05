"""A rep moves a booking to another slot, or cancels it (POST /console/appointments/{id}/move
and .../cancel). The conversation service does the work in one transaction and tells the
prospect on their channel. A form gets 303 back to the day's list; a refused change has changed
nothing and shows the list again with the reason on top (400 for what was typed, 404 for no
such booking, 409 when the slot is full); a script asking for JSON gets JSON."""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import Awaitable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from typing import Any

from aiohttp import web

from bot import desk
from bot.appointments_service import (
    AppointmentError,
    NotASlotError,
    SlotFullError,
    UnknownAppointmentError,
)
from bot.effects import BookAppointment
from bot.errors import UnknownConversationError
from bot.service import TurnResult
from storage.reps import Rep
from webhooks.console.appointments import (
    BadQueryError,
    calendars,
    page_link,
    parse_day,
    place_of,
    render,
)
from webhooks.console.auth import current_rep, login_required, refuse, wants_json
from webhooks.http import json_error
from webhooks.intake.common import IntakeError
from webhooks.intake.payload import load_json
from webhooks.keys import CATALOG, CONVERSATIONS, STORAGE

log = logging.getLogger("leadbot.console")
MAX_BODY = 8 * 1024
_ID = re.compile(r"[0-9]{1,18}")
_TIME = re.compile(r"([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9])?")
_FORMS = frozenset({"application/x-www-form-urlencoded", "multipart/form-data"})


async def _fields(request: web.Request) -> dict[str, str]:
    """A form's fields, or a JSON object's string values."""
    if request.content_type == "application/json":
        if request.content_length is not None and request.content_length > MAX_BODY:
            raise BadQueryError(f"the body is larger than {MAX_BODY} bytes")
        try:
            data: Any = load_json(await request.read())
        except IntakeError as error:
            raise BadQueryError(error.message) from None
        if not isinstance(data, dict):
            raise BadQueryError("send a JSON object")
        return {key: value for key, value in data.items() if isinstance(value, str)}
    if request.content_type in _FORMS:
        return {
            key: value for key, value in (await request.post()).items() if isinstance(value, str)
        }
    return {}


def _answers_json(request: web.Request) -> bool:
    return wants_json(request) or request.content_type == "application/json"


async def _refused(
    request: web.Request, fields: dict[str, str], status: int, code: str, message: str
) -> web.StreamResponse:
    """The day's list again with the reason on top (the page the form came from, if it can
    still be shown), or a JSON error."""
    if _answers_json(request):
        return json_error(status, code, message)
    alert = message[0].upper() + message[1:] + ("" if message.endswith(".") else ".")
    try:
        return await render(
            request,
            day=fields.get("day", ""),
            place=fields.get("place", ""),
            status=status,
            alert=alert,
        )
    except BadQueryError:  # a tampered return address: the list of today will do
        return await render(request, day="", place="", status=status, alert=alert)


@dataclass(frozen=True, slots=True)
class _Asked:
    appointment_id: int
    rep: desk.Rep
    fields: dict[str, str]


async def _start(request: web.Request) -> _Asked | web.StreamResponse:
    """The booking's id, the acting rep and the form, or the answer that refuses them."""
    raw = request.match_info["id"]
    if not _ID.fullmatch(raw):
        return refuse(request, 404, "not_found", "no such appointment")
    who: Rep | None = await current_rep(request)
    if who is None:  # login_required let in a rep: the console takes no API keys
        return refuse(request, 403, "forbidden", "log in as a rep")
    try:
        fields = await _fields(request)
    except BadQueryError as error:
        return await _refused(request, {}, 400, "bad_request", str(error))
    return _Asked(int(raw), desk.Rep(who.id, who.name), fields)


async def _change(
    request: web.Request, asked: _Asked, change: Awaitable[TurnResult]
) -> TurnResult | web.StreamResponse:
    """The service's move or cancel, or the list again with why it was refused."""
    try:
        return await change
    except AppointmentError as error:
        status, code = _failure(error)
        return await _refused(request, asked.fields, status, code, str(error))
    except UnknownConversationError:  # erased a moment ago
        message = f"no booked appointment {asked.appointment_id}: it was erased"
        return await _refused(request, asked.fields, 404, "not_found", message)


def _failure(error: AppointmentError) -> tuple[int, str]:
    if isinstance(error, UnknownAppointmentError):
        return 404, "not_found"
    if isinstance(error, NotASlotError):
        return 400, "not_a_slot"
    if isinstance(error, SlotFullError):
        return 409, "slot_full"
    return 409, "refused"


@login_required
async def move(request: web.Request) -> web.StreamResponse:
    asked = await _start(request)
    if isinstance(asked, web.StreamResponse):
        return asked
    appointment_id, rep, fields = asked.appointment_id, asked.rep, asked.fields
    found = await request.app[STORAGE].run(lambda tx: tx.appointments.get(appointment_id))
    if found is None or found.status != "booked" or found.conversation_id is None:
        message = f"no booked appointment {appointment_id}: it was cancelled or erased"
        return await _refused(request, fields, 404, "not_found", message)
    known = calendars(request.app[CATALOG])
    calendar = known.get(found.calendar)
    if calendar is None:
        message = f"the scripts no longer have the calendar {found.calendar!r}"
        return await _refused(request, fields, 409, "refused", message)
    try:
        day = parse_day(fields.get("date", "").strip(), "the date")
        at = fields.get("time", "").strip()
        if not _TIME.fullmatch(at):
            raise BadQueryError(f"the time must be like 14:30, not {at[:20]!r}")
        location = fields.get("location", "").strip() or found.location
        place = place_of(known, f"{calendar.spec.id}:{location}")
    except BadQueryError as error:
        return await _refused(request, fields, 400, "bad_request", str(error))
    # A wall-clock time in the calendar's zone; one the clocks skip is no slot, and the service
    # says so (a time that happens twice is taken the first time, as slots are).
    wall = datetime.combine(day, time.fromisoformat(at), tzinfo=calendar.zone)
    starts_at = wall.astimezone(UTC)
    result = await _change(
        request,
        asked,
        request.app[CONVERSATIONS].move_appointment(
            appointment_id, location=place.location, starts_at=starts_at, rep=rep
        ),
    )
    if isinstance(result, web.StreamResponse):
        return result
    moved_to = next(
        (e.appointment_id for e in result.effects if isinstance(e, BookAppointment)), None
    )
    log.info(
        "console: appointment moved",
        extra={"rep_id": rep.id, "appointment_id": appointment_id, "moved_to": moved_to},
    )
    if _answers_json(request):
        body = {"ok": True, "action": "move", "appointment_id": moved_to}
        return web.json_response(body, headers={"Cache-Control": "no-store"})
    # On to the day it moved to (keeping the place filter, if one was on, at the new place).
    keep = place.key if fields.get("place") else ""
    raise web.HTTPSeeOther(page_link(day, keep, done="moved"))


@login_required
async def cancel(request: web.Request) -> web.StreamResponse:
    asked = await _start(request)
    if isinstance(asked, web.StreamResponse):
        return asked
    appointment_id, fields = asked.appointment_id, asked.fields
    result = await _change(
        request, asked, request.app[CONVERSATIONS].cancel_appointment(appointment_id, rep=asked.rep)
    )
    if isinstance(result, web.StreamResponse):
        return result
    log.info("console: appointment cancelled", extra={"rep_id": asked.rep.id, "id": appointment_id})
    if _answers_json(request):
        body = {"ok": True, "action": "cancel", "appointment_id": appointment_id}
        return web.json_response(body, headers={"Cache-Control": "no-store"})
    raise web.HTTPSeeOther(_back(request, fields, "cancelled"))


def _back(request: web.Request, fields: dict[str, str], done: str) -> str:
    """The list the form came from (its day and place, when they are still good)."""
    day: date | None = None
    with contextlib.suppress(BadQueryError):
        day = parse_day(fields.get("day", ""))
    place = ""
    with contextlib.suppress(BadQueryError):
        place = place_of(calendars(request.app[CATALOG]), fields.get("place", "")).key
    return page_link(day, place, done=done)
