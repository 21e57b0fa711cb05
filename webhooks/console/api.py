"""/api/v1: who is calling, and API keys (made and revoked by admins, from the console)."""

from __future__ import annotations

import logging
import re
from typing import Annotated, Any

from aiohttp import web
from pydantic import BaseModel, ConfigDict, StringConstraints, ValidationError

from storage.reps import ApiKey
from webhooks.console.apikeys import new_api_key
from webhooks.console.auth import caller, current_rep, login_required, role_required
from webhooks.console.sessions import now, reps
from webhooks.crm.wiring import CRM_DELIVERER
from webhooks.http import json_error, read_json_body

log = logging.getLogger("leadbot.console")
MAX_BODY = 4096
_ID = re.compile(r"[0-9]{1,9}")  # ids are database integers: a longer number names no key


class NewKey(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]


def key_json(key: ApiKey) -> dict[str, Any]:
    return {
        "id": key.id,
        "name": key.name,
        "prefix": key.prefix,
        "created_by": key.created_by,
        "created_at": key.created_at.isoformat(),
        "revoked_at": key.revoked_at.isoformat() if key.revoked_at else None,
    }


@login_required
async def me(request: web.Request) -> web.StreamResponse:
    who = await caller(request)
    if who.rep is not None:
        rep = who.rep
        body: dict[str, Any] = {
            "kind": "rep",
            "rep": {"id": rep.id, "email": rep.email, "name": rep.name, "role": rep.role},
            # For scripts of the console's own pages; other sites cannot read this answer.
            "csrf_token": who.session.csrf_token if who.session else None,
        }
    else:
        key = who.key
        assert key is not None  # login_required let in a rep or a key
        body = {
            "kind": "api_key",
            "api_key": {"id": key.id, "name": key.name, "prefix": key.prefix},
        }
    return web.json_response(body, headers={"Cache-Control": "no-store"})


@role_required("admin")
async def list_keys(request: web.Request) -> web.StreamResponse:
    keys = await reps(request).keys()
    return web.json_response(
        {"keys": [key_json(key) for key in keys]}, headers={"Cache-Control": "no-store"}
    )


@role_required("admin")
async def create_key(request: web.Request) -> web.StreamResponse:
    try:
        wanted = NewKey.model_validate_json(await read_json_body(request, max_bytes=MAX_BODY))
    except ValidationError as error:
        problem = error.errors(include_url=False)[0]
        where = ".".join(str(part) for part in problem["loc"]) or "body"
        return json_error(400, "bad_request", f"{where}: {problem['msg']}")
    admin = await current_rep(request)
    made = new_api_key()
    key = await reps(request).add_key(
        wanted.name, made.prefix, made.key_hash, admin.id if admin else None, now(request)
    )
    # "api_client_id": the log redactor masks every field whose name holds "key".
    log.info("console: API key created", extra={"api_client_id": key.id, "rep_id": key.created_by})
    # The key itself is in this answer and nowhere else, ever: never cache it.
    return web.json_response(
        {**key_json(key), "key": made.key}, status=201, headers={"Cache-Control": "no-store"}
    )


@role_required("admin")
async def revoke_key(request: web.Request) -> web.StreamResponse:
    raw = request.match_info["id"]
    key = await reps(request).revoke_key(int(raw), now(request)) if _ID.fullmatch(raw) else None
    if key is None:
        return json_error(404, "not_found", f"no API key with id {raw[:40]}")
    deliverer = request.app.get(CRM_DELIVERER)
    if deliverer is not None:
        try:  # the key's hooks went with it: stop recording their events now
            await deliverer.reload()
        except Exception:  # the revoke is committed; the routes refresh within seconds anyway
            log.warning("console: could not reload the CRM routes after revoking a key")
    admin = await current_rep(request)
    who = {"api_client_id": key.id, "rep_id": admin.id if admin else None}
    log.info("console: API key revoked", extra=who)
    return web.Response(status=204)
