"""Who is calling the console or the API, and the wrappers that let only the right ones in.

A rep is known by their session cookie, on /console and /api/v1. A program is known by its API
key, on /api/v1 only; a request that presents a key is judged by the key alone, never by a
cookie that came along. Keys act for no rep and hold no role: `role_required` refuses them,
so a key can never make or revoke keys."""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from urllib.parse import urlencode

from aiohttp import web

from storage.reps import ROLES, ApiKey, Rep, RepSession
from webhooks.console.apikeys import presented_key
from webhooks.console.pages import console_message
from webhooks.console.sessions import load_session, reps
from webhooks.console.tokens import stored_hash
from webhooks.http import json_error

log = logging.getLogger("leadbot.console")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
API_PREFIX = "/api/v1"
CONSOLE_PREFIX = "/console"
LOGIN_PATH = "/console/login"
# The attribute login_required and role_required leave on a handler: tests read it to check
# every route, and a route without it stands out.
ACCESS_ATTRIBUTE = "leadbot_access"


@dataclass(frozen=True, slots=True)
class Caller:
    session: RepSession | None = None
    key: ApiKey | None = None
    problem: str | None = None  # why credentials that came were not taken

    @property
    def rep(self) -> Rep | None:
        return self.session.rep if self.session is not None else None

    @property
    def known(self) -> bool:
        return self.session is not None or self.key is not None


CALLER = web.RequestKey("console_caller", Caller)


def is_api(request: web.Request) -> bool:
    return _under(request.path, API_PREFIX)


def is_console(request: web.Request) -> bool:
    return _under(request.path, CONSOLE_PREFIX)


def _under(path: str, prefix: str) -> bool:
    return path == prefix or path.startswith(prefix + "/")


async def caller(request: web.Request) -> Caller:
    """Who is calling (looked up once per request)."""
    found = request.get(CALLER)
    if found is None:
        found = request[CALLER] = await _identify(request)
    return found


async def _identify(request: web.Request) -> Caller:
    key = presented_key(request) if is_api(request) else None
    if key is None:
        return Caller(session=await load_session(request))
    if key:
        stored = await reps(request).key_by_hash(stored_hash(key))
        if stored is not None and stored.revoked_at is None:
            return Caller(key=stored)
    return Caller(problem="the API key is not valid, or it was revoked")


async def current_rep(request: web.Request) -> Rep | None:
    """The rep logged in on this request, or None (also for a program with an API key)."""
    return (await caller(request)).rep


def wants_json(request: web.Request) -> bool:
    """Programs and scripts (the API, htmx, fetch asking for JSON) get JSON, browsers pages."""
    if is_api(request) or "HX-Request" in request.headers:
        return True
    accept = request.headers.get("Accept", "")
    return "application/json" in accept and "text/html" not in accept


def refuse(request: web.Request, status: int, code: str, message: str) -> web.Response:
    """An error in the form the caller reads: JSON, or a console page."""
    if wants_json(request):
        return json_error(status, code, message)
    return console_message(request, status, message)


def unauthenticated(request: web.Request, who: Caller) -> web.Response:
    if wants_json(request):
        message = who.problem or (
            "log in to the console, or send an API key as Authorization: Bearer <key>"
            if is_api(request)
            else "log in to the console first"
        )
        response = json_error(401, "unauthorized", message)
        if is_api(request):
            response.headers["WWW-Authenticate"] = 'Bearer realm="leadbot"'
        return response
    # A page: log in, then come back here (a form's target cannot be come back to: the inbox).
    back = request.path_qs if request.method in ("GET", "HEAD") else CONSOLE_PREFIX
    raise web.HTTPSeeOther(f"{LOGIN_PATH}?{urlencode({'next': back})}")


def login_required(handler: Handler) -> Handler:
    """Only a logged-in rep (or, on /api/v1, a program with a valid API key) gets through;
    anyone else is sent to the login page (pages) or gets 401 (JSON)."""

    @functools.wraps(handler)
    async def wrapper(request: web.Request) -> web.StreamResponse:
        who = await caller(request)
        if not who.known:
            return unauthenticated(request, who)
        return await handler(request)

    wrapper.__dict__[ACCESS_ATTRIBUTE] = "login"
    return wrapper


def role_required(role: str) -> Callable[[Handler], Handler]:
    """Only a logged-in rep with `role` (or a higher one) gets through: 401 or the login page
    for nobody, 403 for a rep with a lower role and for API keys."""
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}: use {' or '.join(ROLES)}")

    def decorate(handler: Handler) -> Handler:
        @functools.wraps(handler)
        async def wrapper(request: web.Request) -> web.StreamResponse:
            who = await caller(request)
            if not who.known:
                return unauthenticated(request, who)
            if who.rep is None:
                return refuse(
                    request, 403, "forbidden", f"this needs a rep logged in as {role}, not a key"
                )
            if not who.rep.has_role(role):
                log.info("console: refused a rep beyond their role", extra={"rep_id": who.rep.id})
                return refuse(request, 403, "forbidden", f"this needs the {role} role")
            return await handler(request)

        wrapper.__dict__[ACCESS_ATTRIBUTE] = role
        return wrapper

    return decorate


def required_access(handler: object) -> str | None:
    """ "login", a role, or None for a handler wrapped by neither."""
    access = getattr(handler, ACCESS_ATTRIBUTE, None)
    return access if isinstance(access, str) else None
