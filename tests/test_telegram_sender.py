"""The Telegram sender on its own: keyboards, long texts in parts, PTB's errors in our terms."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pytest_aiohttp import AiohttpServer
from telegram import Bot
from telegram.error import (
    BadRequest,
    ChatMigrated,
    Conflict,
    Forbidden,
    InvalidToken,
    NetworkError,
    RetryAfter,
    TimedOut,
)
from telegram.warnings import PTBDeprecationWarning

from bot.errors import DeliveryError
from bot.records import OutboxItem
from tests.fake_telegram import TOKEN, Answer, FakeTelegram
from webhooks.channels.split import split_text, utf16_length
from webhooks.channels.telegram_bot import delivery_error, new_bot
from webhooks.channels.telegram_sender import TelegramSender, reply_markup
from webhooks.settings import TelegramSettings


@pytest.fixture
async def fake_and_bot(aiohttp_server: AiohttpServer) -> AsyncIterator[tuple[FakeTelegram, Bot]]:
    fake = FakeTelegram()
    server = await aiohttp_server(fake.app())
    settings = TelegramSettings(token=TOKEN, api_url=str(server.make_url("")), timeout=1)
    async with new_bot(settings) as bot:
        yield fake, bot


def item(text: str, **payload: Any) -> OutboxItem:
    return OutboxItem(
        id=1,
        kind="send_text",
        idempotency_key="message-1",
        payload={"channel": "telegram", "chat": "42", "text": text, **payload},
        attempts=1,
        conversation_id=1,
        message_id=1,
    )


# -- splitting --------------------------------------------------------------------------------


def test_a_short_text_is_one_part() -> None:
    assert split_text("Hello there.", 4096) == ["Hello there."]
    assert split_text("", 4096) == [""]


def test_long_texts_split_at_paragraphs_then_sentences_then_words() -> None:
    first, second = "a" * 30, "b" * 25
    assert split_text(f"{first}\n\n{second}", 40) == [first, second]
    sentences = "One two three. Four five six. Seven eight nine."
    assert split_text(sentences, 32) == ["One two three. Four five six.", "Seven eight nine."]
    words = "alpha beta gamma delta epsilon zeta"
    assert split_text(words, 20) == ["alpha beta gamma", "delta epsilon zeta"]
    assert split_text("x" * 25, 10) == ["x" * 10, "x" * 10, "x" * 5]


def test_a_break_too_early_would_leave_a_stub_and_is_skipped() -> None:
    text = "Hi.\n\n" + "word " * 20
    parts = split_text(text, 40)
    assert parts[0].startswith("Hi.\n\nword")  # not "Hi." alone


def test_characters_are_counted_as_telegram_counts_them() -> None:
    assert utf16_length("🚗") == 2
    parts = split_text("🚗" * 10, 8, utf16_length)
    assert parts == ["🚗" * 4, "🚗" * 4, "🚗" * 2]


@given(st.text(alphabet=st.sampled_from("ab .\n🚗"), max_size=300), st.integers(4, 60))
def test_parts_fit_and_keep_every_word(text: str, limit: int) -> None:
    parts = split_text(text, limit, utf16_length)
    assert all(utf16_length(part) <= limit for part in parts)
    assert "".join("".join(parts).split()) == "".join(text.split())


# -- keyboards --------------------------------------------------------------------------------


def test_options_are_inline_buttons_one_a_row() -> None:
    markup = reply_markup([{"value": "yes", "label": "Yes"}, {"value": "no", "label": "No"}], None)
    assert markup.to_dict() == {
        "inline_keyboard": [
            [{"text": "Yes", "callback_data": "yes"}],
            [{"text": "No", "callback_data": "no"}],
        ]
    }


def test_a_phone_question_offers_the_number_and_options_win() -> None:
    share = reply_markup([], "phone").to_dict()
    assert share["keyboard"] == [[{"text": "📱 Share my number", "request_contact": True}]]
    assert share["one_time_keyboard"] is True
    # "Shall we call you on +34...?" asks yes or no about a phone: buttons, not the contact.
    confirm = reply_markup([{"value": "yes", "label": "Yes"}], "phone").to_dict()
    assert "inline_keyboard" in confirm
    assert reply_markup([], "text").to_dict() == {"remove_keyboard": True}


def test_callback_data_beyond_telegrams_64_bytes_is_a_permanent_failure() -> None:
    with pytest.raises(DeliveryError) as raised:
        reply_markup([{"value": "é" * 40, "label": "Too long"}], None)
    assert raised.value.permanent


# -- sending ----------------------------------------------------------------------------------


async def test_a_long_text_goes_in_parts_with_the_keyboard_on_the_last(
    fake_and_bot: tuple[FakeTelegram, Bot],
) -> None:
    fake, bot = fake_and_bot
    paragraph = ("This sentence is part of a long message. " * 40).strip()
    text = "\n\n".join([paragraph] * 6)  # about 9,800 characters
    options = [{"value": "yes", "label": "Yes"}]
    message_id = await TelegramSender(bot).send(item(text, options=options))
    calls = fake.calls_to("sendMessage")
    assert len(calls) == 3
    assert all(len(call.text) <= 4096 for call in calls)
    assert [bool(call.markup) for call in calls] == [False, False, True]
    assert calls[-1].buttons == [("Yes", "yes")]
    assert message_id == str(calls[-1].message_id)
    assert "\n\n".join(call.text for call in calls) == text


async def test_a_chat_that_is_not_a_telegram_id_fails_for_good(
    fake_and_bot: tuple[FakeTelegram, Bot],
) -> None:
    _, bot = fake_and_bot
    with pytest.raises(DeliveryError) as raised:
        await TelegramSender(bot).send(item("hi", chat="lead-4"))
    assert raised.value.permanent


async def test_an_answer_without_a_message_id_fails_for_good(
    fake_and_bot: tuple[FakeTelegram, Bot],
) -> None:
    """Telegram took the message but said nothing of its id: sending again would repeat it."""
    fake, bot = fake_and_bot
    fake.plan("sendMessage", Answer(result={"date": 1700000000}))
    with pytest.raises(DeliveryError, match="without a message id") as raised:
        await TelegramSender(bot).send(item("hi"))
    assert raised.value.permanent
    assert len(fake.calls_to("sendMessage")) == 1


async def test_a_rejected_token_fails_for_good_naming_the_setting(
    fake_and_bot: tuple[FakeTelegram, Bot],
) -> None:
    """The bot is initialized, so PTB reports Telegram's 401 on do_api_request as an unknown
    endpoint; for sendMessage it is the token, and retrying cannot help."""
    fake, bot = fake_and_bot
    fake.plan("sendMessage", Answer(401, "Unauthorized"))
    with pytest.raises(DeliveryError, match="rejected the bot token") as raised:
        await TelegramSender(bot).send(item("hi"))
    assert raised.value.permanent


# -- errors -----------------------------------------------------------------------------------


def test_retry_after_is_read_in_seconds_whichever_type_ptb_gives(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with pytest.warns(PTBDeprecationWarning):  # PTB 22 warns as it builds one
        as_int = RetryAfter(7)
    limited = delivery_error(as_int)
    assert (limited.retry_after, limited.permanent) == (7.0, False)
    monkeypatch.setenv("PTB_TIMEDELTA", "true")  # PTB 23's behaviour
    assert delivery_error(RetryAfter(timedelta(seconds=2.5))).retry_after == 2.5


def test_ptb_errors_become_delivery_errors() -> None:
    blocked = delivery_error(Forbidden("Forbidden: bot was blocked by the user"))
    assert (blocked.unreachable, blocked.permanent) == (True, True)
    bad = delivery_error(BadRequest("Bad Request: chat not found"))
    assert (bad.permanent, bad.reason) == (True, "Telegram refused the message: Chat not found")
    assert not delivery_error(TimedOut()).permanent
    assert not delivery_error(NetworkError("Bad Gateway")).permanent
    assert not delivery_error(Conflict("terminated by other getUpdates")).permanent
    assert delivery_error(ChatMigrated(-1001)).permanent


def test_no_reason_carries_the_token() -> None:
    token = "123456789:AAE-secret_part_of_the_token"
    refused = delivery_error(InvalidToken(f"The token `{token}` was rejected by the server."))
    assert refused.permanent
    assert token not in refused.reason
    network = delivery_error(NetworkError(f"httpx.ConnectError: https://x/bot{token}/getMe"))
    assert "secret_part" not in network.reason


def test_the_share_button_speaks_the_prospects_language() -> None:
    spanish = reply_markup([], "phone", "es")
    assert spanish.to_dict()["keyboard"][0][0]["text"] == "📱 Compartir mi número"
    fallback = reply_markup([], "phone", "ja")
    assert fallback.to_dict()["keyboard"][0][0]["text"] == "📱 Share my number"
