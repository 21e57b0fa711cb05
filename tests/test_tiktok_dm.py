"""TikTok DMs in: POST /webhooks/tiktok verified, read, deduped and handed to the router, on the
fake Business Messaging API, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from pytest_aiohttp import AiohttpClient, AiohttpServer

from tests.fake_tiktok import (
    BUSINESS_ID,
    Harness,
    echo,
    envelope,
    post_event,
    running,
    signature,
)
from webhooks.app import create_app
from webhooks.settings import Settings


@pytest.fixture(params=["sqlite", "postgresql"])
async def tt(
    request: pytest.FixtureRequest,
    aiohttp_client: AiohttpClient,
    aiohttp_server: AiohttpServer,
    tmp_path: Path,
) -> AsyncIterator[Harness]:
    async with running(aiohttp_client, aiohttp_server, tmp_path, request.param) as harness:
        yield harness


@pytest.fixture
async def tt_sqlite(
    aiohttp_client: AiohttpClient, aiohttp_server: AiohttpServer, tmp_path: Path
) -> AsyncIterator[Harness]:
    """For what storage does not change: authentication, parsing."""
    async with running(aiohttp_client, aiohttp_server, tmp_path) as harness:
        yield harness


async def nothing_stored(tt: Harness) -> None:
    await asyncio.sleep(0.05)
    assert await tt.receipts() == []
    assert await tt.leads() == []
    assert await tt.conversations() == []
    assert await tt.messages() == []
    assert tt.fake.calls == []


# -- authentication ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("signing", "problem"),
    [
        ({"header": ""}, "missing TikTok-Signature header"),
        ({"header": "t=1,s=nothex"}, "TikTok-Signature is not in the form"),
        ({"secret": "another-apps-secret"}, "signature does not match"),
        ({"skew": -1800}, "signature timestamp is 30 minutes old"),
        ({"skew": 1830}, "signature timestamp is 30 minutes in the future"),
    ],
)
async def test_an_unsigned_or_badly_signed_event_is_refused_and_nothing_stored(
    tt: Harness, signing: dict[str, Any], problem: str
) -> None:
    ana = tt.user()
    event = ana.message(type="text", text={"body": "STOP"})
    if "skew" in signing:  # stale, or from the future, as it arrives
        signing = {"timestamp": int(time.time()) + signing["skew"]}
    response = await post_event(tt.client, event, **signing)
    assert response.status == 401
    body = await response.json()
    assert body["error"]["code"] == "bad_signature"
    assert problem in body["error"]["message"]
    await nothing_stored(tt)


async def test_a_body_changed_after_signing_is_refused(tt_sqlite: Harness) -> None:
    body = json.dumps(tt_sqlite.user().message(type="text", text={"body": "hi"})).encode()
    header = signature(body)
    tampered = body.replace(b'\\"hi\\"', b'\\"STOP\\"')  # inside the content string
    assert tampered != body
    response = await post_event(tt_sqlite.client, tampered, header=header)
    assert response.status == 401
    await nothing_stored(tt_sqlite)


async def test_without_an_app_secret_the_route_says_which_setting_enables_it(
    aiohttp_client: AiohttpClient, tmp_path: Path
) -> None:
    settings = Settings(
        database_url=f"sqlite+aiosqlite:///{tmp_path / 't.db'}", secret_key="test-secret-key-01"
    )
    client = await aiohttp_client(create_app(settings))
    response = await post_event(client, envelope("tiktok.ping", None))
    assert response.status == 404
    assert (await response.json())["error"] == {
        "code": "not_configured",
        "message": "TikTok Direct Messages are not enabled here: set tiktok.app_secret "
        "(LEADBOT_TIKTOK__APP_SECRET)",
    }


# -- what is acknowledged and left alone -------------------------------------------------------


async def test_the_ping_echoes_and_read_receipts_are_acknowledged_and_ignored(
    tt: Harness,
) -> None:
    _, _, token = await tt.lead_token("car-test-drive", first_name="Ana")
    ana = tt.user()
    await ana.refer(token)
    greeting, question = await ana.expect("Hi Ana!", "Which model would you like to drive?")
    await tt.settled()
    before = (len(await tt.receipts()), len(await tt.messages()), len(tt.fake.calls))

    for event in [
        envelope("tiktok.ping", None),
        echo(greeting),
        echo(question),
        envelope("im_mark_read_msg", ana.content(read={"last_read_timestamp": 1})),
        envelope("im_receive_msg_eu", {"to": "leadbot_motors", "timestamp": 1}),
        # Typed by a colleague in the TikTok app: the business's own message.
        envelope(
            "im_receive_msg",
            ana.content(
                message_id="v2.own",
                type="text",
                text={"body": "suv"},
                from_user={"id": BUSINESS_ID, "role": "business_account"},
            ),
        ),
        # Another account that authorised the same app.
        envelope(
            "im_receive_msg",
            ana.content(message_id="v2.other", type="text", text={"body": "suv"}),
            business_id="-000AnOtHeRaCcOuNt",
        ),
    ]:
        await ana.deliver(event)
    await asyncio.sleep(0.05)
    await tt.settled()
    assert (len(await tt.receipts()), len(await tt.messages()), len(tt.fake.calls)) == before


# -- bad input: a 400 naming the problem, never a 500 --------------------------------------------


@pytest.mark.parametrize(
    ("event", "problem"),
    [
        (b"not json", "body is not valid JSON"),
        (b'"a string"', "the body must be an object"),
        ({"event": "im_receive_msg"}, "user_openid is missing"),
        ({"event": "im_receive_msg", "user_openid": BUSINESS_ID}, "content is missing"),
        (
            {"event": "im_receive_msg", "user_openid": BUSINESS_ID, "content": "{not json"},
            "content: body is not valid JSON",
        ),
        (envelope("im_receive_msg", {"conversation_id": "c1"}), "content.from_user is missing"),
        (
            envelope("im_receive_msg", {"conversation_id": "c1", "from_user": {"id": "u1"}}),
            "content.message_id is missing",
        ),
        (
            envelope(
                "im_receive_msg",
                {
                    "conversation_id": "c" * 200,
                    "from_user": {"id": "u1"},
                    "message_id": "m1",
                    "type": "text",
                    "text": {"body": "hi"},
                },
            ),
            "content.conversation_id is not an id",
        ),
    ],
)
async def test_a_signed_event_that_is_not_one_is_a_400_naming_the_problem(
    tt_sqlite: Harness, event: dict[str, Any] | bytes, problem: str
) -> None:
    response = await post_event(tt_sqlite.client, event)
    assert response.status == 400
    body = await response.json()
    assert body["error"]["code"] == "bad_event"
    assert problem in body["error"]["message"]
    await nothing_stored(tt_sqlite)


async def test_a_body_too_large_is_a_413(tt_sqlite: Harness) -> None:
    ana = tt_sqlite.user()
    response = await post_event(
        tt_sqlite.client, ana.message(type="text", text={"body": "x" * 300_000})
    )
    assert response.status == 413
    assert (await response.json())["error"]["code"] == "too_large"
    await nothing_stored(tt_sqlite)


# -- binding a conversation to its lead ----------------------------------------------------------


async def test_a_referral_with_a_leads_token_binds_the_conversation_to_that_lead(
    tt: Harness,
) -> None:
    lead_id, _, token = await tt.lead_token("car-test-drive", first_name="Ana")
    ana = tt.user()
    await ana.refer(token, prefilled="Hi! My reference is ABC234")
    greeting, question = await ana.expect("Hi Ana!", "Which model would you like to drive?")
    [conversation] = await tt.conversations()
    assert (conversation.lead_id, conversation.channel, conversation.channel_user_id) == (
        lead_id,
        "tiktok",
        ana.conversation,
    )
    assert len(await tt.leads()) == 1
    [receipt] = await tt.receipts()
    assert receipt.channel == "tiktok"
    assert receipt.provider_id.startswith("referral:")
    # Four models: more than a card holds, so numbered lines.
    assert question.message_type == "TEXT"
    assert question.text.endswith("1. SUV X\n2. Sedan S\n3. Hatchback H\n4. Not sure yet")
    assert greeting.token == question.token == tt.fake.access_token


async def test_a_repeated_referral_changes_nothing(tt: Harness) -> None:
    _, _, token = await tt.lead_token("car-test-drive", first_name="Ana")
    ana = tt.user()
    referral = {"source": "short_link", "short_link": {"ref": token, "prefilled_message": ""}}
    event = envelope("im_referral_msg", ana.content(referral=referral))
    tt.fake.arrived(ana.conversation)
    await ana.deliver(event)
    await ana.deliver(event)
    await ana.expect("Which model would you like to drive?")
    await tt.settled()
    assert len(tt.fake.sent(ana.conversation)) == 2
    assert len(await tt.receipts()) == 1


async def test_a_referral_with_a_campaign_tag_starts_a_lead_from_chat(
    aiohttp_client: AiohttpClient, aiohttp_server: AiohttpServer, tmp_path: Path
) -> None:
    route = {"script": "recruiting", "source": "tiktok", "campaign_id": "drivers-2026"}
    async with running(aiohttp_client, aiohttp_server, tmp_path, routes=[route]) as tt:
        jordan = tt.user(username="jordan_drives")
        await jordan.refer("drivers-2026")
        await jordan.expect("Thanks for applying", "Which role are you applying for?")
        lead = await tt.chat_lead(jordan.conversation)
        assert (lead.source, lead.external_id) == ("tiktok", f"{jordan.conversation}:drivers-2026")
        assert lead.attribution == {"campaign_id": "drivers-2026"}
        assert lead.fields == {"tiktok_username": "jordan_drives"}
        assert lead.script_id == "recruiting"


async def test_an_ad_referral_without_a_ref_starts_a_lead_from_chat(tt: Harness) -> None:
    ben = tt.user(username="ben.ok")
    await ben.refer(None)
    await ben.expect("Hi there!")
    [lead] = await tt.leads()
    assert (lead.source, lead.external_id, lead.attribution) == ("tiktok", ben.conversation, {})


async def test_a_reference_code_typed_first_binds_the_conversation(tt: Harness) -> None:
    lead_id, reference, _ = await tt.lead_token("car-test-drive", first_name="Marta")
    marta = tt.user()
    await marta.say(f"Hi! My reference is {reference}")
    await marta.expect("Hi Marta!", "Which model would you like to drive?")
    [conversation] = await tt.conversations()
    assert conversation.lead_id == lead_id
    assert len(await tt.leads()) == 1


# -- deliveries TikTok repeats or sends at once ---------------------------------------------------


async def test_the_same_message_twice_is_one_turn(tt: Harness) -> None:
    _, _, token = await tt.lead_token("car-test-drive", first_name="Ana")
    ana = tt.user()
    await ana.refer(token)
    await ana.expect("Which model would you like to drive?")
    answer = ana.message("v2.answer-1", type="text", text={"body": "suv"})
    tt.fake.wrote(ana.conversation)
    await ana.deliver(answer)
    await ana.expect("When are you planning to buy?")
    await ana.deliver(answer)
    await tt.settled()
    assert [m.text for m in await tt.messages(author="prospect")] == ["suv"]
    assert len(tt.fake.sent(ana.conversation)) == 3
    assert "v2.answer-1" in {r.provider_id for r in await tt.receipts()}


async def test_ten_copies_at_once_are_one_turn(tt: Harness) -> None:
    _, _, token = await tt.lead_token("car-test-drive", first_name="Ana")
    ana = tt.user()
    await ana.refer(token)
    await ana.expect("Which model would you like to drive?")
    answer = ana.message("v2.answer-2", type="text", text={"body": "sedan"})
    tt.fake.wrote(ana.conversation)
    await asyncio.gather(*(ana.deliver(answer) for _ in range(10)))
    await ana.expect("When are you planning to buy?")
    await tt.settled()
    assert [m.text for m in await tt.messages(author="prospect")] == ["sedan"]
    [conversation] = await tt.conversations()
    assert conversation.state["answers"]["model"] == "sedan_s"
    assert len(tt.fake.sent(ana.conversation)) == 3


async def test_ten_copies_of_a_first_message_at_once_open_one_conversation(tt: Harness) -> None:
    ben = tt.user()
    event = ben.message("v2.first", type="text", text={"body": "hello"})
    tt.fake.wrote(ben.conversation)
    await asyncio.gather(*(ben.deliver(event) for _ in range(10)))
    await ben.expect("Hi there!")
    await tt.settled()
    assert len(await tt.leads()) == 1
    assert len(await tt.conversations()) == 1
    assert [r.provider_id for r in await tt.receipts()] == ["v2.first"]


# -- buttons and media --------------------------------------------------------------------------


async def test_a_tapped_button_answers_the_cards_question(tt: Harness) -> None:
    _, _, token = await tt.lead_token("car-test-drive", first_name="Ana")
    ana = tt.user()
    await ana.refer(token)
    await ana.expect("Which model would you like to drive?")
    await ana.say("hatchback")
    card = (await ana.expect("When are you planning to buy?"))[-1]
    assert card.message_type == "TEMPLATE"
    assert card.buttons == [("now", "This month"), ("quarter", "In 1-3 months"), ("later", "Later")]
    await ana.tap("quarter")
    await ana.expect("Do you have a car to trade in?")
    [conversation] = await tt.conversations()
    assert conversation.state["answers"]["timeline"] == "quarter"
    # The transcript reads the tap as the option's label.
    assert [m.text for m in await tt.messages(author="prospect")] == ["hatchback", "In 1-3 months"]

    # A second tap on the answered card is stale: nothing happens, no transcript line.
    await ana.tap("now", card)
    await tt.settled()
    assert [m.text for m in await tt.messages(author="prospect")] == ["hatchback", "In 1-3 months"]
    [conversation] = await tt.conversations()
    assert conversation.state["answers"]["timeline"] == "quarter"


async def test_a_tap_on_a_card_leadbot_does_not_know_reads_as_typed(tt: Harness) -> None:
    _, _, token = await tt.lead_token("car-test-drive", first_name="Ana")
    ana = tt.user()
    await ana.refer(token)
    await ana.expect("Which model would you like to drive?")
    event = ana.message(
        type="text",
        text={"body": "Sedan S"},
        reply_source_payload={"reply_source_msg_id": "v2.unknown", "reply_source_unique_id": "q1"},
    )
    tt.fake.wrote(ana.conversation)
    await ana.deliver(event)
    await ana.expect("When are you planning to buy?")
    [conversation] = await tt.conversations()
    assert conversation.state["answers"]["model"] == "sedan_s"


CALL_ME = """
id: call-me
name: Call me back
languages: [en]
region: GB
lead_fields: [first_name]
greeting: Hi {{ lead.first_name or 'there' }}!
questions:
  - id: topic
    type: text
    prompt: What would you like to talk about?
  - id: phone
    type: phone
    prompt: What number can we call you on?
