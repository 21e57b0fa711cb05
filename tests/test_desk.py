"""Reps and the bot: taking over (one rep at a time), writing, handing back with a recap,
closing, notes, the audit log, the wait for a rep that never ends in silence, and a script's
handoff rule."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from bot.catalog import LoadedScript, ScriptCatalog
from bot.desk import (
    ActionRefusedError,
    Close,
    HandBack,
    HeldByAnotherError,
    Note,
    NotHoldingError,
    Rep,
    TakeOver,
    Write,
)
from bot.dispatcher import Dispatcher
from bot.inbound import TextReceived
from bot.loader import load_script
from bot.records import NewLead
from bot.scheduler import TimerRunner
from bot.service import SEND_TEXT, ConversationService
from bot.state import Status
from storage.tables import AuditRow
from tests.backends import BACKENDS, Backend, open_backend
from tests.conftest import NOW, FakeClock
from tests.fakes import RecordingSender

ANA = Rep(1, "Ana Ruiz")
BEN = Rep(2, "Ben Ode")
SOURCE = """\
id: quote
name: Quote
lead_fields: [first_name]
questions:
  - id: product
    type: choice
    prompt: Which product?
    options:
      - {value: a, label: Alpha, score: 50}
      - {value: b, label: Beta}
  - id: budget
    type: number
    prompt: Your budget?
  - id: notes
    type: text
    prompt: Anything else?
outcomes:
  - id: hot
    min_score: 50
    qualified: true
  - id: cold
handoff:
  timeout: 5m
