"""Twilio out: every way a send can fail ends delivered or marked failed (or held) with the
reason, and Twilio's status callbacks move each line forward."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from pytest_aiohttp import AiohttpClient, AiohttpServer

from tests.fake_twilio import Harness, Texter, message_sid, post_signed, running

BEN = "+12025550143"
GREETING = "Hi there! Thanks for reaching out to Northpeak."
QUESTION = "How many people work at your company?"


@pytest.fixture(params=["sqlite", "postgresql"])
async def tw(
    request: pytest.FixtureRequest,
    aiohttp_client: AiohttpClient,
    aiohttp_server: AiohttpServer,
    tmp_path: Path,
) -> AsyncIterator[Harness]:
    async with running(
        aiohttp_client, aiohttp_server, tmp_path, request.param, default_script="b2b-services"
    ) as harness:
        yield harness


async def started(tw: Harness, number: str = BEN, channel: str = "sms") -> Texter:
    """Someone who wrote first: the bot owes them a greeting and a first question."""
    ben = tw.texter(number, channel)
    await ben.say("Hello")
    return ben


# -- status callbacks ---------------------------------------------------------------------------


async def test_status_callbacks_move_a_line_to_delivered_and_read(tw: Harness) -> None:
    ben = await started(tw, channel="whatsapp")
    greeting, question = await ben.expect(GREETING, QUESTION)
    await tw.settled()
    assert greeting.sid is not None
    assert question.sid is not None
    for status in ("sent", "delivered"):
        response = await tw.status(greeting.sid, status)
        assert response.status == 204
    await tw.status(question.sid, "read")
    await tw.status(question.sid, "delivered")  # late: a line never moves back
    lines = await tw.messages(author="bot")
    assert [(line.status, line.error) for line in lines] == [("delivered", None), ("read", None)]
    assert [line.provider_message_id for line in lines] == [greeting.sid, question.sid]


async def test_a_failed_delivery_is_marked_with_its_error_code(tw: Harness) -> None:
    ben = await started(tw)
    greeting, _ = await ben.expect(GREETING, QUESTION)
    await tw.settled()
    assert greeting.sid is not None
    await tw.status(greeting.sid, "sent")
    await tw.status(greeting.sid, "undelivered", ErrorCode="30007")
    greeting_line, question_line = await tw.messages(author="bot")
    assert (greeting_line.status, greeting_line.error) == (
        "undelivered",
        "30007 filtered by the carrier",
    )
    assert question_line.status == "sent"
    [conversation] = await tw.conversations()
    assert conversation.status == "active"  # a carrier's filter is not an opt-out


async def test_an_opt_out_reported_by_status_callback_stops_all_sending(tw: Harness) -> None:
    ben = await started(tw)
    greeting, _ = await ben.expect(GREETING, QUESTION)
    await tw.settled()
    assert greeting.sid is not None
    await tw.status(greeting.sid, "failed", ErrorCode="21610")
    [conversation] = await tw.conversations()
    assert conversation.status == "unreachable"
    line = (await tw.messages(author="bot"))[0]
    assert (line.status, line.error) == (
        "failed",
        "21610 the recipient replied STOP to this number",
    )


async def test_reports_on_messages_leadbot_did_not_send_change_nothing(tw: Harness) -> None:
    params = {"MessageSid": message_sid(), "MessageStatus": "delivered", "To": BEN}
    response = await post_signed(tw.client, "/webhooks/twilio/status", params)
    assert response.status == 204
    params["MessageStatus"] = "a_status_twilio_adds_later"
    response = await post_signed(tw.client, "/webhooks/twilio/status", params)
    assert response.status == 204
    params["MessageStatus"] = "Delivered!"
    response = await post_signed(tw.client, "/webhooks/twilio/status", params)
    assert response.status == 400
    assert "MessageStatus" in (await response.json())["error"]["message"]


# -- sending failures ----------------------------------------------------------------------------


async def test_a_5xx_is_retried_and_order_is_kept(tw: Harness) -> None:
    tw.fake.fail_next(20500)
    ben = await started(tw)
    await ben.expect(GREETING, QUESTION)
    assert [c.status for c in tw.fake.calls] == [500, 201, 201]
    assert tw.fake.texts(BEN)[0].startswith(GREETING)  # the question waited for the greeting
    await tw.settled()
    greeting, question = await tw.outbox()
    assert (greeting.status, greeting.attempts, greeting.last_error) == (
        "sent",
        2,
        "Twilio error 20500: Internal Server Error",
    )
    assert (question.status, question.attempts) == ("sent", 1)
    lines = await tw.messages(author="bot")
    assert [line.provider_message_id for line in lines] == [c.sid for c in tw.fake.sent(BEN)]


async def test_a_429_is_retried(tw: Harness) -> None:
    tw.fake.fail_next(20429, 20429)
    ben = await started(tw)
    await ben.expect(GREETING, QUESTION)
    await tw.settled()
    greeting, _ = await tw.outbox()
    assert (greeting.status, greeting.attempts) == ("sent", 3)
    assert greeting.last_error == "Twilio error 20429: Too Many Requests"


async def test_a_slow_answer_beyond_the_timeout_is_retried(tw: Harness) -> None:
    tw.fake.slow_next(1.0)  # the sender gives up after 0.5 s
    ben = await started(tw)
    await ben.expect(GREETING, QUESTION)
    await tw.settled()
    greeting, _ = await tw.outbox()
    assert (greeting.status, greeting.attempts) == ("sent", 2)
    assert greeting.last_error == "Twilio did not answer in time"
    # Twilio has no idempotency key for messages: a timed-out send may arrive twice.
    first, second = tw.fake.calls[:2]
    assert first.params == second.params


async def test_a_refused_message_fails_with_the_code_and_the_conversation_goes_on(
    tw: Harness,
) -> None:
    tw.fake.fail_next(21211)
    ben = await started(tw)
    await ben.expect(QUESTION)
    await tw.settled()
    greeting, question = await tw.outbox()
    reason = "Twilio error 21211: The 'To' number is not a valid phone number."
    assert (greeting.status, greeting.attempts, greeting.last_error) == ("failed", 1, reason)
    assert question.status == "sent"
    greeting_line, _ = await tw.messages(author="bot")
    assert (greeting_line.status, greeting_line.error) == ("failed", reason)


@pytest.mark.parametrize(("channel", "code"), [("sms", 21610), ("whatsapp", 63014)])
async def test_an_opted_out_number_stops_the_conversation(
    tw: Harness, channel: str, code: int
) -> None:
    tw.fake.fail_next(code)
    await started(tw, channel=channel)
    await tw.fake.wait_until(lambda: bool(tw.fake.calls), "a send")
    await tw.settled()
    assert [c.code for c in tw.fake.calls] == [code]  # one try, no retry, nothing after
    [conversation] = await tw.conversations()
    assert conversation.status == "unreachable"
    rows = await tw.outbox()
    assert {row.status for row in rows} == {"failed"}
    assert all(str(code) in row.last_error for row in rows)
    # Another conversation with that number is not written to either: it is suppressed.
    tw.fake.calls.clear()
    other = tw.texter(BEN, "sms" if channel == "whatsapp" else "whatsapp")
    await other.say("Hello again")
    await tw.settled()
    assert tw.fake.calls == []


async def test_a_whatsapp_message_outside_the_window_is_held_with_the_reason(
    tw: Harness,
) -> None:
    tw.fake.fail_next(63016)
    await started(tw, channel="whatsapp")
    await tw.fake.wait_until(lambda: len(tw.fake.calls) >= 2, "two sends")
    await tw.settled()
    greeting, question = await tw.outbox()
    assert greeting.status == "held"
    assert "63016" in greeting.last_error
    assert question.status == "sent"
    line, _ = await tw.messages(author="bot")
    assert line.status == "held"


async def test_messages_to_one_number_are_paced_in_order(
    aiohttp_client: AiohttpClient, aiohttp_server: AiohttpServer, tmp_path: Path
) -> None:
    async with running(
        aiohttp_client,
        aiohttp_server,
        tmp_path,
        twilio={"per_chat_seconds": 0.2},
        default_script="b2b-services",
    ) as tw:
        ben = await started(tw)
        await ben.expect(GREETING, QUESTION)
        await ben.say("help")
        await ben.expect("Everyone on the payroll", QUESTION)
        calls = tw.fake.sent(BEN)
        assert [c.text[:10] for c in calls] == [
            GREETING[:10],
            QUESTION[:10],
            "Everyone o",
            QUESTION[:10],
        ]
        gaps = [later.at - earlier.at for earlier, later in itertools.pairwise(calls)]
        assert min(gaps) >= 0.15