outcomes:
  - id: done
    message: Thanks, we'll call you on {{ answers.phone }}.
"""


@pytest.mark.parametrize("kind", ["image", "sticker", "share_post"])
async def test_media_gets_a_polite_request_to_type(
    aiohttp_client: AiohttpClient, aiohttp_server: AiohttpServer, tmp_path: Path, kind: str
) -> None:
    script = tmp_path / "call_me.yaml"
    script.write_text(CALL_ME)
    async with running(aiohttp_client, aiohttp_server, tmp_path, scripts=[script]) as tt:
        kim = tt.user()
        await kim.say("hello")
        await kim.expect("Hi there!", "What would you like to talk about?")
        await kim.send_media(kind)
        await kim.expect("Sorry, I can only read text here.", "What would you like to talk about?")
        await kim.say("a new kitchen")
        await kim.expect("What number can we call you on?")
        await kim.say("07911 123456")
        await kim.expect("Thanks, we'll call you on +447911123456")
        lead = await tt.chat_lead(kim.conversation)
        assert lead.answers == {"topic": "a new kitchen", "phone": "+447911123456"}


async def test_media_on_a_card_question_asks_it_again_with_its_card(tt_sqlite: Harness) -> None:
    _, _, token = await tt_sqlite.lead_token("car-test-drive", first_name="Ana")
    ana = tt_sqlite.user()
    await ana.refer(token)
    await ana.expect("Which model would you like to drive?")
    await ana.say("suv")
    card = (await ana.expect("When are you planning to buy?"))[-1]
    await ana.send_media("image")
    again = (await ana.expect("Sorry, I can only read text here.", "When are you planning"))[-1]
    assert again.buttons == card.buttons
    await ana.tap("quarter", again)
    await ana.expect("Do you have a car to trade in?")
    [conversation] = await tt_sqlite.conversations()
    assert conversation.state["answers"]["timeline"] == "quarter"
