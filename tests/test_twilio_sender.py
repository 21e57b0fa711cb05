"""The Twilio sender on its own, through the real twilio client and the fake Messages API:
numbered choices, parts, templates and quick replies, and each failure in leadbot's terms."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import ClientConnectionError
from pytest_aiohttp import AiohttpServer
from twilio.base.exceptions import (  # type: ignore[import-untyped]
    TwilioRestException,
    TwilioServiceException,
)

from bot.errors import DeliveryError
from bot.records import OutboxItem
from tests.fake_twilio import (
    ACCOUNT_SID,
    AUTH_TOKEN,
    PUBLIC_URL,
    SMS_NUMBER,
    WHATSAPP_NUMBER,
    FakeTwilio,
)
from webhooks.channels.split import numbered
from webhooks.channels.twilio_client import delivery_error, new_client
from webhooks.channels.twilio_sender import (
    Outgoing,
    TwilioSender,
    render,
    status_callback_url,
)
from webhooks.settings import Settings, TwilioSettings

CHAT = "+447911123456"
OPTIONS = [
    {"value": "suv_x", "label": "SUV X"},
    {"value": "sedan_s", "label": "Sedan S"},
    {"value": "not_sure", "label": "Not sure yet"},
]
CALLBACK = f"{PUBLIC_URL}/webhooks/twilio/status"


def item(channel: str, text: str, **payload: Any) -> OutboxItem:
    return OutboxItem(
        id=1,
        kind="send_text",
        idempotency_key="message-1",
        payload={"channel": channel, "chat": CHAT, "text": text, **payload},
        attempts=1,
        conversation_id=1,
        message_id=1,
    )


@pytest.fixture
async def fake_and_senders(
    aiohttp_server: AiohttpServer,
) -> AsyncIterator[tuple[FakeTwilio, dict[str, TwilioSender]]]:
    fake = FakeTwilio()
    server = await aiohttp_server(fake.app())
    settings = TwilioSettings(
        account_sid=ACCOUNT_SID,
        auth_token=AUTH_TOKEN,
        api_url=str(server.make_url("")),
        timeout=0.5,
    )
    client = new_client(settings)
    try:
        yield (
            fake,
            {
                "sms": TwilioSender(
                    client, "sms", SMS_NUMBER, timeout=0.5, status_callback=CALLBACK
                ),
                "whatsapp": TwilioSender(
                    client, "whatsapp", WHATSAPP_NUMBER, timeout=0.5, status_callback=CALLBACK
                ),
            },
        )
    finally:
        await client.http_client.close()


Fixture = tuple[FakeTwilio, dict[str, TwilioSender]]


# -- what is sent ------------------------------------------------------------------------------


def test_choices_are_numbered_lines_under_the_text() -> None:
    assert numbered("Which model?", ["SUV X", "Sedan S"]) == "Which model?\n\n1. SUV X\n2. Sedan S"
    assert numbered("Just text.", []) == "Just text."
    assert numbered("", ["A"]) == "1. A"


def test_long_texts_are_split_within_each_channels_limit() -> None:
    text = ("A sentence of some length. " * 100).strip()  # about 2,700 characters
    sms = render("sms", {"text": text, "options": OPTIONS})
    assert len(sms) == 2
    assert all(len(part.body or "") <= 1600 for part in sms)
    assert (sms[-1].body or "").endswith("1. SUV X\n2. Sedan S\n3. Not sure yet")  # asks last
    assert render("whatsapp", {"text": text}) == [Outgoing(body=text)]  # within 4,096


def test_whatsapp_templates_replace_the_body() -> None:
    template = "HX" + "a" * 32
    payload: dict[str, Any] = {
        "text": "Hi",
        "content_sid": template,
        "content_variables": {"1": "Ana"},
    }
    assert render("whatsapp", payload) == [
        Outgoing(content_sid=template, content_variables={"1": "Ana"})
    ]
    # Options and a buttons template give way to the window or first-contact template.
    payload |= {"options": OPTIONS, "buttons_template": "HX" + "b" * 32}
    assert render("whatsapp", payload)[0].content_sid == template
    # SMS has no templates: the text goes, with numbered choices.
    assert render("sms", payload) == [
        Outgoing(body=numbered("Hi", ["SUV X", "Sedan S", "Not sure yet"]))
    ]


def test_a_question_with_a_buttons_template_puts_its_last_line_above_the_buttons() -> None:
    buttons = "HX" + "b" * 32
    payload = {"text": "Which model?", "options": OPTIONS, "buttons_template": buttons}
    assert render("whatsapp", payload) == [
        Outgoing(content_sid=buttons, content_variables={"1": "Which model?"})
    ]
    # Twilio refuses a variable with a newline, a tab or five spaces in a row (21656).
    payload["text"] = "Great choice!\n\nWhich model would    you\tlike?"
    assert render("whatsapp", payload) == [
        Outgoing(body="Great choice!"),
        Outgoing(content_sid=buttons, content_variables={"1": "Which model would you like?"}),
    ]
    # A quick reply's text holds 1,024 characters: a longer question comes in parts.
    long_line = "word " * 300
    parts = render("whatsapp", {**payload, "text": long_line})
    assert parts[-1].content_sid == buttons
    assert all(len(p.body or "") <= 1024 for p in parts)
    assert all(len(v) <= 1024 for p in parts for v in (p.content_variables or {}).values())
    # Without options (a text question), the template is not used.
    assert render("whatsapp", {**payload, "options": []})[0].content_sid is None


@pytest.mark.parametrize(
    "payload",
    [
        {"text": "  "},
        {"text": "x", "content_sid": "HX123"},
        {"text": "x", "options": OPTIONS, "buttons_template": "not-a-sid"},
        {"text": "x", "content_sid": "HX" + "a" * 32, "content_variables": ["Ana"]},
    ],
)
def test_rows_that_cannot_be_sent_fail_for_good(payload: dict[str, Any]) -> None:
    with pytest.raises(DeliveryError) as raised:
        render("whatsapp", payload)
    assert raised.value.permanent


def test_the_status_callback_is_the_public_url_unless_it_is_this_machine() -> None:
    def url(public: str) -> str | None:
        return status_callback_url(Settings(public_url=public))

    assert url("https://leads.example.com/") == "https://leads.example.com/webhooks/twilio/status"
    assert url("https://x.example/bot") == "https://x.example/bot/webhooks/twilio/status"
    assert url("http://127.0.0.1:8080") is None
    assert url("http://localhost:8080") is None


# -- through the client, on the fake -------------------------------------------------------------


async def test_an_sms_with_choices(fake_and_senders: Fixture) -> None:
    fake, senders = fake_and_senders
    sid = await senders["sms"].send(item("sms", "Which model?", options=OPTIONS))
    [call] = fake.calls
    assert sid == call.sid
    assert call.params == {
        "To": CHAT,
        "From": SMS_NUMBER,
        "Body": "Which model?\n\n1. SUV X\n2. Sedan S\n3. Not sure yet",
        "StatusCallback": CALLBACK,
    }


async def test_a_long_sms_goes_in_parts_and_the_last_sid_is_returned(
    fake_and_senders: Fixture,
) -> None:
    fake, senders = fake_and_senders
    text = "\n\n".join(["First paragraph. " * 60, "Second paragraph. " * 60])
    sid = await senders["sms"].send(item("sms", text))
    assert len(fake.calls) == 2
    assert sid == fake.calls[-1].sid
    assert " ".join(call.text for call in fake.calls).split() == text.split()


async def test_whatsapp_free_text_and_a_template(fake_and_senders: Fixture) -> None:
    fake, senders = fake_and_senders
    await senders["whatsapp"].send(item("whatsapp", "Which model?", options=OPTIONS))
    template = fake.template("Hi {{1}}, thanks for your interest! Shall we chat here?")
    await senders["whatsapp"].send(
        item("whatsapp", "", content_sid=template, content_variables={"1": "Ana"})
    )
    free, templated = fake.calls
    assert (free.to, free.params["From"]) == (f"whatsapp:{CHAT}", f"whatsapp:{WHATSAPP_NUMBER}")
    assert free.text.endswith("3. Not sure yet")
    assert "Body" not in templated.params
    assert templated.params["ContentSid"] == template
    assert json.loads(templated.params["ContentVariables"]) == {"1": "Ana"}
    assert templated.text == "Hi Ana, thanks for your interest! Shall we chat here?"


async def test_whatsapp_quick_reply_buttons(fake_and_senders: Fixture) -> None:
    fake, senders = fake_and_senders
    buttons = fake.template("{{1}}", ("suv_x", "SUV X"), ("sedan_s", "Sedan S"))
    text = "Good to hear.\nWhich model would you like to drive?"
    sid = await senders["whatsapp"].send(
        item("whatsapp", text, options=OPTIONS, buttons_template=buttons)
    )
    intro, question = fake.sent()
    assert intro.text == "Good to hear."
    assert (question.text, question.buttons) == (
        "Which model would you like to drive?",
        (("suv_x", "SUV X"), ("sedan_s", "Sedan S")),
    )
    assert sid == question.sid  # the message a tap replies to


@pytest.mark.parametrize(
    ("code", "flags", "says"),
    [
        (21610, {"suppress": True, "unreachable": True, "permanent": True}, "21610"),
        (63014, {"suppress": True, "unreachable": True, "permanent": True}, "63014"),
        (63016, {"held": True, "permanent": True}, "outside the allowed window"),
        (21211, {"permanent": True}, "21211: The 'To' number is not a valid phone number."),
        (20003, {"permanent": True}, "LEADBOT_TWILIO__AUTH_TOKEN"),
        (20429, {}, "20429: Too Many Requests"),
        (20500, {}, "20500: Internal Server Error"),
    ],
)
async def test_twilios_refusals_in_leadbots_terms(
    fake_and_senders: Fixture, code: int, flags: dict[str, bool], says: str
) -> None:
    fake, senders = fake_and_senders
    fake.fail_next(code)
    with pytest.raises(DeliveryError) as raised:
        await senders["whatsapp"].send(item("whatsapp", "Hello"))
    error = raised.value
    assert says in error.reason
    assert "Unable to create record" not in error.reason
    expected = {"suppress": False, "unreachable": False, "held": False, "permanent": False}
    assert {name: getattr(error, name) for name in expected} == expected | flags
    assert error.retry_after is None


async def test_a_slow_answer_is_a_timeout_to_retry(fake_and_senders: Fixture) -> None:
    fake, senders = fake_and_senders
    fake.slow_next(2.0)  # the sender gives up after 0.5 s
    with pytest.raises(DeliveryError) as raised:
        await senders["sms"].send(item("sms", "Hello"))
    assert raised.value.reason == "Twilio did not answer in time"
    assert not raised.value.permanent


async def test_an_unreachable_api_is_retried(aiohttp_server: AiohttpServer) -> None:
    fake = FakeTwilio()
    server = await aiohttp_server(fake.app())
    url = str(server.make_url(""))
    await server.close()  # nobody listens there now
    client = new_client(
        TwilioSettings(account_sid=ACCOUNT_SID, auth_token=AUTH_TOKEN, api_url=url, timeout=1)
    )
    try:
        sender = TwilioSender(client, "sms", SMS_NUMBER, timeout=1)
        with pytest.raises(DeliveryError) as raised:
            await sender.send(item("sms", "Hello"))
    finally:
        await client.http_client.close()
    assert raised.value.reason.startswith("Twilio is unavailable: ")
    assert not raised.value.permanent


async def test_wrong_credentials_fail_for_good_and_say_what_to_check(
    aiohttp_server: AiohttpServer,
) -> None:
    fake = FakeTwilio(auth_token="another-token")
    server = await aiohttp_server(fake.app())
    client = new_client(
        TwilioSettings(
            account_sid=ACCOUNT_SID, auth_token=AUTH_TOKEN, api_url=str(server.make_url(""))
        )
    )
    try:
        with pytest.raises(DeliveryError) as raised:
            await TwilioSender(client, "sms", SMS_NUMBER, timeout=1).send(item("sms", "Hello"))
    finally:
        await client.http_client.close()
    assert raised.value.permanent
    assert "LEADBOT_TWILIO__ACCOUNT_SID" in raised.value.reason
    assert AUTH_TOKEN not in raised.value.reason


async def test_a_chat_that_is_not_a_number_fails_for_good(fake_and_senders: Fixture) -> None:
    fake, senders = fake_and_senders
    bad = OutboxItem(1, "send_text", "k", {"channel": "sms", "chat": "42", "text": "x"}, 1, 1, 1)
    with pytest.raises(DeliveryError) as raised:
        await senders["sms"].send(bad)
    assert raised.value.permanent
    assert fake.calls == []


def test_every_kind_of_vendor_error_is_converted() -> None:
    service = TwilioServiceException(
        type_uri="https://www.twilio.com/docs/errors/20429",
        title="Too Many Requests",
        status=429,
        code=20429,
        detail="Slow down",
    )
    assert delivery_error(service).reason == "Twilio error 20429: Slow down"
    unknown = TwilioRestException(502, "/x", "Unable to create record: Bad Gateway", None)
    assert delivery_error(unknown).reason == "Twilio 502: Bad Gateway"
    assert not delivery_error(unknown).permanent
    assert delivery_error(ClientConnectionError()).reason == (
        "Twilio is unavailable: ClientConnectionError"
    )
    assert delivery_error(TimeoutError()).reason == "Twilio did not answer in time"
    with pytest.raises(TypeError):
        delivery_error(ValueError("not Twilio's"))
