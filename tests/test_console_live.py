"""The console live: server-sent events for a conversation and for the inbox, woken by this
worker's commits and polling for other workers' (two apps on one database), resumable, and
ended by a closed page or a shutdown."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient
from pytest_aiohttp import AiohttpClient

from tests.console_support import Browser, Console, running_console
from tests.prospects import Prospect
from webhooks.app import create_app
from webhooks.console.live import CONSOLE_HUB, ConsoleHub
from webhooks.keys import CONSOLE_CLOCK, DATABASE, SETTINGS

WAIT = 15.0  # seconds a test waits for an event before failing: several polls' worth


@pytest.fixture(params=["sqlite", "postgresql"])
async def console(
    request: pytest.FixtureRequest, aiohttp_client: AiohttpClient, tmp_path: Path
) -> AsyncIterator[Console]:
    async with running_console(
        aiohttp_client, tmp_path, request.param, form={"per_minute": 1000}
    ) as running:
        yield running


@dataclass
class Event:
    name: str
    data: Any
    id: str | None


async def next_event(stream: ClientResponse) -> Event:
    name, data, event_id = "message", None, None
    while True:
        raw = await stream.content.readline()
        assert raw, "the stream ended"
        line = raw.decode().rstrip("\n")
        if line.startswith("event: "):
            name = line[7:]
        elif line.startswith("data: "):
            data = json.loads(line[6:])
        elif line.startswith("id: "):
            event_id = line[4:]
        elif line == "" and data is not None:
            return Event(name, data, event_id)


async def events_until(
    stream: ClientResponse, done: Callable[[Event], bool], timeout: float = WAIT
) -> list[Event]:
    """Events up to and including the first for which `done` holds."""
    seen: list[Event] = []

    async def read() -> None:
        while True:
            event = await next_event(stream)
            seen.append(event)
            if done(event):
                return

    try:
        await asyncio.wait_for(read(), timeout)
    except TimeoutError:
        raise AssertionError(f"no such event within {timeout} s; got {seen}") from None
    return seen


def is_line(text: str) -> Callable[[Event], bool]:
    return lambda event: event.name == "line" and event.data["text"] == text


def sender(client: TestClient[Any, Any]) -> Any:
    return lambda method, path, **options: client.request(
        method, path, allow_redirects=False, **options
    )


async def prospect(console: Console, **fields: str) -> Prospect:
    send = sender(console.client)
    return await Prospect(send).arrive(console.client.app[DATABASE], **fields)


async def rep(console: Console) -> Browser:
    await console.add_rep("ana@example.com", name="Ana Ruiz")
    return await console.logged_in("ana@example.com")


async def stream_from_page(console: Console, browser: Browser, conversation: int) -> Any:
    """Open the conversation's page, then its stream where the page says (as its script does)."""
    path = f"/console/conversations/{conversation}"
    page = await (await console.request("GET", path, browser)).text()
    found = re.search(r'data-base="([^"]+)" data-from="([^"]+)"', page)
    assert found is not None
    assert found.group(1) == path
    stream = await console.request("GET", f"{path}/events?from={found.group(2)}", browser)
    assert stream.status == 200
    assert stream.headers["Content-Type"] == "text/event-stream"
    assert stream.headers["Cache-Control"] == "no-store"
    return stream


async def test_a_conversation_streams_lines_statuses_audit_and_state(console: Console) -> None:
    ana = await rep(console)
    kim = await prospect(console, first_name="Kim")
    cid = kim.conversation_id
    stream = await stream_from_page(console, ana, cid)
    try:
        await kim.tap("model", "suv_x")
        seen = await events_until(stream, lambda e: e.name == "state")
        lines = [event.data for event in seen if event.name == "line"]
        assert [(line["author"], line["text"]) for line in lines] == [
            ("prospect", "SUV X"),
            ("bot", "When are you planning to buy?"),
        ]
        assert seen[-1].data["status"] == "active"
        assert re.fullmatch(r"\d+\.0\.\d+", seen[-1].id or "")  # line.audit.version

        # The bot's line is dispatched (the web chat "sends" at once): its status follows.
        question = lines[1]

        def about_question(events: list[Event]) -> list[Any]:
            return [e.data for e in events if e.name == "status" and e.data["id"] == question["id"]]

        statuses = about_question(seen)
        if question["status"] == "queued" and not statuses:
            statuses = about_question(
                await events_until(
                    stream, lambda e: e.name == "status" and e.data["id"] == question["id"]
                )
            )
        if question["status"] == "queued":
            assert statuses == [
                {"id": question["id"], "status": "sent", "status_label": "sent", "error": None}
            ]

        taken = await console.request("POST", f"/console/conversations/{cid}/take-over", ana)
        assert taken.status == 303
        seen = await events_until(stream, lambda e: e.name == "state")
        names = [event.name for event in seen]
        assert "audit" in names
        assert "line" in names
        audit = next(event.data for event in seen if event.name == "audit")
        assert (audit["actor"], audit["action"], audit["action_label"]) == (
            "Ana Ruiz (rep 1)",
            "took_over",
            "took over",
        )
        joined = [event.data["text"] for event in seen if event.name == "line"]
        assert joined == ["You're now chatting with Ana Ruiz from our team."]
        state = seen[-1].data
        assert (state["status"], state["status_label"], state["held_by_name"]) == (
            "with_rep",
            "With a rep",
            "Ana Ruiz",
        )

        note = await console.request(
            "POST", f"/console/conversations/{cid}/notes", ana, data={"text": "VIP"}
        )
        assert note.status == 303
        seen = await events_until(stream, lambda e: e.name == "audit")
        assert [e.data["author"] for e in seen if e.name == "line"] == ["note"]
        assert seen[-1].data["action"] == "noted"
    finally:
        stream.close()


