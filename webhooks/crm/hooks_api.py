"""/api/v1/hooks (Zapier REST Hooks: subscribe, unsubscribe) and /api/v1/leads (polling)."""

from __future__ import annotations

import logging
import re
import secrets
from datetime import UTC, datetime
from typing import Annotated, Any

from aiohttp import web
from pydantic import AnyHttpUrl, BaseModel, ConfigDict, Field, ValidationError, field_validator

from bot.crm_body import lead_json
from bot.crm_records import EVENTS
from storage.crm_admin import add_hook, delete_hook, leads_page
from webhooks.console.auth import caller, login_required
from webhooks.crm.wiring import CRM_DELIVERER
from webhooks.http import json_error, read_json_body
from webhooks.keys import CLOCK, DATABASE, SETTINGS

log = logging.getLogger("leadbot.crm")
MAX_BODY = 4096
MAX_LIMIT = 100
_ID = re.compile(r"[0-9]{1,9}")


class NewHook(BaseModel):
    """Zapier's subscribe body; other keys it sends along are ignored."""

    model_config = ConfigDict(extra="ignore")

    target_url: Annotated[AnyHttpUrl, Field(max_length=2000)]
    event: str

    @field_validator("event")
    @classmethod
    def _known(cls, value: str) -> str:
        if value not in EVENTS:
            raise ValueError(f"unknown event {value!r}; one of {', '.join(EVENTS)}")
        return value


def _problem(error: ValidationError) -> str:
    problem = error.errors(include_url=False)[0]
    where = ".".join(str(part) for part in problem["loc"]) or "body"
    return f"{where}: {problem['msg']}"


@login_required
async def create(request: web.Request) -> web.StreamResponse:
    try:
        wanted = NewHook.model_validate_json(await read_json_body(request, max_bytes=MAX_BODY))
    except ValidationError as error:
        return json_error(400, "bad_request", _problem(error))
    url = str(wanted.target_url)
    if wanted.target_url.scheme != "https" and not request.app[SETTINGS].crm.allow_http_hooks:
        return json_error(400, "bad_request", "target_url: must be an https:// address")
    who = await caller(request)
    secret = secrets.token_urlsafe(32)
    hook = await add_hook(
        request.app[DATABASE],
        url,
        wanted.event,
        secret=secret,
        api_key_id=who.key.id if who.key is not None else None,
        now=request.app[CLOCK](),
    )
    await request.app[CRM_DELIVERER].reload()  # this worker records the event from now on
    log.info("crm: hook created", extra={"hook_id": hook.id, "event": wanted.event})
    body = {"id": hook.id, "target_url": url, "event": wanted.event, "secret": secret}
    # The secret signs every delivery and appears in this answer only: never cache it.
    return web.json_response(body, status=201, headers={"Cache-Control": "no-store"})


@login_required
async def delete(request: web.Request) -> web.StreamResponse:
    raw = request.match_info["id"]
    who = await caller(request)
    # A key removes the hooks it made; a rep (the console) any.
    owner = who.key.id if who.key is not None else None
    found = _ID.fullmatch(raw) is not None and await delete_hook(
        request.app[DATABASE], int(raw), owner, request.app[CLOCK]()
    )
    if not found:
        return json_error(404, "not_found", f"no hook with id {raw[:40]}")
    await request.app[CRM_DELIVERER].reload()
    log.info("crm: hook deleted", extra={"hook_id": int(raw)})
    return web.Response(status=204)


def _since(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"since: {value[:40]!r} is not an ISO 8601 time") from None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed


def _whole(name: str, value: str | None, low: int, high: int, default: int | None) -> int | None:
    if value is None:
        return default
    if not _ID.fullmatch(value) or not low <= int(value) <= high:
        raise ValueError(f"{name}: must be a whole number from {low} to {high}")
    return int(value)


@login_required
async def leads(request: web.Request) -> web.StreamResponse:
    query = request.query
    try:
        since = _since(query.get("since"))
        limit = _whole("limit", query.get("limit"), 1, MAX_LIMIT, 25) or 25
        cursor = _whole("cursor", query.get("cursor"), 1, 999_999_999, None)
    except ValueError as error:
        return json_error(400, "bad_request", str(error))
    page = await leads_page(request.app[DATABASE], since=since, before=cursor, limit=limit)
    body: dict[str, Any] = {
        "leads": [lead_json(lead) for lead in page],
        # The next (older) page; null when this one was the last.
        "next_cursor": str(page[-1].id) if len(page) == limit else None,
    }
    return web.json_response(body, headers={"Cache-Control": "no-store"})


def setup(app: web.Application) -> None:
    app.router.add_post("/api/v1/hooks", create)
    app.router.add_delete("/api/v1/hooks/{id}", delete)
    app.router.add_get("/api/v1/leads", leads)
