"""The reps' console on the real app (SQLite and PostgreSQL), with prospects in the web chat:
the inbox and its search, a conversation's page, every rep action as a form and as JSON, two
reps racing for one conversation, CSRF refusals that change nothing, and clear errors."""

from __future__ import annotations

import asyncio
import html
import logging
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from pytest_aiohttp import AiohttpClient
from sqlalchemy import func, select, update

from storage.tables import AuditRow, ConversationRow, MessageRow, OutboxRow
from tests.console_support import Browser, Console, running_console
from tests.prospects import Prospect
from webhooks.keys import CONVERSATIONS, DATABASE, SIGNER

C = ConversationRow.__table__  # type: ignore[attr-defined]
M = MessageRow.__table__  # type: ignore[attr-defined]
A = AuditRow.__table__  # type: ignore[attr-defined]
OUTBOX = OutboxRow.__table__  # type: ignore[attr-defined]
JSON = {"Accept": "application/json"}
GREETING = (
    "Hi Kim! Thanks for your interest in a test drive. A few quick questions and you're booked."
)


@pytest.fixture(params=["sqlite", "postgresql"])
async def console(
    request: pytest.FixtureRequest, aiohttp_client: AiohttpClient, tmp_path: Path
) -> AsyncIterator[Console]:
    # Many prospects from one test address: the hosted form's rate limit is raised for them.
    async with running_console(
        aiohttp_client, tmp_path, request.param, form={"per_minute": 1000}
    ) as running:
        yield running


async def ana_and_ben(console: Console) -> tuple[Browser, Browser]:
    await console.add_rep("ana@example.com", name="Ana Ruiz")
    await console.add_rep("ben@example.com", name="Ben Ode")
    return await console.logged_in("ana@example.com"), await console.logged_in("ben@example.com")


async def prospect(console: Console, **fields: str) -> Prospect:
    def send(method: str, path: str, **options: Any) -> Awaitable[Any]:
        return console.request(method, path, **options)

    return await Prospect(send).arrive(console.client.app[DATABASE], **fields)


async def page(console: Console, browser: Browser, path: str, status: int = 200) -> str:
    response = await console.request("GET", path, browser)
    text = await response.text()
    assert response.status == status, text
    return html.unescape(text)


async def as_json(console: Console, browser: Browser, path: str) -> Any:
    response = await console.request("GET", path, browser, headers=JSON)
    assert response.status == 200, await response.text()
    assert response.headers["Cache-Control"] == "no-store"
    return await response.json()


async def act(
    console: Console, browser: Browser, conversation: int, action: str, **form: str
) -> Any:
    return await console.request(
        "POST", f"/console/conversations/{conversation}/{action}", browser, data=form
    )


def listed(text: str) -> list[tuple[int, str]]:
    """(conversation id, status) of the inbox's rows, in order."""
    found = re.findall(r'data-conversation="(\d+)" data-status="(\w+)"', text)
    return [(int(cid), status) for cid, status in found]


def alert(text: str) -> str:
    found = re.search(r'role="alert" id="alert">([^<]*)<', text)
    return found.group(1) if found else ""


async def scalar(console: Console, query: Any) -> Any:
    async with console.client.app[DATABASE].reading() as connection:
        return (await connection.execute(query)).scalar()


async def holder(console: Console, conversation: int) -> tuple[int | None, str | None]:
    query = select(C.c.held_by, C.c.held_by_name).where(C.c.id == conversation)
    async with console.client.app[DATABASE].reading() as connection:
        row = (await connection.execute(query)).one()
    return row.held_by, row.held_by_name


async def audit(console: Console, conversation: int) -> list[tuple[str, str, str | None]]:
    query = select(A.c.action, A.c.actor, A.c.detail).where(A.c.conversation_id == conversation)
    async with console.client.app[DATABASE].reading() as connection:
        rows = (await connection.execute(query.order_by(A.c.id))).all()
    return [(row.action, row.actor, row.detail) for row in rows]


async def eventually(check: Callable[[], Awaitable[bool]], timeout: float = 15) -> None:
    async def wait() -> None:
        while not await check():
            await asyncio.sleep(0.05)

    await asyncio.wait_for(wait(), timeout)


# -- the inbox ------------------------------------------------------------------------------------


