"""The built-in web chat channel: a page that plays the lead's conversation in the browser.

The page reads the transcript itself (JSON, or server-sent events that wake on this process's
`Hub` and also poll the database, so a reply committed by another worker arrives too). Bot lines
show whatever their delivery status: the page never waits for the dispatcher.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import secrets
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from bot.errors import UnknownConversationError, UnknownScriptError
from bot.inbound import Inbound, OptionPicked, TextReceived
from bot.records import Receipt
from bot.wakeups import wake_or_timeout
from storage.db import Database
from storage.transcripts import newest_conversation, transcript_after
from webhooks.http import json_error, read_json_body
from webhooks.intake.common import IntakeError
from webhooks.intake.payload import load_json
from webhooks.keys import CATALOG, CONVERSATIONS, DATABASE, SETTINGS, STORAGE
from webhooks.pagekit import (
    PAGE_TEXTS,
    LinkError,
    html_page,
    lead_id_from,
    link_error_page,
    wanted_language,
)

CHANNEL = "web"
NO_STORE = {"Cache-Control": "no-store"}  # a transcript is personal: no cache may keep it
MAX_TEXT = 2000  # characters in one message from the page
MAX_BODY = 16 * 1024
POLL_SECONDS = 2.0  # how late a line committed by another worker may reach an open page
KEEPALIVE_SECONDS = 15.0  # a comment now and then keeps proxies from closing an idle stream
BATCH = 200  # lines per answer; the page asks again from the last id it got
_MESSAGE_ID = re.compile(r"[0-9]{1,18}")  # ASCII only: str.isdigit() takes "²"
_CLIENT_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")


class Hub:
    """Wakes the pages waiting for new messages of a conversation (in this process)."""

    def __init__(self) -> None:
        self._waiting: dict[int, set[asyncio.Event]] = {}
        self.closed = False

    def __len__(self) -> int:
        return sum(len(events) for events in self._waiting.values())

    def notify(self, conversation_id: int | None) -> None:
        if conversation_id is not None:
            for event in self._waiting.get(conversation_id, ()):
                event.set()

    @contextlib.contextmanager
    def listening(self, conversation_id: int) -> Iterator[asyncio.Event]:
        event = asyncio.Event()
        if self.closed:
            event.set()
        self._waiting.setdefault(conversation_id, set()).add(event)
        try:
            yield event
        finally:
            waiting = self._waiting.get(conversation_id, set())
            waiting.discard(event)
            if not waiting:
                self._waiting.pop(conversation_id, None)

    def close(self) -> None:
        """The app is shutting down: every open stream ends now rather than at its timeout."""
        self.closed = True
        for events in self._waiting.values():
            for event in events:
                event.set()


HUB = web.AppKey("webchat_hub", Hub)


def setup(app: web.Application) -> None:
    app[HUB] = Hub()  # the web sender notifies it even when the page routes are off
    app.on_shutdown.append(_close_hub)
    if not app[SETTINGS].web_chat.enabled:
        return
    app.router.add_get("/chat/{token}", chat_page)
    app.router.add_get("/chat/{token}/messages", list_messages)
    app.router.add_post("/chat/{token}/messages", post_message)
    app.router.add_get("/chat/{token}/events", events)


async def _close_hub(app: web.Application) -> None:
    app[HUB].close()


# -- the transcript ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Line:
    id: int
    author: str  # prospect, bot, rep or system
    text: str
    options: Sequence[Mapping[str, str]] = ()
    question_id: str | None = None
    status: str = "received"

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "author": self.author,
            "text": self.text,
            "options": [{"value": o["value"], "label": o["label"]} for o in self.options],
            "question_id": self.question_id,
            "status": self.status,
        }


def channel_user_id(lead_id: int) -> str:
    return f"lead-{lead_id}"


async def web_conversation(database: Database, lead_id: int) -> int | None:
    """The lead's web chat conversation (the newest), if the page has opened one."""
    return await newest_conversation(
        database, lead_id=lead_id, channel=CHANNEL, channel_user_id=channel_user_id(lead_id)
    )


