"""Logging in and out of the console."""

from __future__ import annotations

import logging
import math
import re

from aiohttp import web

from webhooks.console.auth import CONSOLE_PREFIX, LOGIN_PATH, caller, current_rep
from webhooks.console.csrf import (
    FIELD,
    clear_login_cookie,
    login_form_is_ours,
    login_form_token,
    set_login_cookie,
)
from webhooks.console.pages import console_page
from webhooks.console.sessions import close_session, load_session, now, open_session, reps
from webhooks.console.throttle import FORGET_AFTER, address_key, email_key, wait_after
from webhooks.hosted_form import client_address
from webhooks.keys import PASSWORDS

log = logging.getLogger("leadbot.console")

# Where a login may send the browser next: a console page on this site, nothing else.
_NEXT = re.compile(r"/console(?:[/?#][^\s\\]*)?")
WRONG = "The email or password is wrong, or this login is disabled."


def safe_next(value: str | None) -> str:
    return value if value is not None and _NEXT.fullmatch(value) else CONSOLE_PREFIX


def login_form(
    request: web.Request,
    *,
    status: int = 200,
    message: str | None = None,
    email: str = "",
    next_page: str = CONSOLE_PREFIX,
) -> web.Response:
    token = login_form_token(request)
    response = console_page(
        request,
        "login.html",
        status=status,
        title="Log in to leadbot",
        message=message,
        email=email,
        next=next_page,
        csrf_token=token,
    )
    set_login_cookie(request, response, token)
    return response


async def login_page(request: web.Request) -> web.StreamResponse:
    next_page = safe_next(request.query.get("next"))
    if await current_rep(request) is not None:
        raise web.HTTPSeeOther(next_page)
    return login_form(request, next_page=next_page)


async def login(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    email = _text(form.get("email")).strip().lower()
    password = _text(form.get("password"))
    next_page = safe_next(_text(form.get("next")) or None)
    shown = {"email": email[:320], "next_page": next_page}
    if not login_form_is_ours(request, _text(form.get(FIELD)) or None):
        message = "This form had expired. Please log in again."
        return login_form(request, status=403, message=message, **shown)
    if not email or not password:
        return login_form(request, status=400, message="Enter your email and password.", **shown)
    store = reps(request)
    moment = now(request)
    email_throttle, address_throttle = email_key(email), address_key(client_address(request))
    wait = await store.count_login_attempt(
        [email_throttle, address_throttle],
        moment,
        wait_after=wait_after,
        forget_after=FORGET_AFTER,
    )
    if wait.total_seconds() > 0:
        seconds = math.ceil(wait.total_seconds())
        log.warning("console: login refused, too many failures", extra={"retry_after": seconds})
        response = login_form(
            request,
            status=429,
            message=f"Too many failed attempts. Try again in {_duration(seconds)}.",
            **shown,
        )
        response.headers["Retry-After"] = str(seconds)
        return response
    found = await store.credentials(email)
    passwords = request.app[PASSWORDS]
    matches = await passwords.verify(found[1] if found else None, password)
    if found is None or not matches or found[0].disabled:
        log.warning("console: login refused, wrong email or password")
        return login_form(request, status=401, message=WRONG, **shown)
    rep, stored = found
    await store.login_succeeded(forget=[email_throttle], uncount=[address_throttle])
    await store.forget_login_failures(moment - FORGET_AFTER)
    if passwords.needs_rehash(stored):  # hashed with older parameters: bring it up to date
        await store.set_password_hash(
            rep.id, await passwords.new_hash(password), close_sessions=False
        )
    response = web.HTTPSeeOther(next_page)
    previous = await load_session(request)  # whoever was logged in on this browser before
    if previous is not None:
        await store.close_session(previous.id)
    await open_session(request, response, rep)
    clear_login_cookie(request, response)
    log.info("console: rep logged in", extra={"rep_id": rep.id})
    raise response


async def logout(request: web.Request) -> web.StreamResponse:
    # The CSRF guard has checked the token of a session; without one there is nothing to end.
    who = await caller(request)
    response = web.HTTPSeeOther(LOGIN_PATH)
    await close_session(request, response, who.session)
    if who.rep is not None:
        log.info("console: rep logged out", extra={"rep_id": who.rep.id})
    raise response


def _text(value: object) -> str:
    return value if isinstance(value, str) else ""


def _duration(seconds: int) -> str:
    if seconds < 90:
        return f"{seconds} seconds"
    return f"{math.ceil(seconds / 60)} minutes"
