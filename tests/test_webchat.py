"""The built-in web chat: from the hosted form to a completed lead with a booked test drive, in
the browser's shoes."""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient
from pytest_aiohttp import AiohttpClient
from sqlalchemy import select

from bot.records import NewLead
from bot.tokens import TokenSigner
from storage.tables import LeadRow
from tests.bookings import bookable_day, stored_booking
from webhooks.app import create_app
from webhooks.keys import DATABASE, SIGNER, STORAGE
from webhooks.settings import Settings
from webhooks.webchat import HUB, Hub

SECRET = "test-secret-key-0123456789"
SCRIPT = "car-test-drive"
LEADS = LeadRow.__table__  # type: ignore[attr-defined]


@pytest.fixture
async def client(aiohttp_client: AiohttpClient, tmp_path: Path) -> TestClient[Any, Any]:
    settings = Settings(
        database_url=f"sqlite+aiosqlite:///{tmp_path}/t.db",
        secret_key=SECRET,
        public_url="http://testserver",
    )
    return await aiohttp_client(create_app(settings))


async def lead_row(client: TestClient[Any, Any]) -> Any:
    async with client.app[DATABASE].reading() as connection:  # type: ignore[index]
        return (await connection.execute(select(LEADS))).one()


async def form_lead(client: TestClient[Any, Any], **fields: str) -> str:
    """Submit the hosted form as a prospect would; the lead's token."""
    page = await (await client.get(f"/f/{SCRIPT}")).text()
    nonce = re.search(r'name="_nonce" value="([^"]+)"', page)
    assert nonce is not None
    form = {
        "_nonce": nonce.group(1),
        "_consent": "yes",
        "first_name": "Ana",
        "phone": "612345678",
        "email": "ana@example.com",
        **fields,
    }
    response = await client.post(f"/f/{SCRIPT}", data=form, allow_redirects=False)
    assert response.status == 303, await response.text()
    return response.headers["Location"].removeprefix("/r/")


async def opened_chat(client: TestClient[Any, Any], **fields: str) -> str:
    token = await form_lead(client, **fields)
    response = await client.get(f"/chat/{token}")
    assert response.status == 200
    return token


async def lines(client: TestClient[Any, Any], token: str, after: int = 0) -> list[dict[str, Any]]:
    response = await client.get(f"/chat/{token}/messages", params={"after": after})
    assert response.status == 200
    result: list[dict[str, Any]] = await response.json()
    return result


async def say(client: TestClient[Any, Any], token: str, **body: str) -> ClientResponse:
    body.setdefault("client_id", str(uuid.uuid4()))
    return await client.post(f"/chat/{token}/messages", json=body)


async def bot_after(client: TestClient[Any, Any], token: str, after: int) -> list[dict[str, Any]]:
    return [line for line in await lines(client, token, after) if line["author"] == "bot"]


SECOND_OFFERED = "<the second time offered>"  # known once the times are on show


def offered_labels(transcript: list[dict[str, Any]], text: str) -> list[str]:
    [line] = [line for line in transcript if line["text"].startswith(text)]
    return [option["label"] for option in line["options"]]


