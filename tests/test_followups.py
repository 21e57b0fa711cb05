"""Follow-ups on the scheduler: reminders after silence (at most as many as the script lists,
cancelled when the prospect writes, never in their quiet hours, skipped outside a channel's
window), expiry marking where a conversation was abandoned, and late replies; on the fakes,
SQLite and PostgreSQL, with the timer runner and the dispatcher as `create_app` wires them."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from bot.catalog import LoadedScript, ScriptCatalog
from bot.dispatcher import Dispatcher
from bot.first_contact import FirstContactPolicy, QuietHours
from bot.inbound import TextReceived
from bot.loader import load_script
from bot.ports import Storage
from bot.records import NewLead
from bot.scheduler import TimerRunner
from bot.service import SEND_TEXT, ConversationService
from storage.bookkeeping import SqlTimers
from storage.tables import ConversationRow, MessageRow, TimerRow
from storage.transactions import SqlStorage
from tests.backends import BACKENDS, Backend, open_backend
from tests.conftest import FakeClock, fresh_database
from tests.fakes import RecordingSender

MADRID = "+34612345678"
LOS_ANGELES = "+14155550100"
DAYTIME = datetime(2026, 1, 5, 10, 0, tzinfo=UTC)  # 11:00 in Madrid, 02:00 in Los Angeles
TEMPLATE = "HX" + "cd" * 16
SOURCE = """\
id: nudge
name: Nudge
lead_fields: [first_name, phone]
greeting: "Hi!"
questions:
  - id: product
    type: choice
    prompt: Which product?
    options:
      - {value: a, label: Alpha}
      - {value: b, label: Beta}
  - id: budget
    type: number
    prompt: Your budget?
outcomes:
  - id: done
    message: Thanks!
reminders:
  after: [10m, 1d]
  message: Still there?
expiry:
  after: 3d
  late_reply: resume