async def test_the_inbox_lists_conversations_by_state_newest_activity_first(
    console: Console,
) -> None:
    ana, _ = await ana_and_ben(console)
    quiet = await prospect(console, first_name="Quinn")
    waiting = await prospect(console, first_name="Wanda")
    taken = await prospect(console, first_name="Theo")
    await waiting.say("I'd like to talk to a person")
    assert (await act(console, ana, taken.conversation_id, "take-over")).status == 303

    text = await page(console, ana, "/console")
    # Newest activity first: Theo was taken over last, Wanda asked for a person before that.
    assert listed(text) == [
        (taken.conversation_id, "with_rep"),
        (waiting.conversation_id, "handed_off"),
        (quiet.conversation_id, "active"),
    ]
    assert "Theo" in text
    assert "With a rep: Ana Ruiz" in text
    # The waiting one stands out, with how long it has waited.
    row = re.search(rf'<li class="row waiting" data-conversation="{waiting.conversation_id}"', text)
    assert row is not None
    assert re.search(r'class="waited" data-waited="\d+">waiting \d+ (s|min)<', text)
    assert re.search(
        r'id="waiting-banner" href="/console\?state=waiting">1 waiting for a rep', text
    )
    assert "<title>(1) Inbox</title>" in text

    assert listed(await page(console, ana, "/console?state=waiting")) == [
        (waiting.conversation_id, "handed_off")
    ]
    assert listed(await page(console, ana, "/console?state=bot")) == [
        (quiet.conversation_id, "active")
    ]
    assert listed(await page(console, ana, "/console?state=rep")) == [
        (taken.conversation_id, "with_rep")
    ]
    assert listed(await page(console, ana, "/console?state=closed")) == []
    assert listed(await page(console, ana, "/console?channel=web")) == listed(text)
    assert "No conversations here yet." in await page(console, ana, "/console?channel=telegram")
    counts = re.findall(r'data-state="(\w*)">[^<]+<span class="count">(\d+)</span>', text)
    assert dict(counts) == {"": "3", "waiting": "1", "bot": "1", "rep": "1", "completed": "0",
                            "closed": "0"}  # fmt: skip

    body = await as_json(console, ana, "/console?state=waiting")
    [only] = body["conversations"]
    assert only["id"] == waiting.conversation_id
    assert only["name"] == "Wanda"
    assert only["status_label"] == "Waiting for a rep"
    assert only["waiting_seconds"] >= 0
    assert body["waiting"] == 1
    assert body["counts"] == {"active": 1, "handed_off": 1, "with_rep": 1}


async def test_the_inbox_refuses_unknown_filters_clearly(console: Console) -> None:
    ana, _ = await ana_and_ben(console)
    for query, word in (("state=nope", "unknown state"), ("channel=fax", "unknown channel")):
        response = await console.request("GET", f"/console?{query}", ana)
        assert response.status == 400
        assert word in await response.text()
        response = await console.request("GET", f"/console?{query}", ana, headers=JSON)
        assert (await response.json())["error"]["code"] == "bad_request"
    assert (await console.request("GET", "/console?page=x%C2%B2", ana)).status == 200


async def test_the_inbox_is_paginated(console: Console) -> None:
    ana, _ = await ana_and_ben(console)
    people = [await prospect(console, first_name=f"P{n}") for n in range(27)]
    first = listed(await page(console, ana, "/console"))
    second_page = await page(console, ana, "/console?page=2")
    second = listed(second_page)
    assert len(first) == 25
    assert [cid for cid, _ in first + second] == [p.conversation_id for p in reversed(people)]
    assert 'href="/console?page=2">Older' in await page(console, ana, "/console")
    assert 'href="/console">← Newer' in second_page
    assert "Older" not in second_page


