"""What the browser tests share: Debian's Chromium driven by Playwright (never a downloaded
browser), the real app served on 127.0.0.1, and screenshots of the pages of a failed test."""

from __future__ import annotations

import os
import re
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import aiohttp
import pytest
from aiohttp import web

from storage.reps import SqlReps
from tests.console_support import CHEAP, PASSWORD, SECRET
from tests.prospects import Prospect
from webhooks.app import create_app
from webhooks.console.passwords import Passwords
from webhooks.keys import DATABASE, PASSWORDS
from webhooks.settings import Settings

if TYPE_CHECKING:
    from playwright.async_api import Browser, Page

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = ROOT / "test-artifacts"
LIVE = 15_000  # ms a test waits for a live update: several of the streams' 2 s polls
# Chromium may reach nothing but this machine's loopback, whatever it has in mind.
LAUNCH_ARGS = [
    "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-domain-reliability",
    "--no-first-run",
]


def chromium_or_skip() -> None:
    """Skip when Debian's Chromium is missing, saying why; in CI (CI set), fail instead."""
    if CHROMIUM.exists():
        return
    reason = f"browser tests need Debian's Chromium at {CHROMIUM} (apt-get install -y chromium)"
    if os.environ.get("CI"):
        pytest.fail(f"{reason}: in CI they must run, and .ci/run installs it")
    pytest.skip(reason)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass
class Served:
    """The real app on 127.0.0.1, and an HTTP client for the prospects' side."""

    app: web.Application
    url: str
    http: aiohttp.ClientSession

    async def add_rep(self, email: str, name: str, role: str = "rep") -> None:
        await SqlReps(self.app[DATABASE]).add(
            email, name, role, CHEAP.hash(PASSWORD), datetime.now(UTC)
        )

    async def prospect(self, **fields: str) -> Prospect:
        def send(method: str, path: str, **options: Any) -> Any:
            return self.http.request(method, path, allow_redirects=False, **options)

        return await Prospect(send).arrive(self.app[DATABASE], **fields)


@asynccontextmanager
async def serving(database: Path) -> AsyncIterator[Served]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    settings = Settings(
        database_url=f"sqlite+aiosqlite:///{database}",
        secret_key=SECRET,
        public_url=url,
        form={"per_minute": 1000},
    )
    app = create_app(settings)
    app[PASSWORDS] = Passwords(CHEAP)  # argon2's cheapest: logins in tests need no strength
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        async with aiohttp.ClientSession(base_url=url) as http:
            yield Served(app, url, http)
    finally:
        await runner.cleanup()


@dataclass
class Pages:
    """The pages a test opened, each in its own browser context (its own cookies)."""

    browser: Browser
    opened: list[Page] = field(default_factory=list)

    async def new(self, **options: Any) -> Page:
        context = await self.browser.new_context(**options)
        page = await context.new_page()
        page.set_default_timeout(LIVE)
        self.opened.append(page)
        return page

    async def screenshots(self, test_name: str) -> list[Path]:
        ARTIFACTS.mkdir(exist_ok=True)
        stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", test_name)
        saved = []
        for number, page in enumerate(self.opened, 1):
            path = ARTIFACTS / f"{stem}-{number}.png"
            if not page.is_closed():
                await page.screenshot(path=str(path), full_page=True)
                saved.append(path)
        return saved


async def log_in(page: Page, base: str, email: str) -> None:
    await page.goto(f"{base}/console")
    await page.fill("#email", email)
    await page.fill("#password", PASSWORD)
    await page.click("button[type=submit]")
    await page.wait_for_url(f"{base}/console")
