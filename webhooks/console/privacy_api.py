"""/api/v1/leads/{id}/export and DELETE /api/v1/leads/{id}: a person's data, out or gone.

Programs (an API key, e.g. the business's privacy-request tooling) and admins may; a rep may
not: an erasure cannot be undone, and an export holds everything about someone."""

from __future__ import annotations

import functools
import logging
import re

from aiohttp import web

from storage.privacy import SqlPrivacy, UnknownLeadError
from webhooks.console.auth import ACCESS_ATTRIBUTE, Handler, caller, refuse, unauthenticated
from webhooks.console.live import CONSOLE_HUB
from webhooks.console.sessions import now
from webhooks.http import json_error
from webhooks.keys import DATABASE

log = logging.getLogger("leadbot.privacy")
KEY_OR_ADMIN = "key or admin"  # what required_access reads on these handlers
_ID = re.compile(r"[0-9]{1,12}")
NO_STORE = {"Cache-Control": "no-store"}


def key_or_admin(handler: Handler) -> Handler:
    """A program with a valid API key, or a rep logged in as admin: 401 for nobody, 403 for a
    rep with a lower role."""

    @functools.wraps(handler)
    async def wrapper(request: web.Request) -> web.StreamResponse:
        who = await caller(request)
        if not who.known:
            return unauthenticated(request, who)
        if who.rep is not None and not who.rep.has_role("admin"):
            log.info("privacy: refused a rep beyond their role", extra={"rep_id": who.rep.id})
            return refuse(request, 403, "forbidden", "this needs the admin role or an API key")
        return await handler(request)

    wrapper.__dict__[ACCESS_ATTRIBUTE] = KEY_OR_ADMIN
    return wrapper


async def _actor(request: web.Request) -> str:
    """Who acts, as the audit log names them: a rep as the console does, or a key."""
    who = await caller(request)
    if who.rep is not None:
        return f"rep {who.rep.id} ({who.rep.name})"
    assert who.key is not None  # key_or_admin let in a rep or a key
    return f"API key {who.key.id} ({who.key.name})"


def _lead_id(request: web.Request) -> int | None:
    raw = request.match_info["id"]
    return int(raw) if _ID.fullmatch(raw) else None


def _not_found(request: web.Request) -> web.Response:
    return json_error(404, "not_found", f"no lead with id {request.match_info['id'][:40]}")


@key_or_admin
async def export_lead(request: web.Request) -> web.StreamResponse:
    lead_id = _lead_id(request)
    if lead_id is None:
        return _not_found(request)
    privacy = SqlPrivacy(request.app[DATABASE])
    try:
        found = await privacy.export(lead_id, actor=await _actor(request), now=now(request))
    except UnknownLeadError:
        return _not_found(request)
    log.info("privacy: lead exported", extra={"lead_id": lead_id})
    return web.json_response(found, headers=NO_STORE)


@key_or_admin
async def erase_lead(request: web.Request) -> web.StreamResponse:
    lead_id = _lead_id(request)
    if lead_id is None:
        return _not_found(request)
    privacy = SqlPrivacy(request.app[DATABASE])
    try:
        erasure = await privacy.erase(lead_id, actor=await _actor(request), now=now(request))
    except UnknownLeadError:
        return _not_found(request)
    for conversation_id in erasure.conversation_ids:
        request.app[CONSOLE_HUB].changed(conversation_id)  # open pages say it is gone
    log.info("privacy: lead erased", extra={"lead_id": lead_id, "already": erasure.already})
    body = {
        "lead_id": lead_id,
        "erased": True,
        "already_erased": erasure.already,
        "removed": dict(erasure.removed),
    }
    return web.json_response(body, headers=NO_STORE)


def setup(app: web.Application) -> None:
    app.router.add_get("/api/v1/leads/{id}/export", export_lead)
    app.router.add_delete("/api/v1/leads/{id}", erase_lead)