async def test_search_by_name_phone_email_or_reference(
    console: Console, caplog: pytest.LogCaptureFixture
) -> None:
    ana, _ = await ana_and_ben(console)
    maria = await prospect(
        console,
        script="b2b-services",  # its form asks for the last name too
        first_name="María",
        last_name="Gómez",
        email="maria.gomez@example.org",
        company="Gómez Logística",
        job_title="COO",
    )
    pedro = await prospect(console, first_name="Pedro", phone="+34 699 111 222")
    other = await prospect(console, first_name="Olaf", phone="611 000 333")
    caplog.set_level(logging.INFO)  # what `leadbot serve` logs

    async def found(query: str) -> list[int]:
        response = await console.request("GET", "/console", ana, params={"q": query})
        assert response.status == 200
        return [cid for cid, _ in listed(await response.text())]

    for query in (
        "maría",
        "MARÍA GÓ",  # first and last name together, any case
        "gómez",
        "maria.gomez@",
        "@EXAMPLE.ORG",
        maria.reference.lower(),
    ):
        assert await found(query) == [maria.conversation_id], query
    for query in (
        "699 111 222",  # typed the national way: normalised in the scripts' regions (ES...)
        "+34699111222",
        "0034 699-111-222",
        "(699) 111222",
        "1222",  # the end of a number
        pedro.reference,
    ):
        assert await found(query) == [pedro.conversation_id], query
    assert await found("olaf") == [other.conversation_id]
    assert await found("nobody like this") == []
    assert await found("%") == []  # LIKE's wildcards are taken literally
    everyone = [other.conversation_id, pedro.conversation_id, maria.conversation_id]
    assert await found("   ") == everyone
    text = await page(console, ana, "/console?q=zz%25top")
    assert "No conversation matches “zz%top”." in text
    # A typed number is never logged (nor any other search).
    logged = " ".join(record.getMessage() + repr(record.__dict__) for record in caplog.records)
    for typed in ("699111222", "699 111 222", "699-111-222", "maria.gomez", "MARÍA"):
        assert typed not in logged


# -- a conversation ---------------------------------------------------------------------------


async def test_a_conversation_page_shows_transcript_lead_card_holder_and_audit(
    console: Console,
) -> None:
    ana, ben = await ana_and_ben(console)
    kim = await prospect(console, first_name="Kim", _utm_campaign="spring-suv")
    path = f"/console/conversations/{kim.conversation_id}"
    await kim.tap("model", "suv_x")
    await kim.tap("timeline", "now")
    await kim.say("yes")  # a trade-in: 5 points
    assert (await act(console, ana, kim.conversation_id, "take-over")).status == 303
    await act(console, ana, kim.conversation_id, "messages", text="Hi Kim, Ana here <b>!</b>")
    await act(console, ben, kim.conversation_id, "notes", text="Called twice, no answer")
    await kim.say("hello Ana")

    text = await page(console, ana, path)
    assert "<h1>Kim</h1>" in text
    assert "You hold this conversation" in text
    lines = re.findall(
        r'<li class="line (\w+)" data-line="\d+" data-status="(\w+)">.*?<span class="who">'
        r'([^<]*)</span>.*?<span class="delivery">([^<]*)</span></div>'
        r'<div class="text">(.*?)</div>',
        text,
    )
    assert [(author, body) for author, _, _, _, body in lines] == [
        ("bot", GREETING),
        ("bot", "Which model would you like to drive?"),
        ("prospect", "SUV X"),
        ("bot", "When are you planning to buy?"),
        ("prospect", "This month"),
        ("bot", "Do you have a car to trade in?"),
        ("prospect", "yes"),
        ("bot", "Roughly what budget do you have in mind, in euros?"),
        ("bot", "You're now chatting with Ana Ruiz from our team."),
        ("rep", "Hi Kim, Ana here <b>!</b>"),  # shown as text, never as markup
        ("note", "Ben Ode: Called twice, no answer"),
        ("prospect", "hello Ana"),
    ]
    assert "<b>!</b>" not in (await (await console.request("GET", path, ana)).text())
    by_author = {(author, who, delivery) for author, _, who, delivery, _ in lines}
    assert ("prospect", "Prospect", "") in by_author
    assert ("note", "Note", "") in by_author
    # Each sent line shows its delivery status (the web chat's "sending" is instant).
    await eventually(lambda: _all_sent(console, ana, path))

    # The lead card: form fields, answers (choices by label), score with reasons, attribution
    # and consent.
    assert "<dt>First name</dt><dd>Kim</dd>" in text
    assert "<dt>Model you are interested in</dt>" not in text  # not given on the form
    assert "<dt>Model</dt><dd>SUV X</dd>" in text
    assert "<dt>Timeline</dt><dd>This month</dd>" in text
    assert "<dt>Trade in</dt><dd>yes</dd>" in text
    assert "<dt>UTM campaign</dt><dd>spring-suv</dd>" in text
    assert "“I agree that Acme Motors contacts me in chat about my test drive.”" in text
    assert re.search(r"given \d{4}-\d\d-\d\d \d\d:\d\d UTC", text)
    assert f"<dd>{kim.reference}</dd>" in text

    # The audit trail: who did what, in order, with when.
    trail = re.findall(
        r'<li data-audit="\d+"><span class="muted">([^<]+)</span> <b>([^<]+)</b> (.+?)</li>', text
    )
    assert [(who, what) for _, who, what in trail] == [
        ("Ana Ruiz (rep 1)", "took over"),
        ("Ana Ruiz (rep 1)", "wrote: “Hi Kim, Ana here <b>!</b>”"),
        ("Ben Ode (rep 2)", "added a note: “Called twice, no answer”"),
    ]
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d UTC", when) for when, _, _ in trail)

    # Ben sees who holds it, and no take-over button.
    as_ben = await page(console, ben, path)
    assert "Ana Ruiz is handling this conversation" in as_ben
    assert 'id="take-over"' not in as_ben
    assert 'id="compose"' not in as_ben
    assert 'id="notes"' in as_ben

    body = await as_json(console, ana, path)
    assert body["conversation"]["status"] == "with_rep"
    assert body["conversation"]["held_by_name"] == "Ana Ruiz"
    assert body["lead"]["answers"] == {"model": "suv_x", "timeline": "now", "trade_in": True}
    assert body["lead"]["attribution"] == {"utm_campaign": "spring-suv"}
    assert body["lead"]["consent_text"].startswith("I agree that Acme Motors")
    assert [line["author"] for line in body["transcript"]][-2:] == ["note", "prospect"]
    assert [entry["action"] for entry in body["audit"]] == ["took_over", "wrote", "noted"]


