"""A fake CRM receiver: a small aiohttp app on 127.0.0.1 that records every delivery posted to
it and answers as planned (200 by default; 500, 410, 400... or no answer in time)."""

from __future__ import annotations

import asyncio
import json
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

HANG = "hang"  # no answer until the poster gives up waiting


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    status: int | None  # what the fake answered; None: it did not answer in time

    @property
    def json(self) -> dict[str, Any]:
        parsed: dict[str, Any] = json.loads(self.body)
        return parsed


class FakeCrm:
    def __init__(self) -> None:
        self.received: list[Received] = []
        self._plan: deque[int | str] = deque()
        self._released = asyncio.Event()

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/{tail:.*}", self._receive)
        app.on_shutdown.append(self._release)
        return app

    def answer_next(self, *answers: int | str) -> None:
        """The next deliveries get these HTTP statuses (or HANG); then 200 again."""
        self._plan.extend(answers)

    def answer_always(self, answer: int | str) -> None:
        self._plan = deque([answer] * 10_000)

    def recover(self) -> None:
        """Answer 200 from now on."""
        self._plan.clear()

    def accepted(self, path: str | None = None) -> list[Received]:
        return [
            r
            for r in self.received
            if r.status is not None and 200 <= r.status < 300 and (path is None or r.path == path)
        ]

    async def wait_until(self, check: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
        async def poll() -> None:
            while not check():
                await asyncio.sleep(0.01)

        try:
            await asyncio.wait_for(poll(), timeout)
        except TimeoutError:
            seen = [(r.path, r.status, r.headers.get("X-Leadbot-Event")) for r in self.received]
            raise AssertionError(f"the fake CRM never saw {what}; it saw {seen}") from None

    async def _release(self, _app: web.Application) -> None:
        self._released.set()

    async def _receive(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        answer = self._plan.popleft() if self._plan else 200
        if answer == HANG:
            self.received.append(Received(request.path, dict(request.headers), body, None))
            await self._released.wait()  # the poster's timeout ends the request first
            return web.Response(status=504)
        status = int(answer)
        self.received.append(Received(request.path, dict(request.headers), body, status))
        return web.json_response({"ok": 200 <= status < 300}, status=status)