async def lines_after(database: Database, conversation_id: int, after: int) -> list[Line]:
    # A tapped option is already written as its label by the conversation service.
    rows = await transcript_after(database, conversation_id, after, BATCH)
    return [Line(r.id, r.author, r.text, r.options, r.question_id, r.status) for r in rows]


def pending_choices(lines: Sequence[Line]) -> Line | None:
    """The bot line whose options are still open: none once the prospect has replied."""
    current = None
    for line in lines:
        if line.author == "prospect":
            current = None
        elif line.author == "bot" and line.options:
            current = line
    return current


# -- routes -----------------------------------------------------------------------------------


async def chat_page(request: web.Request) -> web.Response:
    app = request.app
    try:
        lead_id = lead_id_from(request, request.match_info["token"])
    except LinkError as error:
        return link_error_page(request, error)
    # The first visit opens the conversation: greeting and first question are written before
    # the page is drawn. Later visits (a reload, another tab) show the transcript as it is: a
    # "welcome back" on every reload would only clutter it.
    existing = await app[STORAGE].run(
        lambda tx: tx.conversations.find(lead_id, CHANNEL, channel_user_id(lead_id))
    )
    if existing is not None:
        conversation_id, state = existing.id, existing.state
    else:
        try:
            opened = await app[CONVERSATIONS].open(
                lead_id,
                channel=CHANNEL,
                channel_user_id=channel_user_id(lead_id),
                language=wanted_language(request),
            )
        except (UnknownConversationError, UnknownScriptError):  # erased lead, or its script
            return link_error_page(request, LinkError(expired=False))
        app[HUB].notify(opened.conversation_id)  # another tab of this chat shows the lines
        conversation_id, state = opened.conversation_id, opened.state
    language = state.language if state is not None else None
    texts = app[PAGE_TEXTS](language)
    title = texts["chooser_title"]
    if state is not None:
        with contextlib.suppress(UnknownScriptError):
            title = app[CATALOG].current(state.script_id).script.spec.name
    lines: list[Line] = []
    while True:  # the whole transcript, a batch at a time
        batch = await lines_after(app[DATABASE], conversation_id, lines[-1].id if lines else 0)
        lines += batch
        if len(batch) < BATCH:
            break
    nonce = secrets.token_urlsafe(16)
    return html_page(
        request,
        "chat.html",
        script_nonce=nonce,
        lang=texts["lang"],
        t=texts,
        title=title,
        lines=lines,
        choices=pending_choices(lines),
        last_id=lines[-1].id if lines else 0,
        base=f"/chat/{request.match_info['token']}",
    )


def _after(value: str | None) -> int | None:
    if value is None or value == "":
        return 0
    return int(value) if _MESSAGE_ID.fullmatch(value) else None


async def list_messages(request: web.Request) -> web.Response:
    try:
        lead_id = lead_id_from(request, request.match_info["token"])
    except LinkError as error:
        return json_error(error.status, error.code, error.message)
    after = _after(request.query.get("after"))
    if after is None:
        return json_error(400, "bad_request", "after must be a message id (a whole number)")
    conversation_id = await web_conversation(request.app[DATABASE], lead_id)
    if conversation_id is None:
        return web.json_response([], headers=NO_STORE)
    lines = await lines_after(request.app[DATABASE], conversation_id, after)
    return web.json_response([line.as_json() for line in lines], headers=NO_STORE)


@dataclass(frozen=True, slots=True)
class _Post:
    inbound: Inbound
    client_id: str = field(default_factory=lambda: uuid.uuid4().hex)


def _parse_post(data: object) -> _Post | str:
    """What the page sent, or what is wrong with it."""
    if not isinstance(data, dict):
        return 'send a JSON object: {"text": "...", "client_id": "..."}'
    client_id = data.get("client_id")
    if client_id is not None and (
        not isinstance(client_id, str) or not _CLIENT_ID.fullmatch(client_id)
    ):
        return "client_id must be 1 to 64 characters of letters, digits, - and _"
    inbound: Inbound
    if "option" in data:
        option, question = data.get("option"), data.get("question_id")
        if not isinstance(option, str) or not isinstance(question, str):
            return "an option needs its value (option) and the question it answers (question_id)"
        if not option or len(option) > 64 or len(question) > 64:
            return "option and question_id must be 1 to 64 characters"
        inbound = OptionPicked(question, option)
    else:
        text = data.get("text")
        if not isinstance(text, str) or not text.strip():
            return "text is missing or empty"
        if len(text) > MAX_TEXT:
            return f"text is too long: at most {MAX_TEXT} characters"
        inbound = TextReceived(text.strip())
    return _Post(inbound, client_id) if client_id is not None else _Post(inbound)