async def _all_sent(console: Console, browser: Browser, path: str) -> bool:
    body = await as_json(console, browser, path)
    return all(
        line["status"] == "sent" and line["status_label"] == "sent"
        for line in body["transcript"]
        if line["author"] in ("bot", "rep")
    )


async def test_take_over_write_hand_back_and_close_as_forms(console: Console) -> None:
    ana, _ = await ana_and_ben(console)
    kim = await prospect(console, first_name="Kim")
    cid = kim.conversation_id
    await kim.tap("model", "sedan_s")

    taken = await act(console, ana, cid, "take-over")
    assert taken.status == 303
    assert taken.headers["Location"] == f"/console/conversations/{cid}"
    text = await page(console, ana, f"/console/conversations/{cid}")
    assert 'id="compose"' in text
    assert 'id="hand-back"' in text
    assert 'id="take-over"' not in text

    wrote = await act(console, ana, cid, "messages", text="  Hi Kim, it's Ana.  ")
    assert wrote.status == 303
    assert wrote.headers["Location"] == f"/console/conversations/{cid}#compose"
    await kim.say("When can I come?")
    said = [(line["author"], line["text"]) for line in await kim.lines()]
    assert said[-3:] == [
        ("bot", "You're now chatting with Ana Ruiz from our team."),
        ("rep", "Hi Kim, it's Ana."),  # the prospect sees the rep's line in their chat
        ("prospect", "When can I come?"),
    ]

    back = await act(console, ana, cid, "hand-back")
    assert back.status == 303
    assert await holder(console, cid) == (None, None)
    said = [(line["author"], line["text"]) for line in await kim.lines()]
    assert said[-2] == (
        "bot",
        "Thanks for waiting! Let's pick up where we left off. So far: Sedan S.",
    )
    assert said[-1] == ("bot", "When are you planning to buy?")  # the bot resumes
    text = await page(console, ana, f"/console/conversations/{cid}")
    assert 'class="badge active" id="state">With the bot<' in text
    assert 'id="take-over"' in text

    closed = await act(console, ana, cid, "close", outcome="sold")
    assert closed.status == 303
    text = await page(console, ana, f"/console/conversations/{cid}")
    assert 'class="badge closed" id="state">Closed<' in text
    assert 'id="take-over"' not in text
    assert 'action="/console/conversations/' in text
    assert [(a, d) for a, _, d in await audit(console, cid)] == [
        ("took_over", None),
        ("wrote", "Hi Kim, it's Ana."),
        ("handed_back", None),
        ("closed", "sold"),
    ]
    # Closed is closed: taking it over again is refused with the reason, and nothing changes.
    again = await act(console, ana, cid, "take-over")
    assert again.status == 409
    assert alert(html.unescape(await again.text())) == "The conversation is closed."
    assert await holder(console, cid) == (None, None)


