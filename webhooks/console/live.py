"""The console live: server-sent events for a conversation (new lines, delivery statuses, audit
entries, state changes) and for the inbox (something changed, and how many wait for a rep).

A stream wakes when this process commits a change to the conversation (`ConsoleHub`, called by
the conversation service's on_change) and also polls the database every two seconds, so that
changes made by another worker, and delivery reports, arrive too. Each event's id is a cursor:
the browser's reconnect (Last-Event-ID) resumes where it stopped."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from collections.abc import Iterator
from typing import Any

from aiohttp import web

from bot.effects import Effect
from bot.wakeups import wake_or_timeout
from storage import console_inbox as inbox_queries
from storage import console_queries as queries
from storage.db import Database
from webhooks.console.auth import login_required, refuse
from webhooks.console.present import DELIVERY_LABELS, audit_json, line_json, state_json
from webhooks.keys import DATABASE
from webhooks.webchat import Hub

POLL_SECONDS = 2.0  # how late a change committed by another worker may reach an open page
KEEPALIVE_SECONDS = 15.0  # a comment now and then keeps proxies from closing an idle stream
INBOX_EVERY = 1.0  # at most one inbox event a second, however busy the server
BATCH = 200
_CURSOR = re.compile(r"([0-9]{1,18})\.([0-9]{1,18})\.([0-9]{1,18})")
_ID = re.compile(r"[0-9]{1,10}")
MAX_ID = 2**31 - 1  # ids are 32-bit integers in the database
ANY = 0  # the hub's key for "any conversation": the inbox listens there
STREAM_HEADERS = {
    "Content-Type": "text/event-stream",
    "Cache-Control": "no-store",
    "X-Accel-Buffering": "no",  # nginx would otherwise hold events back
}


class ConsoleHub:
    """Wakes the console's streams in this process when a conversation changes."""

    def __init__(self) -> None:
        self._hub = Hub()

    def __len__(self) -> int:
        return len(self._hub)

    @property
    def closed(self) -> bool:
        return self._hub.closed

    def changed(self, conversation_id: int, effects: tuple[Effect, ...] = ()) -> None:
        """The conversation service's on_change: a turn or a rep's action was committed."""
        self._hub.notify(conversation_id)
        self._hub.notify(ANY)

    @contextlib.contextmanager
    def conversation(self, conversation_id: int) -> Iterator[asyncio.Event]:
        with self._hub.listening(conversation_id) as event:
            yield event

    @contextlib.contextmanager
    def inbox(self) -> Iterator[asyncio.Event]:
        with self._hub.listening(ANY) as event:
            yield event

    def close(self) -> None:
        self._hub.close()


CONSOLE_HUB = web.AppKey("console_hub", ConsoleHub)


def setup(app: web.Application) -> None:
    app[CONSOLE_HUB] = ConsoleHub()
    app.on_shutdown.append(_close_hub)


async def _close_hub(app: web.Application) -> None:
    app[CONSOLE_HUB].close()


def conversation_id_of(request: web.Request) -> int | None:
    raw = request.match_info.get("id", "")
    if not _ID.fullmatch(raw) or not 0 < int(raw) <= MAX_ID:
        return None
    return int(raw)


def cursor(line: int, audit: int, version: int) -> str:
    return f"{line}.{audit}.{version}"


def _event(name: str, data: Any, event_id: str | None = None) -> bytes:
    head = f"id: {event_id}\n" if event_id is not None else ""
    return f"{head}event: {name}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n".encode()


def _gone(request: web.Request) -> bool:
    """The browser closed the page (aiohttp does not cancel the handler: we look)."""
    transport = request.transport
    return transport is None or transport.is_closing()


async def _open_stream(request: web.Request) -> web.StreamResponse:
    response = web.StreamResponse(headers=STREAM_HEADERS)
    await response.prepare(request)
    await response.write(b"retry: 2000\n\n")
    return response


