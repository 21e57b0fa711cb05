"""TikTokSender and its client against the fake Business Messaging API: what goes out, and what
each of TikTok's answers means for the outbox row."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
from aiohttp import ClientSession, ClientTimeout
from pytest_aiohttp import AiohttpServer

from bot.errors import DeliveryError
from bot.records import OutboxItem
from tests.fake_tiktok import (
    ACCESS_TOKEN,
    APP_ID,
    APP_SECRET,
    BUSINESS_ID,
    REFRESH_TOKEN,
    FakeTikTok,
)
from webhooks.channels.tiktok_dm_client import (
    TOO_FAST_PAUSE,
    Answer,
    TikTokClient,
    delivery_error,
    read_answer,
)
from webhooks.channels.tiktok_dm_sender import Choice, Outgoing, TikTokSender, render
from webhooks.settings import TikTokSettings

CHAT = "Mi4w+Y29udi0001/Lj0=="
YES_NO = [{"value": "yes", "label": "Yes"}, {"value": "no", "label": "No"}]


def item(text: str = "Hello!", **payload: Any) -> OutboxItem:
    return OutboxItem(
        id=1,
        kind="send_text",
        idempotency_key="message-1",
        payload={"channel": "tiktok", "chat": CHAT, "text": text, "options": [], **payload},
        attempts=1,
        conversation_id=1,
        message_id=1,
    )


# -- rendering ---------------------------------------------------------------------------------


def test_plain_text_is_one_text_message() -> None:
    assert render(item("Hello!").payload) == [Outgoing(text="Hello!")]


def test_one_to_three_choices_make_a_button_card() -> None:
    [card] = render(item("Do you have a car to trade in?", options=YES_NO).payload)
    assert card == Outgoing(
        title="Do you have a car to trade in?", buttons=(Choice("yes", "Yes"), Choice("no", "No"))
    )
    assert card.body(CHAT) == {
        "recipient_type": "CONVERSATION",
        "recipient": CHAT,
        "message_type": "TEMPLATE",
        "template": {
            "type": "QA_BUTTON_CARD",
            "title": "Do you have a car to trade in?",
            "buttons": [
                {"type": "REPLY", "title": "Yes", "id": "yes"},
                {"type": "REPLY", "title": "No", "id": "no"},
            ],
        },
    }


def test_what_comes_before_the_question_goes_first_as_text() -> None:
    text = "Sorry, I didn't catch that. Please pick one of the options.\n\nDo you have a car?"
    first, card = render(item(text, options=YES_NO).payload)
    assert first == Outgoing(text="Sorry, I didn't catch that. Please pick one of the options.")
    assert card.title == "Do you have a car?"


@pytest.mark.parametrize(
    ("text", "options", "hint"),
    [
        # Four choices: more than a card holds.
        ("Which model?", [{"value": f"m{n}", "label": f"Model {n}"} for n in range(4)], None),
        # A question longer than a card's 40-character title.
        ("Shall we call you on +34 612 34 56 78 if anything changes?", YES_NO, "yes_no"),
        # A label longer than a button's 20 characters.
        ("Which role?", [{"value": "driver", "label": "Delivery driver (van)"}], "choice"),
        # A value longer than a button id's 40 characters.
        ("Which one?", [{"value": "v" * 41, "label": "This one"}], "choice"),
        # Several answers wanted: a tap sends only one.
        ("Pick up to two", YES_NO, "multiple_choice"),
        # Emoji count double, as TikTok (JavaScript) counts them.
        ("Which?", [{"value": "a", "label": "🚗" * 11}], "choice"),
    ],
)
def test_what_does_not_fit_a_card_goes_as_numbered_lines(
    text: str, options: list[dict[str, str]], hint: str | None
) -> None:
    [message] = render(item(text, options=options, hint=hint).payload)
    assert message.title is None
    assert message.text is not None
    lines = message.text.splitlines()
    assert lines[0] == text
    assert lines[2:] == [f"{n}. {o['label']}" for n, o in enumerate(options, start=1)]


def test_long_texts_are_split_within_tiktoks_6000_characters() -> None:
    paragraph = "A sentence that goes on for a while. " * 50
    text = "\n\n".join([paragraph.strip()] * 5)  # about 9,000 characters
    parts = render(item(text, options=YES_NO[:1] * 4).payload)
    assert len(parts) == 2
    assert all(p.text is not None and len(p.text) <= 6000 for p in parts)
    assert parts[1].text is not None
    assert parts[1].text.endswith("4. Yes")


def test_a_message_with_nothing_to_say_fails_for_good() -> None:
    with pytest.raises(DeliveryError, match="no text") as caught:
        render(item("  ").payload)
    assert caught.value.permanent


# -- answers and what they mean ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("answer", "kind", "reason"),
    [
        (read_answer(200, '{"code": 0, "message": "OK", "data": {}}'), None, ""),
        (
            read_answer(200, '{"code": 40064, "message": "You are sending messages too fast."}'),
            "retry_after",
            "TikTok error 40064: You are sending messages too fast.",
        ),
        (
            read_answer(200, '{"code": 40064, "message": "Blocked by messaging restrictions."}'),
            "held",
            "TikTok error 40064: Blocked by messaging restrictions. (outside TikTok's 48-hour",
        ),
        (read_answer(200, '{"code": 40100, "message": "Rate limit"}'), "retry_after", "40100"),
        (read_answer(429, "slow down", 7.0), "retry_after", "TikTok 429: slow down"),
        (read_answer(503, "<html>Service Unavailable</html>"), "retry", "TikTok 503"),
        (read_answer(200, '{"code": "51065", "message": "System error"}'), "retry", "51065"),
        (read_answer(200, "<html>proxy page</html>"), "retry", "without a result code"),
        (
            read_answer(200, '{"code": 40105, "message": "Access token is incorrect"}'),
            "permanent",
            "LEADBOT_TIKTOK__ACCESS_TOKEN",
        ),
        (
            read_answer(200, '{"code": 40002, "message": "Invalid\\nparameters:  recipient"}'),
            "permanent",
            "TikTok error 40002: Invalid parameters: recipient",
        ),
        (read_answer(404, "not found"), "permanent", "TikTok 404: not found"),
    ],
)
def test_each_answer_means_something_for_the_outbox(
    answer: Answer, kind: str | None, reason: str
) -> None:
    failure = delivery_error(answer)
    if kind is None:
        assert failure is None
        return
    assert failure is not None
    assert reason in failure.reason
    assert failure.held is (kind == "held")
    assert failure.permanent is (kind in ("held", "permanent"))
    if kind == "retry_after":
        assert failure.retry_after == (7.0 if answer.status == 429 else TOO_FAST_PAUSE)
    else:
        assert failure.retry_after is None


# -- talking to the fake API -------------------------------------------------------------------


@dataclass
class Api:
    fake: FakeTikTok
    client: TikTokClient
    sender: TikTokSender


async def api_for(aiohttp_server: AiohttpServer, session: ClientSession, **settings: Any) -> Api:
    fake = FakeTikTok()
    fake.wrote(CHAT)
    server = await aiohttp_server(fake.app())
    section: dict[str, Any] = {
        "app_secret": APP_SECRET,
        "api_url": str(server.make_url("")),
        "app_id": APP_ID,
        "business_id": BUSINESS_ID,
        "access_token": ACCESS_TOKEN,
        "refresh_token": REFRESH_TOKEN,
        **settings,
    }
    client = TikTokClient(session, TikTokSettings(**{k: v for k, v in section.items() if v}))
    return Api(fake, client, TikTokSender(client))


@pytest.fixture
async def session() -> AsyncIterator[ClientSession]:
    async with ClientSession(timeout=ClientTimeout(total=0.3)) as session:
        yield session


@pytest.fixture
async def api(aiohttp_server: AiohttpServer, session: ClientSession) -> Api:
    return await api_for(aiohttp_server, session)


async def test_a_text_goes_to_the_conversation_with_the_access_token(api: Api) -> None:
    message_id = await api.sender.send(item("Hi Ana!"))
    [call] = api.fake.calls
    assert message_id == call.message_id is not None
    assert call.token == ACCESS_TOKEN
    assert call.body == {
        "business_id": BUSINESS_ID,
        "recipient_type": "CONVERSATION",
        "recipient": CHAT,
        "message_type": "TEXT",
        "text": {"body": "Hi Ana!"},
    }


async def test_a_card_is_accepted_and_its_id_is_what_comes_back(api: Api) -> None:
    text = "Sorry, I didn't catch that.\nDo you have a car to trade in?"
    message_id = await api.sender.send(item(text, options=YES_NO))
    first, card = api.fake.sent(CHAT)
    assert (first.message_type, card.message_type) == ("TEXT", "TEMPLATE")
    assert card.buttons == [("yes", "Yes"), ("no", "No")]
    assert message_id == card.message_id  # the one a tap refers back to


async def test_an_expired_token_is_renewed_and_the_message_sent_once(
    api: Api, caplog: pytest.LogCaptureFixture
) -> None:
    api.fake.expire_token()
    with caplog.at_level(logging.DEBUG):
        message_id = await api.sender.send(item("Hi!"))
    refused, sent = api.fake.calls
    assert (refused.code, sent.code) == (40105, 0)
    assert sent.token == api.fake.access_token != ACCESS_TOKEN
    assert message_id == sent.message_id
    assert api.fake.refreshes == [
        {
            "client_id": APP_ID,
            "client_secret": APP_SECRET,
            "grant_type": "refresh_token",
            "refresh_token": REFRESH_TOKEN,
        }
    ]
    assert api.client.renewals == 1
    # The change is logged; no token ever is.
    assert "TikTok access token renewed and refresh token rotated" in caplog.text
    for secret in (ACCESS_TOKEN, REFRESH_TOKEN, api.fake.access_token, api.fake.refresh_token):
        assert secret not in caplog.text
    # The rotated refresh token is the one used next time.
    api.fake.expire_token()
    await api.sender.send(item("Again"))
    assert api.fake.refreshes[1]["refresh_token"] != REFRESH_TOKEN
    assert api.client.renewals == 2


async def test_sends_that_meet_an_expired_token_at_once_renew_it_once(api: Api) -> None:
    api.fake.expire_token()
    await asyncio.gather(*(api.sender.send(item(f"Message {n}")) for n in range(5)))
    assert len(api.fake.refreshes) == 1
    assert len(api.fake.sent(CHAT)) == 5


async def test_a_token_refused_again_after_renewal_fails_for_good(api: Api) -> None:
    api.fake.expire_token()
    api.fake.fail_next(40105)  # the renewed token is refused too
    with pytest.raises(DeliveryError, match="even with a renewed access token") as caught:
        await api.sender.send(item("Hi!"))
    assert caught.value.permanent
    assert len(api.fake.refreshes) == 1  # renewed once, not in a loop


async def test_without_a_refresh_token_an_expired_token_names_the_settings(
    aiohttp_server: AiohttpServer, session: ClientSession
) -> None:
    api = await api_for(aiohttp_server, session, refresh_token=None)
    api.fake.expire_token()
    with pytest.raises(DeliveryError, match=r"set a new tiktok\.access_token") as caught:
        await api.sender.send(item("Hi!"))
    assert caught.value.permanent
    assert "LEADBOT_TIKTOK__REFRESH_TOKEN" in caught.value.reason
    assert api.fake.refreshes == []


async def test_a_refused_renewal_fails_for_good_and_says_to_authorise_again(api: Api) -> None:
    api.fake.expire_token()
    api.fake.refresh_token = "rft.revoked-by-the-account-holder"
    with pytest.raises(DeliveryError, match="authorise leadbot again") as caught:
        await api.sender.send(item("Hi!"))
    assert caught.value.permanent
    assert "refresh token is invalid" in caught.value.reason
    assert REFRESH_TOKEN not in caught.value.reason


async def test_a_renewal_that_meets_a_server_error_is_retried_later(api: Api) -> None:
    api.fake.expire_token()
    api.fake.fail_next_refresh(status=502)
    with pytest.raises(DeliveryError, match="could not renew") as caught:
        await api.sender.send(item("Hi!"))
    assert not caught.value.permanent
    # The next attempt renews and sends.
    assert await api.sender.send(item("Hi!")) is not None


@pytest.mark.parametrize(
    ("fail", "kind"),
    [
        (lambda fake: fake.fail_next(40064), "retry_after"),
        (lambda fake: fake.restrict_next(), "held"),
        (lambda fake: fake.fail_next(40100), "retry_after"),
        (lambda fake: fake.fail_next_http(500), "retry"),
        (lambda fake: fake.fail_next(51065), "retry"),
        (lambda fake: fake.slow_next(1.0), "retry"),
        (lambda fake: fake.fail_next(40002), "permanent"),
    ],
)
async def test_each_failure_then_the_same_row_again(api: Api, fail: Any, kind: str) -> None:
    fail(api.fake)
    with pytest.raises(DeliveryError) as caught:
        await api.sender.send(item("Hi!"))
    failure = caught.value
    assert failure.held is (kind == "held")
    assert failure.permanent is (kind in ("held", "permanent"))
    assert (failure.retry_after is not None) is (kind == "retry_after")
    if kind == "retry" and api.fake.calls[-1].code is None:
        assert "TikTok" in failure.reason
    # Whatever TikTok said, the next attempt of the same row goes through.
    assert await api.sender.send(item("Hi!")) is not None
    assert api.fake.texts(CHAT) == ["Hi!"]


async def test_a_slow_answer_is_a_timeout_to_retry(api: Api) -> None:
    api.fake.slow_next(1.0)
    with pytest.raises(DeliveryError, match="did not answer in time") as caught:
        await api.sender.send(item("Hi!"))
    assert not caught.value.permanent


async def test_an_unreachable_api_is_retried(session: ClientSession) -> None:
    settings = TikTokSettings(
        api_url="http://127.0.0.1:9", business_id=BUSINESS_ID, access_token=ACCESS_TOKEN
    )
    sender = TikTokSender(TikTokClient(session, settings))
    with pytest.raises(DeliveryError, match="TikTok is unavailable") as caught:
        await sender.send(item("Hi!"))
    assert not caught.value.permanent


@pytest.mark.parametrize("chat", ["", "x" * 129, "line\nbreak"])
async def test_a_chat_that_is_not_a_conversation_id_fails_for_good(api: Api, chat: str) -> None:
    with pytest.raises(DeliveryError, match="not a TikTok conversation id") as caught:
        await api.sender.send(item("Hi!", chat=chat))
    assert caught.value.permanent
    assert api.fake.calls == []
