"""Telegram out: every way a send can fail ends delivered or marked failed with the reason."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
from pytest_aiohttp import AiohttpClient, AiohttpServer

from tests.fake_telegram import Harness, Prospect, open_harness

GREETING = "Hi Ben! Thanks for reaching out to Northpeak."
QUESTION = "How many people work at your company?"


@pytest.fixture
async def tg(
    aiohttp_client: AiohttpClient, aiohttp_server: AiohttpServer, tmp_path: Path
) -> Harness:
    return await open_harness(aiohttp_client, aiohttp_server, tmp_path)


async def started(tg: Harness, chat: int = 7) -> Prospect:
    """A prospect who tapped Start: the bot owes them a greeting and a first question."""
    ben = tg.prospect(chat, first_name="Ben")
    await ben.start()
    return ben


async def test_a_429_pauses_the_whole_bot_then_the_message_arrives(tg: Harness) -> None:
    tg.fake.fail_next("sendMessage", 429, "Too Many Requests: retry after 1", retry_after=1)
    ben = await started(tg, 7)
    await tg.fake.wait_until(
        lambda: any(c.status == 429 for c in tg.fake.calls), "the 429", timeout=5
    )
    [limited] = [c for c in tg.fake.calls if c.status == 429]

    async def recorded() -> bool:  # the dispatcher took the 429 in: the channel is paused
        return any(row.last_error for row in await tg.outbox())

    await tg.until(recorded, "the 429 to be recorded")

    # Another chat's message, written during the pause, waits for it too.
    cho = await started(tg, 8)
    await cho.expect(GREETING, QUESTION)
    await ben.expect(GREETING, QUESTION)
    after = [c for c in tg.fake.calls_to("sendMessage") if c.at > limited.at]
    assert after
    assert min(c.at for c in after) - limited.at >= 0.9

    await tg.settled()
    [conversation] = await tg.conversations(channel_user_id="7")
    [greeting, *_] = await tg.outbox(conversation_id=conversation.id)
    assert (greeting.status, greeting.attempts) == ("sent", 2)
    assert "retry after 1" in greeting.last_error


async def test_a_5xx_is_retried_and_order_is_kept(tg: Harness) -> None:
    tg.fake.fail_next("sendMessage", 502, "Bad Gateway")
    ben = await started(tg)
    await ben.expect(GREETING, QUESTION)
    assert [c.status for c in tg.fake.calls_to("sendMessage")] == [502, 200, 200]
    assert tg.fake.texts(7)[0].startswith(GREETING)  # the question waited for the greeting
    await tg.settled()
    greeting, question = await tg.outbox()
    assert (greeting.status, greeting.attempts, greeting.last_error) == (
        "sent",
        2,
        "Telegram is unavailable: Bad Gateway",
    )
    assert (question.status, question.attempts) == ("sent", 1)
    lines = await tg.messages(author="bot")
    assert [line.status for line in lines] == ["sent", "sent"]
    assert [line.provider_message_id for line in lines] == [
        str(call.message_id) for call in tg.fake.sent(7)
    ]


async def test_a_400_fails_that_message_with_the_reason(tg: Harness) -> None:
    tg.fake.fail_next("sendMessage", 400, "Bad Request: message text is empty")
    ben = await started(tg)
    await ben.expect(QUESTION)  # the next message still goes out
    await tg.settled()
    greeting, question = await tg.outbox()
    reason = "Telegram refused the message: Message text is empty"  # as PTB words it
    assert (greeting.status, greeting.attempts, greeting.last_error) == ("failed", 1, reason)
    assert question.status == "sent"
    greeting_line, question_line = await tg.messages(author="bot")
    assert (greeting_line.status, greeting_line.error) == ("failed", reason)
    assert greeting_line.provider_message_id is None
    assert question_line.status == "sent"


async def test_a_403_marks_the_conversation_unreachable_and_stops_sending(tg: Harness) -> None:
    tg.fake.blocked.add("7")
    await started(tg)
    await tg.fake.wait_until(lambda: bool(tg.fake.calls_to("sendMessage")), "a send")
    await tg.settled()
    assert [c.status for c in tg.fake.calls_to("sendMessage")] == [403]  # one try, no retry
    [conversation] = await tg.conversations()
    assert conversation.status == "unreachable"
    reason = "Telegram refused: Forbidden: bot was blocked by the user"
    assert [(row.status, row.last_error) for row in await tg.outbox()] == [("failed", reason)] * 2
    assert [(line.status, line.error) for line in await tg.messages(author="bot")] == [
        ("failed", reason)
    ] * 2
    assert await tg.timers() == []  # no reminders to someone who blocked the bot


async def test_a_slow_answer_beyond_the_timeout_is_retried(tg: Harness) -> None:
    tg.fake.slow_next("sendMessage", 1.0)  # the client gives up after 0.5 s
    ben = await started(tg)
    await ben.expect(GREETING, QUESTION)
    await tg.settled()
    greeting, _ = await tg.outbox()
    assert (greeting.status, greeting.attempts) == ("sent", 2)
    assert greeting.last_error == "Telegram did not answer in time"
    # The slow call was answered in the end: Telegram has no idempotency key for sendMessage,
    # so a timed-out send may arrive twice. The stored id is the retry's.
    calls = tg.fake.calls_to("sendMessage")
    assert [c.text for c in calls[:2]] == [calls[0].text] * 2
    [line, _] = await tg.messages(author="bot")
    assert line.provider_message_id == str(calls[1].message_id)


async def test_messages_to_one_chat_are_paced_in_order(
    aiohttp_client: AiohttpClient, aiohttp_server: AiohttpServer, tmp_path: Path
) -> None:
    tg = await open_harness(
        aiohttp_client, aiohttp_server, tmp_path, telegram={"per_chat_seconds": 0.2}
    )
    ben = await started(tg)
    await ben.expect(GREETING, QUESTION)
    await ben.say("help")
    await ben.expect("Everyone on the payroll", QUESTION)
    calls = tg.fake.sent(7)
    assert [c.text[:10] for c in calls] == [
        GREETING[:10],
        QUESTION[:10],
        "Everyone o",
        QUESTION[:10],
    ]
    gaps = [later.at - earlier.at for earlier, later in itertools.pairwise(calls)]
    assert min(gaps) >= 0.15  # about one message per 0.2 s into a chat, none dropped