async def test_a_whole_conversation_from_form_to_completed_lead(
    client: TestClient[Any, Any],
) -> None:
    visit = bookable_day("car_test_drive.yaml", 2)
    token = await form_lead(client)
    chooser = await client.get(f"/r/{token}/web", allow_redirects=False)
    assert chooser.headers["Location"] == f"http://testserver/chat/{token}"

    page_response = await client.get(f"/chat/{token}")
    assert page_response.status == 200
    assert page_response.headers["Referrer-Policy"] == "no-referrer"
    page = await page_response.text()
    # The greeting and the first question were written when the page opened the conversation.
    assert "Hi Ana! Thanks for your interest in a test drive." in page
    assert 'data-value="suv_x" data-question="model">SUV X</button>' in page
    nonce = re.search(
        r"script-src 'nonce-([^']+)'", page_response.headers["Content-Security-Policy"]
    )
    assert nonce is not None
    assert f'<script nonce="{nonce.group(1)}"' in page

    transcript = await lines(client, token)
    assert [line["author"] for line in transcript] == ["bot", "bot"]
    greeting, question = transcript
    assert greeting["text"].startswith("Hi Ana!")
    assert question["text"] == "Which model would you like to drive?"
    assert question["status"] in {"queued", "sent"}  # shown whether or not dispatched yet
    assert {"value": "suv_x", "label": "SUV X"} in question["options"]
    assert question["question_id"] == "model"

    last = question["id"]
    replies: list[tuple[dict[str, str], str]] = [
        ({"option": "suv_x", "question_id": "model"}, "When are you planning to buy?"),
        ({"option": "now", "question_id": "timeline"}, "Do you have a car to trade in?"),
        ({"text": "yes"}, "Roughly what budget do you have in mind, in euros?"),
        ({"text": "about 30k"}, "Which showroom would you like to visit?"),
        ({"option": "place:centro", "question_id": "visit"}, "When would you like to come"),
        # A weekday, open 09:00-19:00 in 45-minute slots: 10:30, 11:15 and 12:00 are nearest.
        ({"text": f"{visit:%d %B} at 11am"}, "Here's what we have then:"),
        ({"option": SECOND_OFFERED, "question_id": "visit"}, "You're booked: "),
        ({"option": "yes", "question_id": "phone"}, "All set, Ana!"),
    ]
    offered: list[dict[str, str]] = []
    for planned, expected in replies:
        body = dict(planned)
        if body.get("option") == SECOND_OFFERED:
            body["option"] = offered[1]["value"]
        response = await say(client, token, **body)
        assert response.status == 202
        assert await response.json() == {"ok": True}
        new = await lines(client, token, last)
        assert new[0]["author"] == "prospect"
        said = [line for line in new if line["author"] == "bot"]
        assert any(line["text"].startswith(expected) for line in said), (body, said)
        offered = said[-1]["options"]
        last = new[-1]["id"]

    transcript = await lines(client, token)
    tapped = [line["text"] for line in transcript if line["author"] == "prospect"]
    assert tapped[:2] == ["SUV X", "This month"]  # a tapped option reads as its label
    # The tapped time reads as the booked slot, in full.
    assert tapped[-2].endswith(", 11:15\u202fAM, Downtown showroom (Calle Mayor 1, Madrid)")
    assert offered_labels(transcript, "Here's what we have then:")[1].endswith(", 11:15\u202fAM")
    [confirmation] = [line["text"] for line in transcript if "You're booked: " in line["text"]]
    assert "Downtown showroom (Calle Mayor 1, Madrid)" in confirmation

    lead = await lead_row(client)
    assert lead.outcome == "booked"
    assert lead.qualified is True
    assert lead.score == 65
    assert lead.completed_at is not None
    assert lead.answers["model"] == "suv_x"
    assert lead.answers["timeline"] == "now"
    assert lead.answers["trade_in"] is True
    assert lead.answers["budget"] == 30000
    assert lead.answers["phone"] == "+34612345678"
    appointment = await stored_booking(client, lead, confirmation)
    quarter_past_eleven = datetime.combine(visit, time(11, 15), ZoneInfo("Europe/Madrid"))
    assert (appointment.location, appointment.starts_at) == (
        "centro",
        quarter_past_eleven.astimezone(UTC),
    )


async def test_reopening_the_page_resumes_the_same_conversation(
    client: TestClient[Any, Any],
) -> None:
    token = await opened_chat(client)
    await say(client, token, option="suv_x", question_id="model")
    page = await (await client.get(f"/chat/{token}")).text()
    assert page.count("Hi Ana!") == 1
    assert "SUV X" in page
    assert 'data-question="timeline"' in page  # the pending question's buttons
    assert 'data-question="model"' not in page
    before = [(line["id"], line["text"]) for line in await lines(client, token)]
    await client.get(f"/chat/{token}")  # a reload adds nothing: no "welcome back" each time
    # (Statuses may move meanwhile: the dispatcher sends the last question.)
    assert [(line["id"], line["text"]) for line in await lines(client, token)] == before
    assert "Welcome back!" not in page


