"""The console under test: the real app on a fresh SQLite or PostgreSQL database, a clock that
moves when told, and browsers (identities) whose cookies the test holds itself."""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from aiohttp import ClientResponse, DummyCookieJar
from aiohttp.test_utils import TestClient
from argon2 import PasswordHasher, profiles
from pytest_aiohttp import AiohttpClient
from sqlalchemy.engine import make_url

from storage.db import connect
from storage.migrate import upgrade
from storage.reps import Rep, SqlReps
from tests.conftest import NOW, POSTGRES_URL_VARIABLE, FakeClock, postgres_url
from webhooks.app import create_app
from webhooks.console.passwords import Passwords
from webhooks.console.tokens import stored_hash
from webhooks.keys import CONSOLE_CLOCK, DATABASE, PASSWORDS
from webhooks.settings import Settings

PASSWORD = "correct horse battery staple"
SECRET = "test-secret-key-0123456789"
# argon2's cheapest parameters: the app's default ones take a quarter of a second a check.
CHEAP = PasswordHasher.from_parameters(profiles.CHEAPEST)
_HIDDEN_TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')


def _admin_dsn(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


async def _create_database(url: str, name: str) -> str:
    admin = await asyncpg.connect(_admin_dsn(url))
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    fresh = make_url(url).set(database=name).render_as_string(hide_password=False)
    database = connect(fresh)
    try:
        await upgrade(database)
    finally:
        await database.dispose()
    return fresh


async def _drop_database(url: str, name: str) -> None:
    admin = await asyncpg.connect(_admin_dsn(url))
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


def _postgres_or_skip() -> str:
    url = postgres_url()
    if url is None:
        pytest.skip(f"PostgreSQL tests need {POSTGRES_URL_VARIABLE} (CI sets it)")
    return url


@asynccontextmanager
async def database_url(kind: str, tmp_path: Path) -> AsyncIterator[str]:
    """A database for an app that connects by URL alone: a SQLite file (the app migrates it),
    or a migrated PostgreSQL database of its own, dropped afterwards."""
    if kind == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'console.db'}"
        return
    url = _postgres_or_skip()
    name = f"leadbot_console_{uuid.uuid4().hex[:12]}"
    try:
        yield await _create_database(url, name)
    finally:
        await _drop_database(url, name)


@contextmanager
def database_url_sync(kind: str, tmp_path: Path) -> Iterator[str]:
    """The same, for tests that run the command line (which runs its own event loop)."""
    if kind == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}"
        return
    url = _postgres_or_skip()
    name = f"leadbot_cli_{uuid.uuid4().hex[:12]}"
    try:
        yield asyncio.run(_create_database(url, name))
    finally:
        asyncio.run(_drop_database(url, name))


def settings_for(url: str, **overrides: Any) -> Settings:
    return Settings(database_url=url, secret_key=SECRET, **overrides)


@dataclass
class Browser:
    """One browser's cookies, sent by hand (the test client keeps none of its own)."""

    cookies: dict[str, str] = field(default_factory=dict)
    csrf: str | None = None  # the session's token, once logged in

    def header(self) -> dict[str, str]:
        if not self.cookies:
            return {}
        return {"Cookie": "; ".join(f"{name}={value}" for name, value in self.cookies.items())}

    def keep(self, response: ClientResponse) -> None:
        for name, morsel in response.cookies.items():
            if morsel["max-age"] == "0" or not morsel.value:
                self.cookies.pop(name, None)
            else:
                self.cookies[name] = morsel.value


@dataclass
class Console:
    client: TestClient[Any, Any]
    clock: FakeClock

    @property
    def reps(self) -> SqlReps:
        return SqlReps(self.client.app[DATABASE])

    async def add_rep(
        self, email: str, *, role: str = "rep", password: str = PASSWORD, name: str = "Ana Ruiz"
    ) -> Rep:
        return await self.reps.add(email, name, role, CHEAP.hash(password), self.clock())

    async def request(
        self,
        method: str,
        path: str,
        browser: Browser | None = None,
        *,
        csrf: bool = True,
        headers: dict[str, str] | None = None,
        **options: Any,
    ) -> ClientResponse:
        sent = dict(browser.header()) if browser is not None else {}
        if csrf and browser is not None and browser.csrf is not None:
            sent["X-CSRF-Token"] = browser.csrf
        sent.update(headers or {})
        response = await self.client.request(
            method, path, headers=sent, allow_redirects=False, **options
        )
        if browser is not None:
            browser.keep(response)
        return response

    async def login_form(self, browser: Browser, path: str = "/console/login") -> str:
        """Open the login page; the form's token."""
        page = await self.request("GET", path, browser)
        assert page.status == 200, await page.text()
        found = _HIDDEN_TOKEN.search(await page.text())
        assert found is not None
        return found.group(1)

    async def post_login(
        self,
        browser: Browser,
        email: str,
        password: str = PASSWORD,
        *,
        token: str | None = None,
        headers: dict[str, str] | None = None,
        **fields: str,
    ) -> ClientResponse:
        form = {"email": email, "password": password, "csrf_token": token or "", **fields}
        if token is None:
            form["csrf_token"] = await self.login_form(browser)
        return await self.request("POST", "/console/login", browser, data=form, headers=headers)

    async def logged_in(self, email: str, password: str = PASSWORD) -> Browser:
        browser = Browser()
        response = await self.post_login(browser, email, password)
        assert response.status == 303, await response.text()
        assert "leadbot_session" in browser.cookies
        session = await self.reps.session(_session_id(browser))
        assert session is not None
        browser.csrf = session.csrf_token
        return browser


def _session_id(browser: Browser) -> str:
    return stored_hash(browser.cookies["leadbot_session"])


@asynccontextmanager
async def running_console(
    aiohttp_client: AiohttpClient,
    tmp_path: Path,
    kind: str = "sqlite",
    *,
    passwords: Passwords | None = None,
    **overrides: Any,
) -> AsyncIterator[Console]:
    async with database_url(kind, tmp_path) as url:
        app = create_app(settings_for(url, **overrides))
        clock = FakeClock(NOW)
        app[CONSOLE_CLOCK] = clock
        app[PASSWORDS] = passwords or Passwords(CHEAP)
        client = await aiohttp_client(app, cookie_jar=DummyCookieJar())
        try:
            yield Console(client, clock)
        finally:
            await client.close()
