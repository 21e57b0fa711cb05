"""Reps' login sessions: a random token in an HttpOnly cookie, its hash in the database.

A session ends 12 hours after its last use (idle) and 7 days after login (absolute), at logout,
and when its rep is disabled. Its last use is written at most once a minute, so the idle limit
holds to within a minute without a database write on every request."""

from __future__ import annotations

from datetime import datetime, timedelta

from aiohttp import web

from storage.reps import Rep, RepSession, SqlReps
from webhooks.console.tokens import URLSAFE_TOKEN, new_token, stored_hash
from webhooks.keys import CONSOLE_CLOCK, DATABASE, SETTINGS

SESSION_COOKIE = "leadbot_session"
IDLE_LIMIT = timedelta(hours=12)
LIFETIME = timedelta(days=7)
TOUCH_EVERY = timedelta(minutes=1)


def reps(request: web.Request) -> SqlReps:
    return SqlReps(request.app[DATABASE])


def now(request: web.Request) -> datetime:
    return request.app[CONSOLE_CLOCK]()


def secure_cookies(request: web.Request) -> bool:
    """Cookies are Secure when leadbot is reached over https (public_url says so)."""
    return request.app[SETTINGS].public_url.scheme == "https"


async def open_session(request: web.Request, response: web.StreamResponse, rep: Rep) -> None:
    """A new session for `rep` (always a new token: nothing chosen before login survives it)."""
    token = new_token()
    moment = now(request)
    await reps(request).open_session(
        stored_hash(token),
        rep.id,
        new_token(),
        moment,
        expires_at=moment + LIFETIME,
        idle_since=moment - IDLE_LIMIT,
    )
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=int(LIFETIME.total_seconds()),
        path="/",
        httponly=True,
        samesite="Lax",
        secure=secure_cookies(request),
    )


async def load_session(request: web.Request) -> RepSession | None:
    """The live session the request's cookie names, or None."""
    token = request.cookies.get(SESSION_COOKIE)
    if token is None or not URLSAFE_TOKEN.fullmatch(token):
        return None
    # Found by the token's hash: the lookup compares hashes, which tell nothing of the token.
    session = await reps(request).session(stored_hash(token))
    if session is None:
        return None
    moment = now(request)
    if moment >= session.expires_at or moment - session.last_seen_at >= IDLE_LIMIT:
        return None
    if moment - session.last_seen_at >= TOUCH_EVERY:
        await reps(request).touch_session(session.id, moment)
    return session


async def close_session(
    request: web.Request, response: web.StreamResponse, session: RepSession | None
) -> None:
    if session is not None:
        await reps(request).close_session(session.id)
    clear_session_cookie(request, response)


def clear_session_cookie(request: web.Request, response: web.StreamResponse) -> None:
    response.del_cookie(
        SESSION_COOKIE, path="/", secure=secure_cookies(request), httponly=True, samesite="Lax"
    )
