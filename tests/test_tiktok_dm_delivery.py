"""TikTok DMs out: each of TikTok's answers, through the dispatcher, ends with the message
delivered, retried later, held or failed, with its reason; and the core's 48-hour window and
message budget agree with TikTok's, so the fake never has to refuse."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pytest_aiohttp import AiohttpClient, AiohttpServer
from sqlalchemy import update

from tests.fake_tiktok import (
    ACCESS_TOKEN,
    CONVERSATIONS,
    REFRESH_TOKEN,
    RESTRICTED,
    WINDOW_SECONDS,
    Harness,
    TikTokUser,
    running,
)
from webhooks.channels.tiktok_dm_client import TOO_FAST_PAUSE
from webhooks.keys import DATABASE


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
    async with running(aiohttp_client, aiohttp_server, tmp_path) as harness:
        yield harness


async def started(tt: Harness) -> TikTokUser:
    """Ana, arrived from her lead's link, with the greeting and the first question read."""
    _, _, token = await tt.lead_token("car-test-drive", first_name="Ana")
    ana = tt.user()
    await ana.refer(token)
    await ana.expect("Hi Ana!", "Which model would you like to drive?")
    await tt.settled()
    return ana


async def test_an_expired_token_is_renewed_and_the_message_delivered(tt: Harness) -> None:
    ana = await started(tt)
    tt.fake.expire_token()
    await ana.say("suv")
    card = (await ana.expect("When are you planning to buy?"))[-1]
    await tt.settled()
    refused = [call for call in tt.fake.calls if call.code == 40105]
    assert len(refused) == 1
    assert len(tt.fake.refreshes) == 1
    assert card.token == tt.fake.access_token != ACCESS_TOKEN
    assert tt.fake.refresh_token != REFRESH_TOKEN  # rotated, and the new one kept in memory
    assert all(row.status == "sent" for row in await tt.outbox())
    # The card's id is recorded, so a tap on it finds its question.
    await ana.tap("now")
    await ana.expect("Do you have a car to trade in?")


async def test_a_refused_renewal_fails_the_message_with_its_reason(tt_sqlite: Harness) -> None:
    ana = await started(tt_sqlite)
    tt_sqlite.fake.expire_token()
    tt_sqlite.fake.refresh_token = "rft.revoked"
    await ana.say("suv")
    await tt_sqlite.settled()
    failed = [row for row in await tt_sqlite.outbox() if row.status == "failed"]
    assert failed
    assert "authorise leadbot again" in failed[0].last_error
    assert "LEADBOT_TIKTOK__REFRESH_TOKEN" in failed[0].last_error
    assert "rft." not in failed[0].last_error  # no token in what reps and logs see


async def test_sending_too_fast_waits_and_retries(tt_sqlite: Harness) -> None:
    ana = await started(tt_sqlite)
    tt_sqlite.fake.fail_next(40064)
    before = datetime.now(UTC)
    await ana.say("suv")

    async def retry_planned() -> bool:
        return any(row.last_error for row in await tt_sqlite.outbox())

    await tt_sqlite.until(retry_planned, "the refused message to be planned again")
    [row] = [r for r in await tt_sqlite.outbox() if r.last_error]
    assert row.status == "pending"
    assert row.last_error == "TikTok error 40064: You are sending messages too fast. Take a rest."
    due = row.due_at if row.due_at.tzinfo else row.due_at.replace(tzinfo=UTC)
    assert due - before >= timedelta(seconds=TOO_FAST_PAUSE - 1)
    assert len([c for c in tt_sqlite.fake.calls if c.code == 40064]) == 1


async def test_a_message_tiktoks_rules_block_is_held_with_tiktoks_words(tt: Harness) -> None:
    ana = await started(tt)
    tt.fake.restrict_next()
    await ana.say("suv")
    await tt.settled()
    [held] = [row for row in await tt.outbox() if row.status == "held"]
    assert held.last_error.startswith(f"TikTok error 40064: {RESTRICTED}")
    assert "48-hour window" in held.last_error
    [line] = [m for m in await tt.messages(author="bot") if m.status == "held"]
    assert line.text == "When are you planning to buy?"
    assert len(tt.fake.sent(ana.conversation)) == 2  # the greeting and the first question