class _ConversationStream:
    """What one open conversation page has been sent, and what to send it next."""

    def __init__(self, database: Database, conversation_id: int, start: tuple[int, int, int]):
        self.database = database
        self.id = conversation_id
        self.line, self.audit, self.version = start
        self.held: tuple[str, int | None] | None = None
        self.watched: dict[int, str] = {}  # line id -> status, for lines that may still move

    async def begin(self) -> bool:
        mark = await queries.conversation_mark(self.database, self.id)
        if mark is None:
            return False
        self.held = (mark.status, mark.held_by)
        unsettled = await queries.unsettled_lines(self.database, self.id, self.line)
        # The page drew these before the stream opened: send their statuses now, in case one
        # moved in between (the page shows each status as the last one it was told).
        self.watched = {line.id: "" for line in unsettled}
        return True

    async def news(self) -> list[bytes]:
        events: list[bytes] = []
        mark = await queries.conversation_mark(self.database, self.id)
        if mark is None:
            return [_event("gone", {"message": "this conversation was erased"})]
        while mark.last_line > self.line:
            lines = await queries.lines_after(self.database, self.id, self.line, BATCH)
            for line in lines:
                self.line = line.id
                if line.status not in queries.SETTLED:
                    self.watched[line.id] = line.status
                events.append(_event("line", line_json(line), self._cursor()))
            if len(lines) < BATCH:
                break
        if self.watched:
            statuses = await queries.line_statuses(self.database, list(self.watched))
            for status in statuses:
                if status.status != self.watched.get(status.id):
                    events.append(_event("status", _status_json(status)))
                if status.status in queries.SETTLED:
                    self.watched.pop(status.id, None)
                else:
                    self.watched[status.id] = status.status
        if mark.last_audit > self.audit:
            for entry in await queries.audit_trail(self.database, self.id, self.audit):
                self.audit = entry.id
                events.append(_event("audit", audit_json(entry), self._cursor()))
        held = (mark.status, mark.held_by)
        if mark.version != self.version or held != self.held:
            self.version, self.held = mark.version, held
            state = state_json(
                version=mark.version,
                status=mark.status,
                held_by=mark.held_by,
                held_by_name=mark.held_by_name,
            )
            events.append(_event("state", state, self._cursor()))
        return events

    def _cursor(self) -> str:
        return cursor(self.line, self.audit, self.version)


def _status_json(status: queries.LineStatus) -> dict[str, Any]:
    return {
        "id": status.id,
        "status": status.status,
        "status_label": DELIVERY_LABELS.get(status.status, ""),
        "error": status.error,
    }


def _start(request: web.Request) -> tuple[int, int, int] | None:
    """Where the page is: Last-Event-ID on a reconnect, else ?from=line.audit.version."""
    given = request.headers.get("Last-Event-ID") or request.query.get("from") or "0.0.0"
    found = _CURSOR.fullmatch(given)
    if found is None:
        return None
    line, audit, version = (int(part) for part in found.groups())
    return line, audit, version


@login_required
async def conversation_events(request: web.Request) -> web.StreamResponse:
    conversation_id = conversation_id_of(request)
    if conversation_id is None:
        return refuse(request, 404, "not_found", "no such conversation")
    start = _start(request)
    if start is None:
        return refuse(
            request, 400, "bad_request", "from must be three whole numbers: line.audit.version"
        )
    stream = _ConversationStream(request.app[DATABASE], conversation_id, start)
    if not await stream.begin():
        return refuse(request, 404, "not_found", f"no conversation {conversation_id}")
    if request.method == "HEAD":
        return web.Response(headers=STREAM_HEADERS)
    hub = request.app[CONSOLE_HUB]
    response = await _open_stream(request)
    idle = 0.0
    with contextlib.suppress(ConnectionResetError), hub.conversation(conversation_id) as wake:
        while not hub.closed and not _gone(request):
            wake.clear()  # before reading: a change from now on wakes the next wait
            events = await stream.news()
            for event in events:
                await response.write(event)
            if events:
                idle = 0.0
            elif idle >= KEEPALIVE_SECONDS:
                await response.write(b": keepalive\n\n")
                idle = 0.0
            await wake_or_timeout(wake, POLL_SECONDS)
            idle += POLL_SECONDS
    return response


@login_required
async def inbox_events(request: web.Request) -> web.StreamResponse:
    """`event: inbox` whenever conversations, lines or rep actions were added anywhere, with
    the number of conversations waiting for a rep; the page then reloads its list."""
    if request.method == "HEAD":
        return web.Response(headers=STREAM_HEADERS)
    database, hub = request.app[DATABASE], request.app[CONSOLE_HUB]
    response = await _open_stream(request)
    seen: inbox_queries.InboxMark | None = None
    idle = 0.0
    with contextlib.suppress(ConnectionResetError), hub.inbox() as wake:
        while not hub.closed and not _gone(request):
            wake.clear()
            mark = await inbox_queries.inbox_mark(database)
            if seen is not None and mark != seen:
                await response.write(_event("inbox", {"waiting": mark.waiting}))
                idle = 0.0
                await asyncio.sleep(INBOX_EVERY)
            elif seen is None:
                await response.write(_event("hello", {"waiting": mark.waiting}))
            elif idle >= KEEPALIVE_SECONDS:
                await response.write(b": keepalive\n\n")
                idle = 0.0
            seen = mark
            await wake_or_timeout(wake, POLL_SECONDS)
            idle += POLL_SECONDS
    return response