async def test_a_reconnect_resumes_after_the_last_event(console: Console) -> None:
    ana = await rep(console)
    kim = await prospect(console)
    cid = kim.conversation_id
    stream = await stream_from_page(console, ana, cid)
    try:
        await kim.say("sedan")
        first = (await events_until(stream, lambda e: e.name == "line"))[-1]
        assert first.data["text"] == "sedan"
    finally:
        stream.close()
    again = await console.request(
        "GET",
        f"/console/conversations/{cid}/events",
        ana,
        headers={"Last-Event-ID": first.id or ""},
    )
    try:
        after = await events_until(again, lambda e: e.name == "line")
        assert after[-1].data["text"] == "When are you planning to buy?"  # not "sedan" again
    finally:
        again.close()


async def test_the_inbox_streams_news_and_the_number_waiting(console: Console) -> None:
    ana = await rep(console)
    stream = await console.request("GET", "/console/events", ana)
    assert stream.status == 200
    assert stream.headers["Content-Type"] == "text/event-stream"
    try:
        hello = await events_until(stream, lambda e: e.name == "hello")
        assert hello[-1].data == {"waiting": 0}
        kim = await prospect(console)
        await events_until(stream, lambda e: e.name == "inbox")
        await kim.say("Can I talk to a person?")
        await events_until(stream, lambda e: e.name == "inbox" and e.data == {"waiting": 1})
    finally:
        stream.close()


async def test_changes_made_by_another_worker_arrive_too(
    console: Console, aiohttp_client: AiohttpClient
) -> None:
    """Worker B handles the prospect and the rep; worker A's streams are never woken by B, and
    show it all the same (they poll the database)."""
    ana = await rep(console)
    worker_b = create_app(console.client.app[SETTINGS])
    worker_b[CONSOLE_CLOCK] = console.clock  # the sessions' clock, as on worker A
    other = await aiohttp_client(worker_b)
    kim = await prospect(console)
    cid = kim.conversation_id
    stream = await stream_from_page(console, ana, cid)
    inbox = await console.request("GET", "/console/events", ana)
    try:
        await events_until(inbox, lambda e: e.name == "hello")
        on_b = Prospect(sender(other), token=kim.token)
        await on_b.say("Talk to a person please")
        seen = await events_until(stream, lambda e: e.name == "state")
        assert is_line("Talk to a person please")(next(e for e in seen if e.name == "line"))
        assert seen[-1].data["status"] == "handed_off"
        await events_until(inbox, lambda e: e.name == "inbox" and e.data == {"waiting": 1})

        cookie = {"Cookie": "; ".join(f"{k}={v}" for k, v in ana.cookies.items())}
        taken = await other.post(
            f"/console/conversations/{cid}/take-over",
            headers={**cookie, "X-CSRF-Token": ana.csrf or ""},
            allow_redirects=False,
        )
        assert taken.status == 303
        assert taken.headers["Location"] == f"/console/conversations/{cid}"
        seen = await events_until(stream, lambda e: e.name == "state")
        assert seen[-1].data["held_by_name"] == "Ana Ruiz"
        assert any(e.name == "audit" and e.data["action"] == "took_over" for e in seen)
    finally:
        stream.close()
        inbox.close()


async def test_streams_refuse_what_they_cannot_follow(console: Console) -> None:
    ana = await rep(console)
    kim = await prospect(console)
    path = f"/console/conversations/{kim.conversation_id}/events"
    for cursor in ("x", "1.2", "1.2.3.4", "-1.0.0"):
        response = await console.request("GET", f"{path}?from={cursor}", ana)
        assert response.status == 400, cursor
    missing = await console.request("GET", "/console/conversations/424242/events", ana)
    assert missing.status == 404
    for url in (path, "/console/events"):
        head = await console.request("HEAD", url, ana)
        assert head.status == 200
        assert head.headers["Content-Type"] == "text/event-stream"
    assert len(console.client.app[CONSOLE_HUB]) == 0  # HEAD opened no stream


async def test_a_closed_page_and_a_shutdown_end_the_streams(console: Console) -> None:
    ana = await rep(console)
    kim = await prospect(console)
    hub = console.client.app[CONSOLE_HUB]
    page_stream = await stream_from_page(console, ana, kim.conversation_id)
    inbox = await console.request("GET", "/console/events", ana)
    await events_until(inbox, lambda e: e.name == "hello")

    async def listeners(count: int) -> None:
        while len(hub) != count:
            await asyncio.sleep(0.02)

    await asyncio.wait_for(listeners(2), WAIT)
    page_stream.close()
    await kim.say("suv")  # wakes the stream, which finds its reader gone
    await asyncio.wait_for(listeners(1), WAIT)
    await asyncio.wait_for(console.client.server.close(), WAIT)
    assert hub.closed
    assert len(hub) == 0
    inbox.close()


async def test_the_hub_wakes_a_conversations_streams_and_every_inbox() -> None:
    hub = ConsoleHub()
    with hub.conversation(1) as one, hub.conversation(2) as two, hub.inbox() as inbox:
        hub.changed(1, ())
        assert one.is_set()
        assert inbox.is_set()
        assert not two.is_set()
        assert len(hub) == 3
    assert len(hub) == 0
    hub.close()
    with hub.conversation(3) as late:
        assert late.is_set()  # a stream opened during shutdown ends at once