async def test_a_repeated_post_is_one_turn(client: TestClient[Any, Any]) -> None:
    token = await opened_chat(client)
    before = await lines(client, token)
    client_id = str(uuid.uuid4())
    for _ in range(2):
        response = await say(client, token, text="suv", client_id=client_id)
        assert response.status == 202
    new = await lines(client, token, before[-1]["id"])
    assert [line["author"] for line in new].count("prospect") == 1


async def test_bad_posts_get_json_errors(client: TestClient[Any, Any]) -> None:
    token = await opened_chat(client)
    url = f"/chat/{token}/messages"
    cases: list[tuple[dict[str, Any], int, str]] = [
        ({"data": b"{not json", "headers": {"Content-Type": "application/json"}}, 400, "bad_json"),
        ({"json": ["text"]}, 400, "bad_request"),
        ({"json": {"text": "   "}}, 400, "bad_request"),
        ({"json": {"text": "x" * 2001}}, 400, "bad_request"),
        ({"json": {"text": "hi", "client_id": "no spaces allowed"}}, 400, "bad_request"),
        ({"json": {"option": "suv_x"}}, 400, "bad_request"),
        ({"data": "text=hi", "headers": {"Content-Type": "text/plain"}}, 415, ""),
    ]
    for kwargs, status, code in cases:
        response = await client.post(url, **kwargs)
        assert response.status == status, kwargs
        body = await response.json()
        assert body["error"]["message"]
        if code:
            assert body["error"]["code"] == code
    assert (await say(client, token, text="x" * 2000)).status == 202


async def test_bad_tokens_are_refused_everywhere(client: TestClient[Any, Any]) -> None:
    token = await opened_chat(client)
    lead_id = (await lead_row(client)).id
    expired = TokenSigner(SECRET.encode(), lifetime=timedelta(seconds=-1)).sign(
        lead_id, datetime.now(UTC)
    )
    altered = token[:-3] + ("AAA" if not token.endswith("AAA") else "BBB")
    for bad, status in ((altered, 404), ("nonsense", 404), (expired, 410)):
        page = await client.get(f"/chat/{bad}")
        assert page.status == status
        assert page.content_type == "text/html"
        for response in (
            await client.get(f"/chat/{bad}/messages"),
            await client.get(f"/chat/{bad}/events"),
            await say(client, bad, text="hi"),
        ):
            assert response.status == status
            body = await response.json()
            assert body["error"]["code"] == ("link_expired" if status == 410 else "link_invalid")


async def test_messages_before_the_page_opened_are_none_and_after_must_be_an_id(
    client: TestClient[Any, Any],
) -> None:
    token = await form_lead(client)
    assert await lines(client, token) == []
    for after in ("-1", "²", "1" * 30):
        response = await client.get(f"/chat/{token}/messages", params={"after": after})
        assert response.status == 400
    assert (await client.get(f"/chat/{token}/events")).status == 404


async def test_a_post_without_the_page_opens_the_conversation(
    client: TestClient[Any, Any],
) -> None:
    token = await form_lead(client)
    assert (await say(client, token, text="sedan")).status == 202
    authors = [line["author"] for line in await lines(client, token)]
    assert authors[:3] == ["bot", "bot", "prospect"]


async def read_event(response: ClientResponse) -> dict[str, Any]:
    """The next `data:` event of a server-sent event stream."""
    event: dict[str, Any] = {}
    while True:
        raw = await response.content.readline()
        assert raw, "the stream ended"
        line = raw.decode().rstrip("\n")
        if line.startswith("id: "):
            event["id"] = int(line[4:])
        elif line.startswith("data: "):
            event["data"] = json.loads(line[6:])
        elif line == "" and "data" in event:
            return event