"""


def script(*, after: str = "[10m, 1d]", expiry: str = "3d", late_reply: str = "resume") -> str:
    return (
        SOURCE.replace("after: [10m, 1d]", f"after: {after}")
        .replace("after: 3d", f"after: {expiry}")
        .replace("late_reply: resume", f"late_reply: {late_reply}")
    )


@pytest.fixture(params=BACKENDS)
async def backend(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Backend]:
    async with open_backend(request.param, tmp_path) as opened:
        yield opened


class World:
    """The conversation service, the timer runner and the dispatcher on one backend, with
    quiet hours from 21:00 to 08:00 and the clock in the test's hands."""

    def __init__(
        self, backend: Backend, source: str = SOURCE, *, start: datetime = DAYTIME, **dispatch: Any
    ) -> None:
        self.backend = backend
        self.clock = FakeClock(start)
        self.catalog = ScriptCatalog([LoadedScript(load_script(source), source)])
        self.service = ConversationService(backend.storage, self.catalog, self.clock)
        self.timers = self.runner(backend.storage)
        self.sender = RecordingSender()
        self.dispatcher = Dispatcher(
            backend.storage, {SEND_TEXT: self.sender}, self.clock, rng=random.Random(5), **dispatch
        )
        self._leads = 0

    def runner(self, storage: Storage, batch: int = 50) -> TimerRunner:
        """A timer runner as a worker of its own on `storage` would have it."""
        return TimerRunner(
            storage,
            ConversationService(storage, self.catalog, self.clock),
            self.clock,
            quiet=FirstContactPolicy(QuietHours(time(21), time(8)), None),
            batch=batch,
        )

    async def start(
        self, chat: str = MADRID, channel: str = "sms", phone: str | None = None
    ) -> int:
        self._leads += 1
        new = NewLead("api", f"l-{self._leads}", "nudge", self.clock(), {}, phone=phone or chat)
        reference = f"RFOLLOW{self._leads}"
        lead = await self.backend.storage.run(
            lambda tx: tx.leads.add(new, reference, self.clock())[0].id
        )
        result = await self.service.start(lead, channel=channel, channel_user_id=chat)
        await self.drain()
        return result.conversation_id

    async def say(self, conversation: int, text: str) -> None:
        await self.service.handle(conversation, TextReceived(text))
        await self.drain()

    async def wait(self, **delta: float) -> int:
        """Let time pass in silence: fire what comes due, send what that queues; how many
        timers were claimed."""
        self.clock.advance(**delta)
        claimed = 0
        for _round in range(20):
            batch = await self.timers.run_once()
            if batch == 0:
                await self.drain()
                return claimed
            claimed += batch
        raise AssertionError("timers kept coming due")

    async def drain(self) -> None:
        for _round in range(50):
            if await self.dispatcher.run_once() == 0:
                return
        raise AssertionError("the outbox never emptied")

    def texts(self, chat: str = MADRID) -> list[str]:
        return [str(i.payload["text"]) for i in self.sender.sent if i.payload["chat"] == chat]

    async def lines(self, conversation: int) -> list[tuple[str, str, str | None]]:
        """The bot's transcript lines: (text, status, error)."""
        if self.backend.database is None:
            return [
                (m["text"], m["status"], m["error"])
                for m in self.backend.memory.data.messages
                if m["conversation_id"] == conversation and m["author"] == "bot"
            ]
        table = MessageRow.__table__  # type: ignore[attr-defined]
        query = (
            select(table)
            .where(table.c.conversation_id == conversation, table.c.author == "bot")
            .order_by(table.c.id)
        )
        async with self.backend.database.reading() as connection:
            return [(r.text, r.status, r.error) for r in await connection.execute(query)]

    async def pending_timers(self) -> list[tuple[str, datetime]]:
        """(kind, due) of every timer left, soonest first."""
        if self.backend.database is None:
            timers = self.backend.memory.data.timers
            return sorted((t["kind"], t["due_at"]) for t in timers)
        table = TimerRow.__table__  # type: ignore[attr-defined]
        async with self.backend.database.reading() as connection:
            rows = await connection.execute(select(table.c.kind, table.c.due_at))
            return sorted((r.kind, r.due_at) for r in rows)

    async def abandoned(self, conversation: int) -> tuple[str | None, datetime | None]:
        """Where the conversation was abandoned, and when."""
        if self.backend.database is None:
            return self.backend.memory.data.abandoned.get(conversation, (None, None))
        table = ConversationRow.__table__  # type: ignore[attr-defined]
        query = select(table.c.abandoned_question, table.c.abandoned_at).where(
            table.c.id == conversation
        )
        async with self.backend.database.reading() as connection:
            row = (await connection.execute(query)).one()
            return row.abandoned_question, row.abandoned_at


# -- reminders ---------------------------------------------------------------------------------


async def test_reminders_come_after_silence_at_most_as_many_as_listed(backend: Backend) -> None:
    world = World(backend)
    conversation = await world.start()
    assert world.texts() == ["Hi!", "Which product?"]
    assert await world.wait(minutes=9) == 0
    await world.wait(minutes=1)
    assert world.texts()[2:] == ["Still there?", "Which product?"]
    await world.wait(hours=23, minutes=59)
    assert len(world.texts()) == 4  # the second comes a day after the first
    await world.wait(minutes=1)
    assert world.texts()[4:] == ["Still there?", "Which product?"]
    await world.wait(days=1)  # the list has two: no third one, only the expiry is left
    assert len(world.texts()) == 6
    assert [kind for kind, _ in await world.pending_timers()] == ["expiry"]
    reminders = [item.payload["reminder"] for item in world.sender.sent]
    assert reminders == [None, None, "nudge", "repeat", "nudge", "repeat"]
    assert [status for _, status, _ in await world.lines(conversation)] == ["sent"] * 6


async def test_a_reply_cancels_the_reminder_and_its_count_starts_again(backend: Backend) -> None:
    world = World(backend)
    conversation = await world.start()
    await world.wait(minutes=10)
    assert world.texts().count("Still there?") == 1
    await world.wait(minutes=5)
    await world.say(conversation, "Alpha")
    assert world.texts()[-1] == "Your budget?"
    # The reminder pending for the first question went with the reply: the next one is for
    # the new question, 10 minutes after it was asked (the first of the list again).
    await world.wait(minutes=9)
    assert world.texts()[-1] == "Your budget?"
    await world.wait(minutes=1)
    assert world.texts()[-2:] == ["Still there?", "Your budget?"]