async def test_actions_answer_json_when_asked(console: Console) -> None:
    ana, ben = await ana_and_ben(console)
    kim = await prospect(console)
    base = f"/console/conversations/{kim.conversation_id}"
    taken = await console.request("POST", f"{base}/take-over", ana, headers=JSON)
    assert taken.status == 200
    assert await taken.json() == {
        "ok": True,
        "action": "take_over",
        "conversation": {
            "id": kim.conversation_id,
            "version": (await taken.json())["conversation"]["version"],
            "status": "with_rep",
            "status_label": "With a rep",
            "held_by": 1,
            "held_by_name": "Ana Ruiz",
        },
    }
    wrote = await console.request("POST", f"{base}/messages", ana, json={"text": "Hello"})
    assert wrote.status == 200  # a JSON body gets JSON back
    assert (await wrote.json())["action"] == "write"
    refused = await console.request("POST", f"{base}/take-over", ben, headers=JSON)
    assert refused.status == 409
    assert await refused.json() == {
        "error": {
            "code": "held_by_another",
            "message": "Ana Ruiz is handling this conversation",
            "holder": "Ana Ruiz",
        }
    }
    htmx = await console.request(
        "POST", f"{base}/messages", ben, data={"text": "hi"}, headers={"HX-Request": "true"}
    )
    assert htmx.status == 409
    assert (await htmx.json())["error"]["holder"] == "Ana Ruiz"
    empty = await console.request("POST", f"{base}/notes", ana, json={"text": " "}, headers=JSON)
    assert empty.status == 400
    assert (await empty.json())["error"]["message"] == "the note is empty: write something first"


async def test_two_reps_pressing_take_over_at_once(console: Console) -> None:
    ana, ben = await ana_and_ben(console)
    for attempt in range(3):
        kim = await prospect(console)
        cid = kim.conversation_id
        first, second = (ana, ben) if attempt % 2 == 0 else (ben, ana)
        answers = await asyncio.gather(
            act(console, first, cid, "take-over"), act(console, second, cid, "take-over")
        )
        assert sorted(response.status for response in answers) == [303, 409]
        won, lost = answers if answers[0].status == 303 else answers[::-1]
        winner = "Ana Ruiz" if (won is answers[0]) == (first is ana) else "Ben Ode"
        held_by, held_name = await holder(console, cid)
        assert held_name == winner
        loser_page = html.unescape(await lost.text())
        assert alert(loser_page) == f"{winner} is handling this conversation."
        assert f"{winner} is handling this conversation: only they can write" in loser_page
        assert [action for action, _, _ in await audit(console, cid)] == ["took_over"]
        joined = [line for line in await kim.lines() if "now chatting with" in line["text"]]
        assert [line["text"] for line in joined] == [
            f"You're now chatting with {winner} from our team."
        ]
        assert held_by in (1, 2)


async def test_a_rep_who_does_not_hold_it_is_told_so(console: Console) -> None:
    ana, ben = await ana_and_ben(console)
    kim = await prospect(console)
    cid = kim.conversation_id
    not_yet = await act(console, ana, cid, "messages", text="hello?")
    assert not_yet.status == 409
    assert alert(html.unescape(await not_yet.text())) == "Take the conversation over first."
    assert (await act(console, ana, cid, "hand-back")).status == 409
    await act(console, ana, cid, "take-over")
    before = [(line["id"], line["text"]) for line in await kim.lines()]
    for action, form in (
        ("messages", {"text": "me too"}),
        ("hand-back", {}),
        ("close", {"outcome": "lost"}),
    ):
        refused = await act(console, ben, cid, action, **form)
        assert refused.status == 409, action
        assert (
            alert(html.unescape(await refused.text())) == "Ana Ruiz is handling this conversation."
        )
    assert [(line["id"], line["text"]) for line in await kim.lines()] == before
    assert await holder(console, cid) == (1, "Ana Ruiz")
    assert (await act(console, ben, cid, "notes", text="I know her")).status == 303


async def test_a_change_without_the_csrf_token_changes_nothing(console: Console) -> None:
    ana, _ = await ana_and_ben(console)
    kim = await prospect(console)
    cid = kim.conversation_id
    lines_before = await scalar(console, select(func.count()).select_from(M))
    outbox_before = await scalar(console, select(func.count()).select_from(OUTBOX))
    version = await scalar(console, select(C.c.version).where(C.c.id == cid))
    for action, form in (
        ("take-over", {}),
        ("messages", {"text": "hi"}),
        ("notes", {"text": "hi"}),
        ("close", {"outcome": "spam"}),
    ):
        for token in ({}, {"csrf_token": "x" * 43}):
            refused = await console.request(
                "POST",
                f"/console/conversations/{cid}/{action}",
                ana,
                csrf=False,
                data={**form, **token},
            )
            assert refused.status == 403, (action, token)
    assert await holder(console, cid) == (None, None)
    assert await audit(console, cid) == []
    assert await scalar(console, select(func.count()).select_from(M)) == lines_before
    assert await scalar(console, select(func.count()).select_from(OUTBOX)) == outbox_before
    assert await scalar(console, select(C.c.version).where(C.c.id == cid)) == version
    # The form's own field is accepted, as a browser sends it.
    token = ana.csrf
    assert token is not None
    taken = await console.request(
        "POST",
        f"/console/conversations/{cid}/take-over",
        ana,
        csrf=False,
        data={"csrf_token": token},
    )
    assert taken.status == 303