async def test_events_push_new_lines_after_a_post(client: TestClient[Any, Any]) -> None:
    token = await opened_chat(client)
    last = (await lines(client, token))[-1]["id"]
    async with client.get(f"/chat/{token}/events", params={"after": last}) as stream:
        assert stream.status == 200
        assert stream.content_type == "text/event-stream"
        assert (await say(client, token, text="suv")).status == 202
        first = await asyncio.wait_for(read_event(stream), timeout=10)
        assert first["data"]["author"] == "prospect"
        assert first["data"]["text"] == "suv"
        assert first["id"] > last
        second = await asyncio.wait_for(read_event(stream), timeout=10)
        assert second["data"]["text"] == "When are you planning to buy?"


async def test_events_resume_from_last_event_id(client: TestClient[Any, Any]) -> None:
    token = await opened_chat(client)
    first, _ = await lines(client, token)
    headers = {"Last-Event-ID": str(first["id"])}
    async with client.get(f"/chat/{token}/events", headers=headers) as stream:
        event = await asyncio.wait_for(read_event(stream), timeout=10)
        assert event["data"]["text"] == "Which model would you like to drive?"


async def test_a_closed_page_ends_its_stream(client: TestClient[Any, Any]) -> None:
    token = await opened_chat(client)
    stream = await client.get(f"/chat/{token}/events")
    await asyncio.wait_for(read_event(stream), timeout=10)
    hub = client.app[HUB]  # type: ignore[index]
    assert len(hub) == 1
    stream.close()
    await say(client, token, text="suv")  # wakes the stream, which finds its reader gone

    async def released() -> None:
        while len(hub):
            await asyncio.sleep(0.02)

    await asyncio.wait_for(released(), timeout=10)


async def test_shutdown_ends_open_streams(aiohttp_client: AiohttpClient, tmp_path: Path) -> None:
    settings = Settings(
        database_url=f"sqlite+aiosqlite:///{tmp_path}/t.db",
        secret_key=SECRET,
        public_url="http://testserver",
    )
    client = await aiohttp_client(create_app(settings))
    token = await opened_chat(client)
    stream = await client.get(f"/chat/{token}/events")
    await asyncio.wait_for(read_event(stream), timeout=10)
    hub = client.app[HUB]  # type: ignore[index]
    assert len(hub) == 1
    # The app's on_shutdown closes the hub: the stream ends instead of holding the shutdown.
    await asyncio.wait_for(client.server.close(), timeout=10)
    assert hub.closed
    assert len(hub) == 0
    stream.close()


async def test_the_hub_wakes_only_listeners_of_that_conversation() -> None:
    hub = Hub()
    with hub.listening(1) as one, hub.listening(2) as two:
        hub.notify(1)
        hub.notify(None)
        assert one.is_set()
        assert not two.is_set()
        assert len(hub) == 2
    assert len(hub) == 0
    hub.close()
    with hub.listening(3) as late:
        assert late.is_set()  # a stream opened during shutdown ends at once


async def test_hostile_bodies_get_400s_and_odd_text_is_kept(client: TestClient[Any, Any]) -> None:
    token = await opened_chat(client)
    nested = await client.post(
        f"/chat/{token}/messages",
        data=b"[" * 5_000,  # under the size limit, over the depth limit
        headers={"Content-Type": "application/json"},
    )
    assert nested.status == 400
    odd = await client.post(
        f"/chat/{token}/messages",
        data=b'{"text": "suv \\ud800", "client_id": "odd1"}',
        headers={"Content-Type": "application/json"},
    )
    assert odd.status in (202, 400)  # refused or stored cleaned: never a 500
    listing = await client.get(f"/chat/{token}/messages")
    assert listing.headers["Cache-Control"] == "no-store"


async def test_a_lead_whose_script_was_removed_gets_a_friendly_page(
    client: TestClient[Any, Any],
) -> None:
    lead = NewLead("api", "orphan", "removed-script", datetime.now(UTC))
    lead_id = await client.app[STORAGE].run(
        lambda tx: tx.leads.add(lead, "ORPH42", datetime.now(UTC))[0].id
    )
    token = client.app[SIGNER].sign(lead_id, datetime.now(UTC))
    response = await client.get(f"/chat/{token}")
    assert response.status == 404
    assert "text/html" in response.headers["Content-Type"]
