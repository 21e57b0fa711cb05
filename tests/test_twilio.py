"""Twilio in: POST /webhooks/twilio for SMS and WhatsApp, verified, parsed and deduped, on the
fake API, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from pytest_aiohttp import AiohttpClient, AiohttpServer
from yarl import URL

from bot.records import Submission
from tests.fake_twilio import (
    ACCOUNT_SID,
    AUTH_TOKEN,
    PUBLIC_URL,
    SMS_NUMBER,
    Harness,
    Texter,
    message_sid,
    post_signed,
    post_signed_json,
    running,
    signature,
)
from webhooks.app import create_app
from webhooks.keys import INTAKE
from webhooks.settings import Settings

ANA = "+447911123456"
TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response />'


@pytest.fixture(params=["sqlite", "postgresql"])
async def tw(
    request: pytest.FixtureRequest,
    aiohttp_client: AiohttpClient,
    aiohttp_server: AiohttpServer,
    tmp_path: Path,
) -> AsyncIterator[Harness]:
    async with running(aiohttp_client, aiohttp_server, tmp_path, request.param) as harness:
        yield harness


@pytest.fixture
async def tw_sqlite(
    aiohttp_client: AiohttpClient, aiohttp_server: AiohttpServer, tmp_path: Path
) -> AsyncIterator[Harness]:
    """For what storage does not change: authentication, parsing."""
    async with running(aiohttp_client, aiohttp_server, tmp_path) as harness:
        yield harness


async def intake_lead(tw: Harness, **fields: str) -> tuple[int, str]:
    """A car-test-drive lead delivered by a relay: (id, reference code)."""
    submission = Submission(source="api:test", external_id="ext-1", fields=fields, raw={})
    [accepted] = await tw.client.app[INTAKE].submit([submission], "car-test-drive")
    return accepted.lead_id, accepted.reference


async def nothing_stored(tw: Harness) -> None:
    await asyncio.sleep(0.05)
    assert await tw.receipts() == []
    assert await tw.leads() == []
    assert await tw.conversations() == []
    assert tw.fake.calls == []


# -- binding a number to its lead ---------------------------------------------------------------


async def test_a_reference_code_in_the_first_sms_binds_the_number_to_that_lead(
    tw: Harness,
) -> None:
    lead_id, reference = await intake_lead(tw, first_name="Ana")
    ana = tw.texter(ANA)
    sid = await ana.say(f"Hi! My reference is {reference}")
    await ana.expect("Hi Ana!", "Which model would you like to drive?")
    [conversation] = await tw.conversations()
    assert (conversation.lead_id, conversation.channel, conversation.channel_user_id) == (
        lead_id,
        "sms",
        ANA,
    )
    assert [(r.channel, r.provider_id) for r in await tw.receipts()] == [("sms", sid)]
    assert len(await tw.leads()) == 1
    # The reply went from the SMS number, with the status callback.
    question = ana.last()
    assert question.params["From"] == SMS_NUMBER
    assert question.params["StatusCallback"] == f"{PUBLIC_URL}/webhooks/twilio/status"
    assert question.text.endswith("1. SUV X\n2. Sedan S\n3. Hatchback H\n4. Not sure yet")


async def test_a_number_that_matches_a_recent_leads_phone_joins_that_lead(tw: Harness) -> None:
    lead_id, _ = await intake_lead(tw, first_name="Ana", phone=ANA)
    ana = tw.texter(ANA, "whatsapp", profile_name="Someone Else")
    await ana.say("Hello, I filled in your form")
    await ana.expect("Hi Ana!", "Which model would you like to drive?")
    [conversation] = await tw.conversations()
    assert (conversation.lead_id, conversation.channel) == (lead_id, "whatsapp")
    assert len(await tw.leads()) == 1


async def test_an_unknown_number_starts_a_lead_from_chat(tw: Harness) -> None:
    ben = tw.texter("+12025550143", "whatsapp", profile_name="Ben Okafor")
    await ben.say("hello")
    await ben.expect("Hi Ben!")
    [lead] = await tw.leads()
    assert (lead.source, lead.external_id) == ("whatsapp", "+12025550143")
    assert lead.fields["first_name"] == "Ben"
    assert lead.fields["name"] == "Ben Okafor"
    assert lead.fields["phone"] == "+12025550143"


# -- deliveries Twilio repeats or sends at once -------------------------------------------------


async def test_a_repeated_message_sid_is_one_turn_and_one_reply(tw: Harness) -> None:
    _, reference = await intake_lead(tw, first_name="Ana")
    ana = tw.texter(ANA)
    first = ana.params(Body=f"My reference is {reference}")
    await ana.deliver(first)
    await ana.deliver(first)
    await ana.expect("Which model would you like to drive?")
    answer = ana.params(Body="suv")
    await ana.deliver(answer)
    await ana.expect("When are you planning to buy?")
    await ana.deliver(answer)
    await ana.deliver(first)
    await tw.settled()
    assert [text[:30] for text in tw.fake.texts(ANA)] == [
        "Hi Ana! Thanks for your intere",
        "Which model would you like to ",
        "When are you planning to buy?\n",
    ]
    prospect_lines = [m.text for m in await tw.messages(author="prospect")]
    assert prospect_lines == [f"My reference is {reference}", "suv"]
    assert sorted(r.provider_id for r in await tw.receipts()) == sorted(
        [first["MessageSid"], answer["MessageSid"]]
    )


async def test_ten_copies_at_once_are_one_turn(tw: Harness) -> None:
    _, reference = await intake_lead(tw, first_name="Ana")
    ana = tw.texter(ANA)
    await ana.say(f"My reference is {reference}")
    await ana.expect("Which model would you like to drive?")
    answer = ana.params(Body="2")
    await asyncio.gather(*(ana.deliver(answer) for _ in range(10)))
    await ana.expect("When are you planning to buy?")
    await tw.settled()
    assert [m.text for m in await tw.messages(author="prospect")][1:] == ["2"]
    assert (await tw.chat_lead(ANA)).answers == {"model": "sedan_s"}
    assert len(tw.fake.sent(ANA)) == 3  # greeting, first question, second question


async def test_ten_copies_of_a_first_message_open_one_conversation(tw: Harness) -> None:
    ben = tw.texter("+12025550143")
    first = ben.params(Body="hello")
    await asyncio.gather(*(ben.deliver(first) for _ in range(10)))
    await tw.settled()
    assert len(await tw.leads()) == 1
    assert len(await tw.conversations()) == 1
    assert len(await tw.receipts()) == 1


# -- media ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("channel", ["sms", "whatsapp"])
async def test_media_without_text_gets_a_polite_request_to_type(
    tw_sqlite: Harness, channel: str
) -> None:
    tw = tw_sqlite
    _, reference = await intake_lead(tw, first_name="Ana")
    ana = tw.texter(ANA, channel)
    await ana.say(f"My reference is {reference}")
    await ana.expect("Which model would you like to drive?")
    await ana.send_media(2)
    # A photo is not a try at the question: "text only, please", then the question again.
    await ana.expect("Sorry, I can only read text here.")
    [again] = await ana.expect("Which model would you like to drive?")
    assert again.text.endswith("1. SUV X\n2. Sedan S\n3. Hatchback H\n4. Not sure yet")
    await ana.send_media(1, caption="the suv please")  # a caption is read as text
    await ana.expect("When are you planning to buy?")
    assert (await tw.chat_lead(ANA, channel)).answers == {"model": "suv_x"}
    assert [m.text for m in await tw.messages(author="prospect")][-2:] == ["", "the suv please"]


# -- WhatsApp quick replies without a template, and stale ones -----------------------------------


async def test_a_button_reply_to_a_message_leadbot_does_not_know_reads_as_its_title(
    tw_sqlite: Harness,
) -> None:
    tw = tw_sqlite
    _, reference = await intake_lead(tw, first_name="Ana")
    ana = tw.texter(ANA, "whatsapp")
    await ana.say(f"My reference is {reference}")
    await ana.expect("Which model would you like to drive?")
    # A button of a first-contact template (or a message long gone): its title is the answer.
    await ana.deliver(
        ana.params(
            Body="Sedan S",
            ButtonText="Sedan S",
            ButtonPayload="whatever_id",
            OriginalRepliedMessageSid=message_sid(),
        )
    )
    await ana.expect("When are you planning to buy?")
    assert (await tw.chat_lead(ANA, "whatsapp")).answers == {"model": "sedan_s"}


# -- authentication and bad input ----------------------------------------------------------------


@pytest.mark.parametrize(
    "how",
    [
        "no signature",
        "empty signature",
        "another token",
        "the inner URL",
        "another path",
        "a changed body",
        "an added parameter",
        "lower case",
    ],
)
async def test_a_missing_or_wrong_signature_is_refused_and_nothing_is_stored(
    tw: Harness, how: str
) -> None:
    ana = tw.texter(ANA)
    params = ana.params(Body="hello")
    url = f"{PUBLIC_URL}/webhooks/twilio"
    good = signature(url, params)
    headers = {
        "no signature": None,
        "empty signature": "",
        "another token": signature(url, params, "another-token"),
        # What aiohttp sees behind a proxy: http and the inner address. Twilio signed the public.
        "the inner URL": signature(str(tw.client.make_url("/webhooks/twilio")), params),
        "another path": signature(f"{PUBLIC_URL}/webhooks/twilio/status", params),
        "a changed body": good,
        "an added parameter": good,
        "lower case": good.lower(),
    }
    header = headers[how]
    body = dict(params)
    if how == "a changed body":
        body["Body"] = "STOP"
    if how == "an added parameter":
        body["ButtonPayload"] = "yes"
    response = await tw.client.post(
        "/webhooks/twilio",
        data=body,
        headers={} if header is None else {"X-Twilio-Signature": header},
    )
    assert response.status == 403
    error = (await response.json())["error"]
    assert error["code"] == "forbidden"
    assert "X-Twilio-Signature" in error["message"]
    await nothing_stored(tw)


async def test_a_bad_status_callback_signature_is_refused(tw_sqlite: Harness) -> None:
    params = {"MessageSid": message_sid(), "MessageStatus": "delivered"}
    response = await post_signed(
        tw_sqlite.client, "/webhooks/twilio/status", params, token="another-token"
    )
    assert response.status == 403
    assert (await response.json())["error"]["code"] == "forbidden"


async def test_a_url_signed_with_the_default_port_is_accepted(tw_sqlite: Harness) -> None:
    ana = tw_sqlite.texter(ANA)
    params = ana.params(Body="hello")
    url = PUBLIC_URL.replace(".com", ".com:443") + "/webhooks/twilio"
    response = await post_signed(tw_sqlite.client, "/webhooks/twilio", params, signed_url=url)
    assert response.status == 200
    assert await response.text() == TWIML


async def test_the_query_string_is_part_of_what_is_signed(tw_sqlite: Harness) -> None:
    ana = tw_sqlite.texter(ANA)
    params = ana.params(Body="hello")
    path = "/webhooks/twilio?source=ads&next=%2Fthanks"  # signed as Twilio requested it
    url = URL(str(tw_sqlite.client.make_url("/")).rstrip("/") + path, encoded=True)
    header = signature(PUBLIC_URL + path, params)
    session = tw_sqlite.client.session
    response = await session.post(url, data=params, headers={"X-Twilio-Signature": header})
    assert response.status == 200
    forged = signature(f"{PUBLIC_URL}/webhooks/twilio", params)
    response = await session.post(url, data=params, headers={"X-Twilio-Signature": forged})
    assert response.status == 403
    decoded = signature(f"{PUBLIC_URL}/webhooks/twilio?source=ads&next=/thanks", params)
    response = await session.post(url, data=params, headers={"X-Twilio-Signature": decoded})
    assert response.status == 403


async def test_a_json_webhook_signed_through_its_body_hash(tw: Harness) -> None:
    ana = tw.texter(ANA)
    params = ana.params(Body="hello")
    body = json.dumps(params).encode()
    response = await post_signed_json(tw.client, "/webhooks/twilio", body)
    assert response.status == 200, await response.text()
    await ana.expect("Hi there!")
    [receipt] = await tw.receipts()
    assert receipt.provider_id == params["MessageSid"]
    # The same signature on another body fails: the hash in the URL no longer matches.
    signed = await post_signed_json(tw.client, "/webhooks/twilio", body)
    tampered = body.replace(b"hello", b"STOP!")
    url_path = str(signed.request_info.url.path_qs)
    response = await tw.client.post(
        url_path,
        data=tampered,
        headers={
            "X-Twilio-Signature": signed.request_info.headers["X-Twilio-Signature"],
            "Content-Type": "application/json",
        },
    )
    assert response.status == 403
    assert [m.text for m in await tw.messages(author="prospect")] == ["hello"]


@pytest.mark.parametrize("route", ["/webhooks/twilio", "/webhooks/twilio/status"])
async def test_without_twilio_settings_the_routes_say_what_to_set(
    aiohttp_client: AiohttpClient, tmp_path: Path, route: str
) -> None:
    settings = Settings(
        database_url=f"sqlite+aiosqlite:///{tmp_path / 't.db'}",
        secret_key="test-secret-key-0123456789",
        public_url=PUBLIC_URL,
        twilio={"account_sid": ACCOUNT_SID},  # no auth token
    )
    client = await aiohttp_client(create_app(settings))
    params = {"MessageSid": message_sid(), "From": ANA, "Body": "hi"}
    response = await post_signed(client, route, params)
    assert response.status == 403
    error = (await response.json())["error"]
    assert error["code"] == "not_configured"
    assert "LEADBOT_TWILIO__AUTH_TOKEN" in error["message"]


@pytest.mark.parametrize(
    ("fields", "says"),
    [
        ({"MessageSid": "not-a-sid"}, "MessageSid"),
        ({"MessageSid": ""}, "MessageSid"),
        ({"NumMedia": "lots"}, "NumMedia"),
        ({"To": f"whatsapp:{SMS_NUMBER}"}, "different channels"),
    ],
)
async def test_malformed_messages_get_a_json_error(
    tw_sqlite: Harness, fields: dict[str, str], says: str
) -> None:
    tw = tw_sqlite
    params = {**tw.texter(ANA).params(Body="hi"), **fields}
    response = await post_signed(tw.client, "/webhooks/twilio", params)
    assert response.status == 400
    error = (await response.json())["error"]
    assert (error["code"], says in error["message"]) == ("bad_webhook", True)
    await nothing_stored(tw)


async def test_a_missing_sender_and_json_that_is_not_an_object_get_a_json_error(
    tw_sqlite: Harness,
) -> None:
    params = {"MessageSid": message_sid(), "Body": "hi"}
    response = await post_signed(tw_sqlite.client, "/webhooks/twilio", params)
    assert response.status == 400
    assert "From is missing" in (await response.json())["error"]["message"]
    for body in (b"[1, 2]", b'{"MessageSid": 7}', b"{not json"):
        response = await post_signed_json(tw_sqlite.client, "/webhooks/twilio", body)
        assert response.status == 400, body
    await nothing_stored(tw_sqlite)


async def test_the_body_size_and_type_are_checked(tw_sqlite: Harness) -> None:
    tw = tw_sqlite
    params = tw.texter(ANA).params(Body="x" * 200_000)
    response = await post_signed(tw.client, "/webhooks/twilio", params)
    assert response.status == 413
    assert (await response.json())["error"]["code"] == "too_large"
    response = await tw.client.post(
        "/webhooks/twilio",
        data=b"<xml/>",
        headers={"X-Twilio-Signature": "x", "Content-Type": "text/xml"},
    )
    assert response.status == 415
    assert (await response.json())["error"]["code"] == "unsupported_media_type"
    await nothing_stored(tw)


@pytest.mark.parametrize("sender", ["12345", "Twilio", "messenger:1234567890"])
async def test_messages_from_senders_that_are_not_numbers_are_acknowledged_and_ignored(
    tw_sqlite: Harness, sender: str
) -> None:
    params = {**tw_sqlite.texter(ANA).params(Body="Your code is 1234"), "From": sender}
    response = await post_signed(tw_sqlite.client, "/webhooks/twilio", params)
    assert (response.status, await response.text()) == (200, TWIML)
    await nothing_stored(tw_sqlite)


async def test_no_field_of_an_odd_value_gets_a_500(tw_sqlite: Harness) -> None:
    """Each field Twilio sends, replaced by odd values (form and JSON): 200 or 400, never 500."""
    texter = Texter(tw_sqlite.client, tw_sqlite.fake, ANA, "whatsapp", profile_name="Ana")
    sample = texter.params(Body="hi", ButtonPayload="x", OriginalRepliedMessageSid="SM1")
    odd: list[Any] = [None, "", " ", "whatsapp:", "+", "0", "-1", "1e9", "\x00", "é" * 5000]
    odd_json: list[Any] = [7, -1, 10**30, True, [], {}, 1.5]
    statuses: set[int] = set()
    for name in sample:
        for value in odd:
            params = {**sample, "MessageSid": message_sid()}
            if value is None:
                del params[name]
            else:
                params[name] = value
            response = await post_signed(tw_sqlite.client, "/webhooks/twilio", params)
            statuses.add(response.status)
            assert response.status in (200, 400), (name, value, await response.text())
        for value in odd_json:
            params = {**sample, "MessageSid": message_sid(), name: value}
            body = json.dumps(params).encode()
            response = await post_signed_json(tw_sqlite.client, "/webhooks/twilio", body)
            statuses.add(response.status)
            assert response.status in (200, 400), (name, value, await response.text())
    assert statuses == {200, 400}


async def test_the_account_sid_and_token_never_reach_an_answer(tw_sqlite: Harness) -> None:
    response = await post_signed(tw_sqlite.client, "/webhooks/twilio", {"From": ANA}, token="wrong")
    text = await response.text()
    assert AUTH_TOKEN not in text
    assert ACCOUNT_SID not in text