async def test_bad_input_gets_a_clear_message_never_a_500(console: Console) -> None:
    ana, _ = await ana_and_ben(console)
    kim = await prospect(console)
    cid = kim.conversation_id
    await act(console, ana, cid, "take-over")
    cases = [
        ("messages", {"text": "   "}, "The message is empty: write something first."),
        ("messages", {"text": "x" * 4001}, "The message is too long: at most 4000 characters."),
        ("messages", {}, "The message is empty: write something first."),
        ("close", {"outcome": ""}, "The outcome is empty: write something first."),
        ("close", {"outcome": "o" * 65}, "The outcome is too long: at most 64 characters."),
        ("notes", {"text": "\u0000"}, "The note is empty: write something first."),
    ]
    for action, form, message in cases:
        response = await act(console, ana, cid, action, **form)
        assert response.status == 400, (action, form)
        text = html.unescape(await response.text())
        assert alert(text) == message
        assert "<h1>Ana" in text  # the conversation's page again, with the problem on top
    for body, problem in (
        (b"[1]", "send a JSON object"),
        (b"{", "not valid JSON"),
        (b'{"text": ["a"]}', "text must be a string"),
    ):
        response = await console.request(
            "POST",
            f"/console/conversations/{cid}/notes",
            ana,
            data=body,
            headers={"Content-Type": "application/json", **JSON},
        )
        assert response.status == 400, body
        error = (await response.json())["error"]
        assert error["code"] == "bad_request"
        assert problem in error["message"]
    for missing in ("999999", "abc", "99999999999999999999", "0"):
        path = f"/console/conversations/{missing}"
        for method, suffix in (("GET", ""), ("POST", "/take-over"), ("GET", "/events")):
            response = await console.request(method, path + suffix, ana)
            assert response.status == 404, (method, path + suffix)
    assert [action for action, _, _ in await audit(console, cid)] == ["took_over"]


async def test_a_closed_whatsapp_window_is_shown_and_holds_the_reps_message(
    console: Console,
) -> None:
    """A WhatsApp conversation whose prospect last wrote two days ago: the console says the
    window is closed, and the rep's message is held with the reason, not sent."""
    ana, _ = await ana_and_ben(console)
    app = console.client.app
    wes = Prospect(console.request)
    await wes.submit(first_name="Wes", phone="612000111")
    token = wes.token
    lead_id = app[SIGNER].verify(token, datetime.now(UTC))
    started = await app[CONVERSATIONS].start(
        lead_id, channel="whatsapp", channel_user_id="+34612000111"
    )
    cid = started.conversation_id
    async with app[DATABASE].writing() as connection:
        last = await connection.execute(select(C.c.last_inbound_at).where(C.c.id == cid))
        await connection.execute(
            update(C)
            .where(C.c.id == cid)
            .values(last_inbound_at=last.scalar_one() - timedelta(days=2))
        )
        await connection.commit()
    await act(console, ana, cid, "take-over")
    text = await page(console, ana, f"/console/conversations/{cid}")
    assert re.search(
        r'id="window">Your message will be held: outside WhatsApp\'s 24-hour window '
        r"\(last wrote [^)]+\); no window template is configured\.<",
        text,
    )
    await act(console, ana, cid, "messages", text="Are you still interested?")

    async def held() -> bool:
        body = await as_json(console, ana, f"/console/conversations/{cid}")
        mine = [line for line in body["transcript"] if line["author"] == "rep"]
        return bool(mine) and mine[-1]["status"] == "held"

    await eventually(held)
    text = await page(console, ana, f"/console/conversations/{cid}")
    line = re.search(
        r'<li class="line rep" data-line="\d+" data-status="held">.*?<span class="delivery">held'
        r'</span></div><div class="text">Are you still interested\?</div><div class="why">'
        r"outside WhatsApp's 24-hour window",
        text,
    )
    assert line is not None