@pytest.mark.parametrize(
    ("fail", "seen"),
    [
        (lambda fake: fake.fail_next_http(500), None),
        (lambda fake: fake.fail_next_http(503), None),
        (lambda fake: fake.fail_next(51065), 51065),
        (lambda fake: fake.slow_next(1.5), None),
    ],
)
async def test_server_trouble_is_retried_until_delivered(
    tt_sqlite: Harness, fail: object, seen: int | None
) -> None:
    ana = await started(tt_sqlite)
    fail(tt_sqlite.fake)  # type: ignore[operator]
    await ana.say("suv")
    await ana.expect("When are you planning to buy?")
    await tt_sqlite.settled()
    [failed_call, delivered] = tt_sqlite.fake.calls[-2:]
    assert failed_call.code == seen
    assert delivered.code == 0
    rows = await tt_sqlite.outbox()
    assert all(row.status == "sent" for row in rows)
    assert rows[-1].attempts == 2


async def test_a_request_tiktok_refuses_fails_with_its_code_and_words(tt_sqlite: Harness) -> None:
    ana = await started(tt_sqlite)
    tt_sqlite.fake.fail_next(40002, message="Invalid parameters: recipient")
    await ana.say("suv")
    await tt_sqlite.settled()
    [failed] = [row for row in await tt_sqlite.outbox() if row.status == "failed"]
    assert failed.last_error == "TikTok error 40002: Invalid parameters: recipient"
    assert failed.attempts == 1


async def test_without_sending_settings_messages_fail_naming_them(
    aiohttp_client: AiohttpClient, aiohttp_server: AiohttpServer, tmp_path: Path
) -> None:
    tiktok = {"access_token": None, "refresh_token": None}
    async with running(aiohttp_client, aiohttp_server, tmp_path, tiktok=tiktok) as tt:
        ben = tt.user()
        await ben.say("hello")  # received: the webhook needs only the app secret
        await tt.settled()
        rows = await tt.outbox()
        assert rows
        assert all(row.status == "failed" for row in rows)
        assert "set tiktok.business_id and tiktok.access_token" in rows[0].last_error
        assert tt.fake.calls == []


# -- the core keeps TikTok's rules before it sends ------------------------------------------------


async def test_the_budget_holds_the_eleventh_message_until_the_prospect_writes(
    tt: Harness,
) -> None:
    """Arriving again through the link writes "welcome back" and the question, and is not a
    message from the prospect: after five arrivals the bot has sent ten messages since Ana
    last wrote (here: since she first arrived), and the core holds the rest itself."""
    _, _, token = await tt.lead_token("car-test-drive", first_name="Ana")
    ana = tt.user()
    for _ in range(6):
        await ana.refer(token)
        await asyncio.sleep(0.002)  # another arrival: another timestamp, another receipt
    await tt.settled()
    assert len(tt.fake.sent(ana.conversation)) == 10
    held = [row for row in await tt.outbox() if row.status == "held"]
    assert len(held) == 2
    assert "allows about 10 messages until the prospect writes again" in held[0].last_error
    assert all(call.code == 0 for call in tt.fake.calls)  # TikTok never had to refuse

    await ana.say("suv")  # she writes: the budget starts again
    await ana.expect("When are you planning to buy?")


async def test_outside_the_48_hour_window_the_core_holds_the_message(tt_sqlite: Harness) -> None:
    _, _, token = await tt_sqlite.lead_token("car-test-drive", first_name="Ana")
    ana = tt_sqlite.user()
    await ana.refer(token)
    await ana.expect("Which model would you like to drive?")
    await tt_sqlite.settled()
    # Two days and an hour pass, on both sides.
    past = datetime.now(UTC) - timedelta(seconds=WINDOW_SECONDS + 3600)
    async with tt_sqlite.client.app[DATABASE].engine.begin() as connection:
        await connection.execute(update(CONVERSATIONS).values(last_inbound_at=past))
    tt_sqlite.fake.windows[ana.conversation].opened = past.timestamp()
    await asyncio.sleep(0.002)
    await ana.refer(token)  # back through the link: not a message, so the window stays shut
    await tt_sqlite.settled()
    held = [row for row in await tt_sqlite.outbox() if row.status == "held"]
    assert len(held) == 2  # "welcome back" and the question
    assert "outside TikTok's 48-hour window" in held[0].last_error
    assert all(call.code == 0 for call in tt_sqlite.fake.calls)
