"""Drill: every fault the fake providers can answer, at once, under a load of conversations on
Telegram, SMS and WhatsApp; at the end every outbox row is sent, or failed or held with its
reason, and nothing is left pending."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import select

from storage.tables import ConversationRow, MessageRow, OutboxRow
from tests import fake_telegram, fake_twilio
from tests.fake_telegram import Answer, FakeTelegram, Prospect
from tests.fake_twilio import FakeTwilio, Texter, due
from webhooks.app import create_app
from webhooks.keys import DATABASE
from webhooks.settings import Settings

pytestmark = [pytest.mark.slow, pytest.mark.drill]
TELEGRAM_CHATS = 12
BLOCKED = {"103", "108"}  # these users blocked the bot: 403
SMS_NUMBERS = [f"+1202555{n:04d}" for n in range(8)]
WHATSAPP_NUMBERS = [f"+1415555{n:04d}" for n in range(4)]
OUTBOX = OutboxRow.__table__  # type: ignore[attr-defined]
MESSAGES = MessageRow.__table__  # type: ignore[attr-defined]
CONVERSATIONS = ConversationRow.__table__  # type: ignore[attr-defined]


async def _app(
    aiohttp_client: Any, aiohttp_server: Any, tmp_path: Path
) -> tuple[TestClient[Any, Any], FakeTelegram, FakeTwilio]:
    telegram, twilio = FakeTelegram(), FakeTwilio()
    telegram_url = str((await aiohttp_server(telegram.app())).make_url("")).rstrip("/")
    twilio_url = str((await aiohttp_server(twilio.app())).make_url("")).rstrip("/")
    settings = Settings(
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'drill.db'}",
        secret_key="test-secret-key-0123456789",
        public_url=fake_twilio.PUBLIC_URL,
        dispatcher_first_retry_seconds=0.05,
        default_script="b2b-services",
        telegram={
            "token": fake_telegram.TOKEN,
            "webhook_secret": fake_telegram.SECRET,
            "api_url": telegram_url,
            "bot_username": fake_telegram.USERNAME,
            "timeout": 0.5,
            "per_chat_seconds": 0.0,
            "per_second": 0.0,
        },
        twilio={
            "account_sid": fake_twilio.ACCOUNT_SID,
            "auth_token": fake_twilio.AUTH_TOKEN,
            "api_url": twilio_url,
            "sms_number": fake_twilio.SMS_NUMBER,
            "whatsapp_number": fake_twilio.WHATSAPP_NUMBER,
            "timeout": 0.5,
            "per_chat_seconds": 0.0,
            "per_second": 0.0,
        },
    )
    return await aiohttp_client(create_app(settings)), telegram, twilio


async def _rows(client: TestClient[Any, Any], query: Any) -> list[Any]:
    async with client.app[DATABASE].reading() as connection:
        return list((await connection.execute(query)).all())


async def test_every_message_ends_sent_or_failed_with_its_reason_under_mixed_faults(
    aiohttp_client: Any, aiohttp_server: Any, tmp_path: Path
) -> None:
    client, telegram, twilio = await _app(aiohttp_client, aiohttp_server, tmp_path)
    telegram.blocked.update(BLOCKED)
    telegram.plan(
        "sendMessage",
        Answer(429, "Too Many Requests: retry after 1", retry_after=1),
        Answer(502, "Bad Gateway"),
        Answer(delay=1.0),  # beyond the 0.5 s timeout
        Answer(500, "Internal Server Error"),
        Answer(503, "Service Unavailable"),
    )
    # 63016 first, to the first WhatsApp prospect's greeting: outside the 24-hour window.
    twilio.fail_next(63016)
    first = Texter(client, twilio, WHATSAPP_NUMBERS[0], "whatsapp")
    await first.say("Hello")
    await twilio.wait_until(lambda: any(c.code == 63016 for c in twilio.calls), "the 63016")
    twilio.fail_next(20429, 20500)
    twilio.slow_next(1.0)
    twilio.fail_next(20500, 20429)

    async def chat(number: int) -> None:
        prospect = Prospect(client, telegram, number)
        await prospect.start()
        await prospect.say("about 40 people")

    async def text(number: str, channel: str) -> None:
        texter = Texter(client, twilio, number, channel)
        await texter.say("Hello")
        await texter.say("about 40 people")

    await asyncio.gather(
        *(chat(100 + n) for n in range(TELEGRAM_CHATS)),
        *(text(number, "sms") for number in SMS_NUMBERS),
        *(text(number, "whatsapp") for number in WHATSAPP_NUMBERS[1:]),
    )

    deadline = time.monotonic() + 25
    while True:
        now = datetime.now(UTC)
        pending = [r for r in await _rows(client, select(OUTBOX)) if r.status == "pending"]
        if not [r for r in pending if due(r, now)]:
            break
        assert time.monotonic() < deadline, [(r.id, r.attempts, r.last_error) for r in pending]
        await asyncio.sleep(0.05)

    rows = await _rows(client, select(OUTBOX))
    assert not [r for r in rows if r.status == "pending"]
    statuses = Counter(row.status for row in rows)
    assert set(statuses) <= {"sent", "failed", "held"}, statuses
    for row in rows:  # the end state of every row, and its reason
        if row.status == "sent":
            assert row.provider_id, row
        else:
            assert row.last_error, row
    # Each planned fault was met, and each ended where it should.
    assert {c.status for c in telegram.calls_to("sendMessage")} >= {200, 403, 429, 500, 502, 503}
    assert {c.code for c in twilio.calls} >= {63016, 20429, 20500}
    conversations = {row.id: row for row in await _rows(client, select(CONVERSATIONS))}
    for row in rows:
        conversation = conversations[row.conversation_id]
        if conversation.channel_user_id in BLOCKED:
            assert row.status == "failed"
            assert "blocked" in row.last_error
        elif row.status == "held":
            assert "63016" in row.last_error
            assert conversation.channel_user_id == WHATSAPP_NUMBERS[0]
        else:
            assert row.status == "sent", (row.status, row.last_error)
    assert statuses["held"] >= 1
    # Nobody who can be reached is left without the bot's messages; the transcript agrees
    # with the outbox on every line.
    for number in range(100, 100 + TELEGRAM_CHATS):
        if str(number) not in BLOCKED:
            assert len(telegram.texts(number)) >= 3, number
    for number in [*SMS_NUMBERS, *WHATSAPP_NUMBERS[1:]]:
        assert len(twilio.texts(number)) >= 3, number
    lines = {row.id: row for row in await _rows(client, select(MESSAGES))}
    for row in rows:
        if row.message_id is not None:
            assert lines[row.message_id].status in (row.status, "delivered", "read"), row
