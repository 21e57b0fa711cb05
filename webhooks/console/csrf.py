"""CSRF protection for the console and the API.

Every session has its own token. Pages put it in each form as the hidden field `csrf_token`;
scripts (fetch, htmx) send it as the `X-CSRF-Token` header. A POST, PUT, PATCH or DELETE to
/console or /api/v1 made with a session cookie and without the session's token gets 403 before
its handler runs. Requests with an API key need no token: a browser never adds a key on its own.

The login form has no session yet: it uses a double-submit cookie, a random token in a cookie
scoped to /console/login that the form must repeat."""

from __future__ import annotations

from aiohttp import web

from webhooks.console.auth import (
    CALLER,
    LOGIN_PATH,
    Caller,
    Handler,
    caller,
    is_api,
    is_console,
    refuse,
)
from webhooks.console.sessions import secure_cookies
from webhooks.console.tokens import URLSAFE_TOKEN, new_token, same_token

FIELD = "csrf_token"
HEADER = "X-CSRF-Token"
LOGIN_COOKIE = "leadbot_login_csrf"
LOGIN_COOKIE_SECONDS = 2 * 3600
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_FORMS = frozenset({"application/x-www-form-urlencoded", "multipart/form-data"})


def csrf_token(request: web.Request) -> str:
    """The token for the forms of a page (needs a logged-in rep: use it behind login_required)."""
    found: Caller | None = request.get(CALLER)
    if found is None or found.session is None:
        raise LookupError("csrf_token needs a logged-in rep: wrap the handler in login_required")
    return found.session.csrf_token


async def submitted_token(request: web.Request) -> str | None:
    """The token the request carries: its header, else its form's field."""
    header = request.headers.get(HEADER)
    if header is not None:
        return header
    if request.content_type in _FORMS:
        value = (await request.post()).get(FIELD)
        return value if isinstance(value, str) else None
    return None


@web.middleware
async def csrf_guard(request: web.Request, handler: Handler) -> web.StreamResponse:
    guarded = is_console(request) or is_api(request)
    if request.method in UNSAFE_METHODS and guarded and request.path != LOGIN_PATH:
        who = await caller(request)
        if who.session is not None:
            given = await submitted_token(request)
            if not same_token(given, who.session.csrf_token):
                return refuse(
                    request,
                    403,
                    "csrf_failed",
                    "missing or wrong CSRF token: reload the page and try again"
                    if given is None or not is_api(request)
                    else "the X-CSRF-Token header does not match this session's token",
                )
    return await handler(request)


def login_form_token(request: web.Request) -> str:
    """The login form's token: the one the browser's cookie already holds, else a new one."""
    held = request.cookies.get(LOGIN_COOKIE)
    return held if held is not None and URLSAFE_TOKEN.fullmatch(held) else new_token()


def set_login_cookie(request: web.Request, response: web.StreamResponse, token: str) -> None:
    response.set_cookie(
        LOGIN_COOKIE,
        token,
        max_age=LOGIN_COOKIE_SECONDS,
        path=LOGIN_PATH,
        httponly=True,
        samesite="Strict",
        secure=secure_cookies(request),
    )


def clear_login_cookie(request: web.Request, response: web.StreamResponse) -> None:
    response.del_cookie(
        LOGIN_COOKIE,
        path=LOGIN_PATH,
        secure=secure_cookies(request),
        httponly=True,
        samesite="Strict",
    )


def login_form_is_ours(request: web.Request, submitted: str | None) -> bool:
    """Double submit: the form repeats the token of the cookie set with it."""
    held = request.cookies.get(LOGIN_COOKIE)
    return (
        held is not None
        and URLSAFE_TOKEN.fullmatch(held) is not None
        and (same_token(submitted, held))
    )