async def test_a_stale_reminder_fires_into_nothing(backend: Backend) -> None:
    world = World(backend)
    conversation = await world.start()
    await world.say(conversation, "Alpha")  # the conversation's timers are at seq 2 now
    due = world.clock()
    # A reminder for the first question, as left by a worker that had claimed it before the
    # reply cancelled it.
    await backend.storage.run(lambda tx: tx.timers.schedule(conversation, "reminder", 1, due))
    sent = len(world.texts())
    assert await world.wait(seconds=1) == 1
    assert len(world.texts()) == sent
    assert [kind for kind, _ in await world.pending_timers()] == ["expiry", "reminder"]


async def test_a_reminder_due_in_quiet_hours_waits_for_their_end(backend: Backend) -> None:
    evening = datetime(2026, 1, 5, 19, 55, tzinfo=UTC)  # 20:55 in Madrid
    world = World(backend, start=evening)
    conversation = await world.start()
    assert await world.wait(minutes=10) == 1  # 21:05 in Madrid: put off, not sent
    assert world.texts() == ["Hi!", "Which product?"]
    # A Spanish mobile may be on the Canary Islands, an hour behind: 08:00 there is the
    # first moment out of quiet hours in both zones (09:00 in Madrid).
    morning = datetime(2026, 1, 6, 8, 0, tzinfo=UTC)
    assert ("reminder", morning) in await world.pending_timers()
    world.clock.now = morning - timedelta(minutes=1)
    assert await world.wait() == 0
    assert len(world.texts()) == 2
    await world.wait(minutes=1)
    assert world.texts()[2:] == ["Still there?", "Which product?"]
    assert (await world.abandoned(conversation)) == (None, None)


async def test_quiet_hours_are_those_of_the_leads_own_time_zone(backend: Backend) -> None:
    late = datetime(2026, 1, 5, 21, 50, tzinfo=UTC)  # 22:50 in Madrid, 13:50 in Los Angeles
    world = World(backend, start=late)
    await world.start(MADRID)
    # A Telegram chat says nothing of where it is: the form's number does.
    await world.start("tg-7", channel="telegram", phone=LOS_ANGELES)
    await world.wait(minutes=10)
    assert world.texts("tg-7")[2:] == ["Still there?", "Which product?"]
    assert world.texts(MADRID) == ["Hi!", "Which product?"]


async def test_expiry_is_not_put_off_by_quiet_hours(backend: Backend) -> None:
    world = World(backend, script(after="[10m]"))
    conversation = await world.start()
    await world.wait(minutes=10)
    world.clock.now = datetime(2026, 1, 8, 21, 30, tzinfo=UTC)  # 22:30 in Madrid
    await world.wait()  # past the expiry (three days after 10:00 on the 5th): it fires, at night
    assert await world.abandoned(conversation) == ("product", world.clock())


# -- windows -------------------------------------------------------------------------------------


@pytest.mark.parametrize("channel", ["whatsapp", "tiktok"])
async def test_a_reminder_outside_the_window_is_skipped_not_held(
    backend: Backend, channel: str
) -> None:
    world = World(backend, script(after="[10m, 3d]", expiry="7d"))
    chat = MADRID if channel == "whatsapp" else "tt-conversation-1"
    conversation = await world.start(chat, channel, phone=MADRID)
    await world.wait(minutes=10)  # inside the window: sent
    assert world.texts(chat)[2:] == ["Still there?", "Which product?"]
    await world.wait(days=3)  # outside it: skipped
    assert len(world.texts(chat)) == 4
    lines = await world.lines(conversation)
    assert [(text, status) for text, status, _ in lines[4:]] == [
        ("Still there?", "skipped"),
        ("Which product?", "skipped"),
    ]
    window = "WhatsApp's 24-hour window" if channel == "whatsapp" else "TikTok's 48-hour window"
    assert all(f"reminder not sent: outside {window}" in str(error) for _, _, error in lines[4:])
    statuses = [row["status"] for row in await backend.outbox()]
    assert statuses[4:] == ["skipped", "skipped"]