"""


@pytest.fixture(params=BACKENDS)
async def backend(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Backend]:
    async with open_backend(request.param, tmp_path) as opened:
        yield opened


class Desk:
    def __init__(
        self, backend: Backend, source: str = SOURCE, *, server_wait: timedelta | None = None
    ) -> None:
        self.backend = backend
        self.clock = FakeClock()
        catalog = ScriptCatalog(
            [LoadedScript(load_script(source), source)], handoff_timeout=server_wait
        )
        self.service = ConversationService(backend.storage, catalog, self.clock)
        self.sender = RecordingSender()
        self.dispatcher = Dispatcher(
            backend.storage, {SEND_TEXT: self.sender}, self.clock, rng=random.Random(1)
        )
        self.timers = TimerRunner(backend.storage, self.service, self.clock)
        self.conversation = 0

    async def start(self) -> int:
        new = NewLead("api", "l-1", "quote", NOW, {"first_name": "Kim"})
        lead = await self.backend.storage.run(lambda tx: tx.leads.add(new, "RDESK1", NOW)[0].id)
        result = await self.service.start(lead, channel="whatsapp", channel_user_id="+34600111222")
        self.conversation = result.conversation_id
        return self.conversation

    async def say(self, text: str) -> Status | None:
        result = await self.service.handle(self.conversation, TextReceived(text))
        return result.state.status if result.state else None

    async def act(self, rep: Rep, action: Any) -> Status | None:
        result = await self.service.act(self.conversation, rep, action)
        return result.state.status if result.state else None

    async def lines(self) -> list[tuple[str, str]]:
        return [
            (author, text) for author, text, _ in await self.backend.transcript(self.conversation)
        ]

    async def audit(self) -> list[tuple[str, str]]:
        if self.backend.database is None:
            return [(a["action"], a["actor"]) for a in self.backend.memory.data.audit]
        table = AuditRow.__table__  # type: ignore[attr-defined]
        async with self.backend.database.reading() as connection:
            rows = await connection.execute(select(table).order_by(table.c.id))
            return [(row.action, row.actor) for row in rows]


async def test_take_over_write_and_hand_back_with_a_recap(backend: Backend) -> None:
    desk = Desk(backend)
    await desk.start()
    await desk.say("Beta")
    assert await desk.act(ANA, TakeOver()) is Status.WITH_REP
    assert await desk.act(ANA, Write("Hi Kim, Ana here. What budget do you have in mind?")) is (
        Status.WITH_REP
    )
    assert await desk.say("about 20k") is Status.WITH_REP  # the bot says nothing
    assert await desk.act(ANA, HandBack()) is Status.ACTIVE
    lines = await desk.lines()
    assert lines[-6:] == [
        ("bot", "You're now chatting with Ana Ruiz from our team."),
        ("rep", "Hi Kim, Ana here. What budget do you have in mind?"),
        ("prospect", "about 20k"),
        ("system", "handed back to the bot"),
        ("bot", "Thanks for waiting! Let's pick up where we left off. So far: Beta."),
        ("bot", "Your budget?"),
    ]
    assert await desk.audit() == [
        ("took_over", "Ana Ruiz (rep 1)"),
        ("wrote", "Ana Ruiz (rep 1)"),
        ("handed_back", "Ana Ruiz (rep 1)"),
    ]


async def test_a_reps_message_goes_out_on_the_prospects_channel(backend: Backend) -> None:
    desk = Desk(backend)
    await desk.start()
    await desk.act(ANA, TakeOver())
    await desk.act(ANA, Write("Hello from Ana"))
    for _ in range(10):
        if await desk.dispatcher.run_once() == 0:
            break
    sent = desk.sender.sent[-1]
    assert (sent.payload["channel"], sent.payload["chat"]) == ("whatsapp", "+34600111222")
    assert (sent.payload["text"], sent.payload["rep"]) == ("Hello from Ana", "Ana Ruiz")


async def test_taking_over_twice_changes_nothing_the_second_time(backend: Backend) -> None:
    desk = Desk(backend)
    await desk.start()
    await desk.act(ANA, TakeOver())
    before = await desk.lines()
    assert await desk.act(ANA, TakeOver()) is Status.WITH_REP
    assert await desk.lines() == before
    assert [action for action, _ in await desk.audit()] == ["took_over"]


async def test_two_reps_pressing_at_once_one_wins(backend: Backend) -> None:
    desk = Desk(backend)
    await desk.start()
    results = await asyncio.gather(
        desk.act(ANA, TakeOver()), desk.act(BEN, TakeOver()), return_exceptions=True
    )
    errors = [r for r in results if isinstance(r, Exception)]
    assert len(errors) == 1
    assert isinstance(errors[0], HeldByAnotherError)
    winner = "Ana Ruiz" if results[0] is Status.WITH_REP else "Ben Ode"
    assert errors[0].holder == winner
    loser = BEN if winner == "Ana Ruiz" else ANA
    with pytest.raises(HeldByAnotherError):
        await desk.act(loser, Write("me too"))
    assert [action for action, _ in await desk.audit()] == ["took_over"]


async def test_actions_that_need_holding_are_refused_and_change_nothing(
    backend: Backend,
) -> None:
    desk = Desk(backend)
    await desk.start()
    before = await desk.lines()
    with pytest.raises(NotHoldingError):
        await desk.act(ANA, Write("hello"))
    with pytest.raises(NotHoldingError):
        await desk.act(ANA, HandBack())
    await desk.act(ANA, TakeOver())
    with pytest.raises(ActionRefusedError):
        await desk.act(ANA, Write("   "))
    with pytest.raises(ActionRefusedError):
        await desk.act(ANA, Close(""))
    assert len(await desk.lines()) == len(before) + 1  # only "now chatting with Ana"


async def test_close_with_an_outcome_and_notes(backend: Backend) -> None:
    desk = Desk(backend)
    await desk.start()
    await desk.act(BEN, Note("called, no answer"))
    await desk.act(ANA, TakeOver())
    assert await desk.act(ANA, Close("won")) is Status.CLOSED
    assert await desk.say("thanks!") is Status.CLOSED
    lead = await backend.storage.run(lambda tx: tx.leads.get(1))
    assert lead is not None
    assert lead.outcome == "won"
    assert ("note", "Ben Ode: called, no answer") in await desk.lines()
    assert [action for action, _ in await desk.audit()] == ["noted", "took_over", "closed"]
    with pytest.raises(ActionRefusedError):
        await desk.act(ANA, TakeOver())


async def test_nobody_comes_the_bot_says_so_and_goes_on(backend: Backend) -> None:
    desk = Desk(backend)
    await desk.start()
    await desk.say("Alpha")
    assert await desk.say("I want to talk to a person") is Status.HANDED_OFF
    assert await desk.timers.run_once() == 0  # not yet
    desk.clock.advance(minutes=6)
    assert await desk.timers.run_once() == 1
    assert await desk.timers.run_once() == 0  # fired once, then gone
    lines = await desk.lines()
    assert lines[-3:] == [
        ("bot", "Sorry, everyone on our team is busy right now."),
        ("bot", "Thanks for waiting! Let's pick up where we left off. So far: Alpha."),
        ("bot", "Your budget?"),
    ]


@pytest.mark.parametrize(
    ("script_wait", "server_wait", "quiet_for", "fires_after"),
    [
        (None, timedelta(minutes=2), 1, 2),  # no handoff.timeout: the server's setting
        ("5m", timedelta(minutes=1), 4, 2),  # the script's own wait wins over the server's
        (None, None, 9, 2),  # neither: ten minutes
    ],
)
async def test_the_wait_for_a_rep_is_the_scripts_else_the_servers(
    backend: Backend,
    script_wait: str | None,
    server_wait: timedelta | None,
    quiet_for: int,
    fires_after: int,
) -> None:
    wait = f"  timeout: {script_wait}" if script_wait else "  on_timeout: resume"
    source = SOURCE.replace("  timeout: 5m", wait)
    desk = Desk(backend, source, server_wait=server_wait)
    await desk.start()
    await desk.say("agent")
    desk.clock.advance(minutes=quiet_for)
    assert await desk.timers.run_once() == 0
    desk.clock.advance(minutes=fires_after)
    assert await desk.timers.run_once() == 1
    assert ("bot", "Sorry, everyone on our team is busy right now.") in await desk.lines()


async def test_after_a_wait_that_ran_out_silence_is_followed_up_again(backend: Backend) -> None:
    desk = Desk(backend, SOURCE + "reminders:\n  after: [10m]\n")
    await desk.start()
    await desk.say("agent")
    desk.clock.advance(minutes=6)
    assert await desk.timers.run_once() == 1  # nobody came: the bot asks the question again
    asked = len(await desk.lines())
    desk.clock.advance(minutes=11)
    assert await desk.timers.run_once() == 1  # and reminds a prospect who stays silent
    assert (await desk.lines())[-1] == ("bot", "Which product?")
    assert len(await desk.lines()) > asked


async def test_a_rep_taking_over_in_time_cancels_the_timeout(backend: Backend) -> None:
    desk = Desk(backend)
    await desk.start()
    await desk.say("agent")
    await desk.act(ANA, TakeOver())
    desk.clock.advance(minutes=30)
    await desk.timers.run_once()
    assert (await desk.lines())[-1] == ("bot", "You're now chatting with Ana Ruiz from our team.")


async def test_callback_on_timeout_keeps_the_wish_then_goes_on(backend: Backend) -> None:
    desk = Desk(backend, SOURCE + "  on_timeout: callback\n")
    await desk.start()
    await desk.say("agent")
    desk.clock.advance(minutes=6)
    await desk.timers.run_once()
    assert (await desk.lines())[-1] == ("bot", "When would be a good time for us to call you back?")
    assert await desk.say("tomorrow after 5pm") is Status.ACTIVE
    assert (await desk.lines())[-3:] == [
        ("bot", "Thanks, we'll call you then."),
        ("bot", "Thanks for waiting! Let's pick up where we left off."),
        ("bot", "Which product?"),
    ]
    lead = await backend.storage.run(lambda tx: tx.leads.get(1))
    assert lead is not None
    assert lead.answers["callback_time"] == "tomorrow after 5pm"


async def test_the_scripts_rule_hands_a_hot_lead_to_a_rep(backend: Backend) -> None:
    desk = Desk(backend, SOURCE.replace("  timeout: 5m", '  when: "score >= 50"\n  timeout: 5m'))
    await desk.start()
    assert await desk.say("Alpha") is Status.HANDED_OFF  # 50 points: a rep asks the rest
    await desk.act(ANA, TakeOver())
    await desk.act(ANA, HandBack())
    assert (await desk.lines())[-1] == ("bot", "Your budget?")
    assert await desk.say("1000") is Status.ACTIVE  # the rule fires once


async def test_a_timer_fired_twice_changes_nothing_the_second_time(backend: Backend) -> None:
    desk = Desk(backend)
    await desk.start()
    await desk.say("agent")
    desk.clock.advance(minutes=6)
    # A worker claims the timer and dies before finishing: the lease runs out, it fires again.
    claimed = await backend.storage.run(
        lambda tx: tx.timers.claim_due(desk.clock(), 10, timedelta(seconds=30), ["handoff"])
    )
    assert len(claimed) == 1
    desk.clock.advance(minutes=1)
    assert await desk.timers.run_once() == 1
    assert (await desk.lines()).count(
        ("bot", "Sorry, everyone on our team is busy right now.")
    ) == 1
