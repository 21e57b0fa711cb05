"""Every /console and /api/v1 route the app registers, found from its router (so routes added
later are checked too), refuses callers without the right: nobody, a forged or expired session,
a request without its CSRF token, a rep beyond their role, and an API key where keys may not go.
Only the login and logout routes are public, and they are named here."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from pytest_aiohttp import AiohttpClient
from yarl import URL

from tests.console_support import SECRET, Browser, Console, running_console
from webhooks.app import create_app
from webhooks.console.auth import required_access
from webhooks.console.routes import PUBLIC_ROUTES
from webhooks.settings import Settings

PUBLIC = {
    ("GET", "/console/login"),
    ("HEAD", "/console/login"),
    ("POST", "/console/login"),
    ("POST", "/console/logout"),
}
UNSAFE = {"POST", "PUT", "PATCH", "DELETE"}


def guarded_routes() -> list[tuple[str, str]]:
    """(method, path) of every /console and /api/v1 route but the public ones."""
    # Nothing is opened by create_app: the database file is never made.
    app = create_app(Settings(database_url="sqlite:///never-opened.db", secret_key=SECRET))
    found = set()
    for route in app.router.routes():
        path = route.resource.canonical if route.resource is not None else ""
        if re.match(r"/(console|api/v1)(/|$)", path) and (route.method, path) not in PUBLIC:
            found.add((route.method, path))
    return sorted(found)


GUARDED = guarded_routes()


def test_the_router_is_searched_for_real() -> None:
    assert {("GET", "/console"), ("GET", "/api/v1/me"), ("POST", "/api/v1/keys")} <= set(GUARDED)
    assert {method for method, _ in GUARDED} >= {"GET", "HEAD", "POST", "DELETE"}
    # The app's own list of public routes is this file's (HEAD comes with GET).
    assert {route for route in PUBLIC if route[0] != "HEAD"} == PUBLIC_ROUTES


@dataclass
class Callers:
    console: Console
    rep: Browser
    admin: Browser
    key: str


@pytest.fixture
async def callers(aiohttp_client: AiohttpClient, tmp_path: Path) -> AsyncIterator[Callers]:
    async with running_console(aiohttp_client, tmp_path) as console:
        await console.add_rep("rep@example.com", role="rep")
        await console.add_rep("admin@example.com", role="admin")
        admin = await console.logged_in("admin@example.com")
        made = await console.request("POST", "/api/v1/keys", admin, json={"name": "routes"})
        key = (await made.json())["key"]
        yield Callers(console, await console.logged_in("rep@example.com"), admin, key)


def concrete(path: str) -> str:
    """The path with every {placeholder} (and {name:regex}) filled in."""
    return re.sub(r"\{[^}]+\}", "1", path)


def handler_of(console: Console, method: str, path: str) -> Any:
    for route in console.client.app.router.routes():
        if route.method == method and route.resource and route.resource.canonical == path:
            return route.handler
    raise AssertionError(f"{method} {path} is not registered")


def is_api(path: str) -> bool:
    return path.startswith("/api/v1")


async def assert_turned_away(console: Console, method: str, path: str, browser: Browser) -> None:
    response = await console.request(method, concrete(path), browser)
    if is_api(path):
        assert response.status == 401, (method, path, response.status)
        if method != "HEAD":
            assert (await response.json())["error"]["code"] == "unauthorized"
    else:
        assert response.status == 303, (method, path, response.status)
        assert URL(response.headers["Location"]).path == "/console/login"


def assert_let_in(status: int, what: str) -> None:
    assert status not in (303, 401, 403), (what, status)


@pytest.mark.parametrize(("method", "path"), GUARDED)
async def test_every_route_declares_who_may_use_it(
    callers: Callers, method: str, path: str
) -> None:
    access = required_access(handler_of(callers.console, method, path))
    assert access in ("login", "rep", "admin", "key or admin"), (
        f"{method} {path}: wrap its handler in login_required or role_required(...)"
    )


@pytest.mark.parametrize(("method", "path"), GUARDED)
async def test_nobody_gets_in(callers: Callers, method: str, path: str) -> None:
    console = callers.console
    await assert_turned_away(console, method, path, Browser())
    await assert_turned_away(console, method, path, Browser({"leadbot_session": "F" * 43}))
    revoked = await console.reps.keys_with_prefix(callers.key[:8])
    await console.reps.revoke_key(revoked[0].id, console.clock())
    response = await console.request(method, concrete(path), headers={"X-Api-Key": callers.key})
    if is_api(path):
        assert response.status == 401
    else:  # keys are no login to the console at all
        assert response.status == 303


@pytest.mark.parametrize(("method", "path"), GUARDED)
async def test_an_expired_session_gets_nowhere(callers: Callers, method: str, path: str) -> None:
    callers.console.clock.advance(hours=12)
    await assert_turned_away(callers.console, method, path, callers.admin)


@pytest.mark.parametrize(("method", "path"), [r for r in GUARDED if r[0] in UNSAFE])
async def test_a_change_without_the_csrf_token_is_refused(
    callers: Callers, method: str, path: str
) -> None:
    for headers in ({}, {"X-CSRF-Token": "x" * 43}):
        response = await callers.console.request(
            method, concrete(path), callers.admin, csrf=False, headers=headers
        )
        assert response.status == 403, (method, path, headers)


@pytest.mark.parametrize(("method", "path"), GUARDED)
async def test_each_caller_gets_what_their_role_allows(
    callers: Callers, method: str, path: str
) -> None:
    console = callers.console
    access = required_access(handler_of(console, method, path))
    url = concrete(path)
    as_rep = await console.request(method, url, callers.rep)
    with_key = await console.request(
        method, url, headers={"Authorization": f"Bearer {callers.key}"}
    )
    if access == "admin":
        assert as_rep.status == 403, (method, path)
        if is_api(path):
            assert with_key.status == 403, (method, path)
    elif access == "key or admin":  # a lead's export and erasure (console/privacy_api.py)
        assert as_rep.status == 403, (method, path)
        assert_let_in(with_key.status, "key")
    else:
        assert_let_in(as_rep.status, "rep")
        if is_api(path) and access == "login":
            assert_let_in(with_key.status, "key")
    as_admin = await console.request(method, url, callers.admin)
    assert_let_in(as_admin.status, "admin")


async def test_the_public_routes_need_no_login(callers: Callers) -> None:
    console = callers.console
    assert (await console.request("GET", "/console/login")).status == 200
    assert (await console.request("HEAD", "/console/login")).status == 200
    logout = await console.request("POST", "/console/logout")  # nobody to log out: harmless
    assert logout.status == 303
    assert logout.headers["Location"] == "/console/login"