async def test_a_reminder_outside_the_whatsapp_window_goes_as_the_template_once(
    backend: Backend,
) -> None:
    world = World(backend, script(after="[2d]"), window_templates={"whatsapp": TEMPLATE})
    conversation = await world.start(MADRID, "whatsapp")
    await world.wait(days=2)
    template = world.sender.sent[-1]
    assert (template.payload["text"], template.payload["content_sid"]) == (
        "Still there?",
        TEMPLATE,
    )
    assert len(world.sender.sent) == 3  # the question again waits for their reply
    _, status, error = (await world.lines(conversation))[-1]
    assert status == "skipped"
    assert "the window template went instead" in str(error)


# -- expiry and late replies -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("late_reply", "after_reply"),
    [
        ("resume", ["Your budget?"]),
        ("restart", ["Hi!", "Which product?"]),
    ],
)
async def test_expiry_marks_where_it_stopped_and_a_late_reply_follows_the_script(
    backend: Backend, late_reply: str, after_reply: list[str]
) -> None:
    world = World(backend, script(after="[10m]", late_reply=late_reply))
    conversation = await world.start()
    await world.wait(minutes=10)
    await world.wait(days=2, hours=23, minutes=49)
    assert await world.abandoned(conversation) == (None, None)
    await world.wait(minutes=1)  # three days after the bot last asked
    expired_at = world.clock()
    assert await world.abandoned(conversation) == ("product", expired_at)
    assert await world.pending_timers() == []
    sent = len(world.texts())
    assert sent == 4  # expiry sends nothing

    await world.wait(days=10)
    await world.say(conversation, "Alpha")
    assert world.texts()[sent:] == after_reply
    # The abandonment stays on record (drop-off figures); the conversation is active again.
    assert await world.abandoned(conversation) == ("product", expired_at)
    assert [kind for kind, _ in await world.pending_timers()] == ["expiry", "reminder"]


# -- several workers -----------------------------------------------------------------------------


async def test_two_workers_claim_due_timers_without_waiting_for_each_other(
    tmp_path: Path,
) -> None:
    """PostgreSQL: while one worker's claim is uncommitted, another skips the rows it locked
    (FOR UPDATE SKIP LOCKED) instead of waiting for them, and takes the rest."""
    async with fresh_database("postgresql", tmp_path) as database:
        world = World(Backend("postgresql", database))
        chats = [f"+3461234560{number}" for number in range(6)]
        for chat in chats:
            await world.start(chat)  # each: a reminder due in 10 minutes, and the expiry
        later = world.clock() + timedelta(minutes=10)
        lease = timedelta(minutes=2)
        async with database.engine.begin() as first:
            mine = await first.run_sync(
                lambda sync: SqlTimers(sync).claim_due(later, 4, lease, ["reminder"])
            )
            async with database.engine.begin() as second:
                theirs = await asyncio.wait_for(
                    second.run_sync(
                        lambda sync: SqlTimers(sync).claim_due(later, 10, lease, ["reminder"])
                    ),
                    timeout=10,
                )
        assert len(mine) == 4
        assert len(theirs) == 2
        assert {t.id for t in mine}.isdisjoint(t.id for t in theirs)
        assert {t.phone for t in mine + theirs} == set(chats)  # with where each lead is


async def test_two_timer_runners_racing_fire_each_reminder_once(tmp_path: Path) -> None:
    async with fresh_database("postgresql", tmp_path) as database:
        world = World(Backend("postgresql", database))
        chats = [f"+3461234570{number}" for number in range(8)]
        for chat in chats:
            await world.start(chat)
        world.clock.advance(minutes=10)
        # Two workers: storage, service and runner each, meeting only in the database.
        runners = [world.runner(SqlStorage(database), batch=3) for _worker in range(2)]
        claimed = 0
        for _round in range(10):
            batch = sum(await asyncio.gather(*(runner.run_once() for runner in runners)))
            if batch == 0:
                break
            claimed += batch
        await world.drain()
        assert claimed == len(chats)  # no timer was claimed twice
        for chat in chats:
            assert world.texts(chat) == ["Hi!", "Which product?", "Still there?", "Which product?"]
