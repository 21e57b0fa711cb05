"""GET /a/{token}.ics: a booking as an iCalendar file, the link its confirmation carries.

Public on purpose: the prospect's calendar app fetches it without any login, and the signed
token is the authority (bot.appointments_links). A link that is not ours, was altered or has
expired, and a booking that was erased, get a JSON error naming the problem, never a 500."""

from __future__ import annotations

import contextlib
import logging

from aiohttp import web

from bot.appointments_links import appointment_from_token, ics_text
from bot.compiled import CompiledScript
from bot.errors import UnknownScriptError
from bot.tokens import TokenError
from storage.appointments_console import ListedAppointment, listed_appointment
from webhooks.http import json_error
from webhooks.keys import CATALOG, CLOCK, DATABASE, SIGNER, STORAGE

log = logging.getLogger("leadbot.appointments")
PATH = "/a/{token}.ics"


def setup(app: web.Application) -> None:
    app.router.add_get(PATH, calendar_file)


async def calendar_file(request: web.Request) -> web.Response:
    now = request.app[CLOCK]()
    try:
        appointment_id = appointment_from_token(
            request.app[SIGNER], request.match_info["token"], now
        )
    except TokenError as error:
        if error.reason == "expired":
            return json_error(410, "link_expired", "this calendar link has expired")
        return json_error(404, "link_invalid", "this calendar link is not valid")
    found = await listed_appointment(request.app[DATABASE], appointment_id)
    # Erasure keeps a booking's anonymous row but takes its conversation: nothing to show.
    if found is None or found.appointment.conversation_id is None:
        return json_error(404, "not_found", "this appointment no longer exists")
    script = await _script_of(request, found)
    if script is None:
        log.warning("calendar link: the booking's script is gone", extra={"id": appointment_id})
        return json_error(404, "not_found", "this appointment's script is no longer served")
    language = found.language or script.spec.default_language
    body = ics_text(found.appointment, script.spec, language, now)
    return web.Response(
        text=body,
        content_type="text/calendar",
        charset="utf-8",
        headers={
            "Content-Disposition": f'attachment; filename="appointment-{appointment_id}.ics"',
            # A rep may move or cancel it: calendar apps and proxies ask again each time.
            "Cache-Control": "private, no-cache",
        },
    )


async def _script_of(request: web.Request, found: ListedAppointment) -> CompiledScript | None:
    """The version the conversation runs (its place names as the prospect saw them), else the
    script's current version."""
    catalog = request.app[CATALOG]
    script_id, version = found.appointment.script_id, found.script_version
    current: CompiledScript | None = None
    with contextlib.suppress(UnknownScriptError):
        current = catalog.current(script_id).script
    if version is None or (current is not None and current.version == version):
        return current
    try:  # an older version: its source is kept in the database
        return await request.app[STORAGE].run(
            lambda tx: catalog.version(script_id, version, tx.scripts)
        )
    except UnknownScriptError:
        return current