async def post_message(request: web.Request) -> web.Response:
    app = request.app
    try:
        lead_id = lead_id_from(request, request.match_info["token"])
    except LinkError as error:
        return json_error(error.status, error.code, error.message)
    body = await read_json_body(request, max_bytes=MAX_BODY)
    try:
        data = load_json(body)  # with limits on depth, and no lone surrogates or NaN
    except IntakeError as error:
        return json_error(400, "bad_json", error.message)
    post = _parse_post(data)
    if isinstance(post, str):
        return json_error(400, "bad_request", post)
    conversations = app[CONVERSATIONS]
    conversation_id = await web_conversation(app[DATABASE], lead_id)
    try:
        if conversation_id is None:  # posted without the page (an API client): open it first
            opened = await conversations.open(
                lead_id, channel=CHANNEL, channel_user_id=channel_user_id(lead_id)
            )
            conversation_id = opened.conversation_id
        # The receipt makes a repeated post (double click, retry) one turn; scoped to the
        # conversation so that one page's ids can never swallow another's messages.
        receipt = Receipt(CHANNEL, f"{conversation_id}:{post.client_id}")
        await conversations.handle(conversation_id, post.inbound, receipt)
    except (UnknownConversationError, UnknownScriptError):  # erased lead, or its script
        erased = LinkError(expired=False)
        return json_error(erased.status, erased.code, erased.message)
    app[HUB].notify(conversation_id)  # committed: open pages read the new lines now
    return web.json_response({"ok": True}, status=202)


async def events(request: web.Request) -> web.StreamResponse:
    """New transcript lines as server-sent events, each with its id, so that the browser's
    reconnect (Last-Event-ID) resumes where it stopped."""
    app = request.app
    try:
        lead_id = lead_id_from(request, request.match_info["token"])
    except LinkError as error:
        return json_error(error.status, error.code, error.message)
    after = _after(request.headers.get("Last-Event-ID") or request.query.get("after"))
    if after is None:
        return json_error(400, "bad_request", "after must be a message id (a whole number)")
    database, hub = app[DATABASE], app[HUB]
    conversation_id = await web_conversation(database, lead_id)
    if conversation_id is None:
        return json_error(404, "no_chat", "this lead has no web chat yet: open the chat page")
    response = web.StreamResponse(
        headers={
            "Content-Type": "text/event-stream",
            "Cache-Control": "no-store",
            "X-Accel-Buffering": "no",  # nginx would otherwise hold events back
        }
    )
    await response.prepare(request)
    idle = 0.0
    with contextlib.suppress(ConnectionResetError), hub.listening(conversation_id) as wake:
        await response.write(b"retry: 2000\n\n")
        while not hub.closed and not _gone(request):
            wake.clear()  # before reading: a notify from now on wakes the next wait
            lines = await lines_after(database, conversation_id, after)
            for line in lines:
                data = json.dumps(line.as_json(), ensure_ascii=False)
                await response.write(f"id: {line.id}\ndata: {data}\n\n".encode())
                after = line.id
            if len(lines) == BATCH:
                continue
            if lines:
                idle = 0.0
            elif idle >= KEEPALIVE_SECONDS:
                await response.write(b": keepalive\n\n")
                idle = 0.0
            await wake_or_timeout(wake, POLL_SECONDS)
            idle += POLL_SECONDS
    return response


def _gone(request: web.Request) -> bool:
    """The browser closed the page (aiohttp does not cancel the handler: we look)."""
    transport = request.transport
    return transport is None or transport.is_closing()
