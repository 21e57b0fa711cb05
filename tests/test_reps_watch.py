"""What the reps' Telegram group must hear is written inside the turn that causes it: a card
for a handoff or a qualified lead, a prospect's line while people have the conversation, what
a rep did. A turn that fails leaves no card behind; a turn that commits cannot lose its card.
On the in-memory fake, SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from bot.catalog import LoadedScript, ScriptCatalog
from bot.desk import HandBack, Rep, TakeOver, Write
from bot.inbound import TextReceived
from bot.loader import load_script
from bot.ports import Transaction
from bot.records import NewLead, Receipt
from bot.service import ConversationService
from bot.watchers import RepAction, SavedTurn
from tests.backends import BACKENDS, Backend, open_backend
from tests.conftest import NOW, FakeClock
from webhooks.channels.telegram_reps_watch import CHANNEL, RepsWatcher

CHAT = -100777
ANA = Rep(1, "Ana Ruiz")
SOURCE = """\
id: watch
name: Watch
languages: [en]
questions:
  - id: budget
    type: text
    prompt: Your budget?
  - id: timing
    type: text
    prompt: When?
outcomes:
  - id: hot
    qualified: true
"""


class Refusing:
    """A watcher whose storage write fails (as a full disk would): the turn must not commit."""

    def turn_saved(self, tx: Transaction, turn: SavedTurn) -> None:
        raise RuntimeError("disk full")

    def rep_acted(self, tx: Transaction, action: RepAction) -> None:
        raise RuntimeError("disk full")


@pytest.fixture(params=BACKENDS)
async def backend(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Backend]:
    async with open_backend(request.param, tmp_path) as opened:
        yield opened


def service(backend: Backend, *watchers: Any) -> ConversationService:
    catalog = ScriptCatalog([LoadedScript(load_script(SOURCE), SOURCE)])
    return ConversationService(
        backend.storage, catalog, FakeClock(), watchers=[RepsWatcher(CHAT), *watchers]
    )


async def start(backend: Backend, conversations: ConversationService) -> int:
    new = NewLead("api", "l-1", "watch", NOW, {"first_name": "Kim"})
    lead = await backend.storage.run(lambda tx: tx.leads.add(new, "RWATCH", NOW)[0].id)
    started = await conversations.start(lead, channel="whatsapp", channel_user_id="+34600111222")
    return started.conversation_id


async def group_rows(backend: Backend) -> list[dict[str, Any]]:
    return [
        row["payload"] for row in await backend.outbox() if row["payload"]["channel"] == CHANNEL
    ]


async def test_a_handoff_and_its_card_commit_together(backend: Backend) -> None:
    conversations = service(backend)
    conversation = await start(backend, conversations)
    assert await group_rows(backend) == []
    await conversations.handle(conversation, TextReceived("agent"))
    # No task, no wait: the card row is there the moment the turn has returned.
    [card] = await group_rows(backend)
    assert card["conversation_id"] == conversation
    assert card["chat"] == str(CHAT)
    assert card["event"]["handoff"]
    assert card["event"]["qualified"] is False


async def test_a_turn_that_fails_leaves_neither_its_lines_nor_a_card(backend: Backend) -> None:
    conversations = service(backend, Refusing())
    with pytest.raises(RuntimeError, match="disk full"):
        await start(backend, conversations)
    assert await group_rows(backend) == []
    assert await backend.outbox() == []


async def test_lines_and_rep_actions_reach_the_thread_while_people_have_it(
    backend: Backend,
) -> None:
    conversations = service(backend)
    conversation = await start(backend, conversations)
    await conversations.handle(conversation, TextReceived("5000"))  # with the bot: not shown
    await conversations.handle(conversation, TextReceived("agent"))
    await conversations.handle(conversation, TextReceived("anyone there?"))
    await conversations.act(conversation, ANA, TakeOver())
    await conversations.act(conversation, ANA, Write("Hi Kim, Ana here"))
    await conversations.act(conversation, ANA, HandBack())
    await conversations.handle(conversation, TextReceived("soon"))  # with the bot: not shown
    rows = await group_rows(backend)
    assert [row.get("line") or row.get("text") or "card" for row in rows] == [
        "card",
        "anyone there?",
        rows[2]["text"],
        "💬 Ana Ruiz (console): Hi Kim, Ana here",
        "↩️ Ana Ruiz handed this lead back to the bot.",
        "card",  # then it completed, qualified
    ]
    assert rows[2]["text"].startswith("✋ Ana Ruiz took over from the console.")
    assert rows[2]["card_if_new"] is True  # a lead the group has not seen gets its card first
    assert all(row["conversation_id"] == conversation for row in rows)


async def test_a_repeated_action_with_its_receipt_is_applied_once(backend: Backend) -> None:
    conversations = service(backend)
    conversation = await start(backend, conversations)
    await conversations.act(conversation, ANA, TakeOver())
    receipt = Receipt("telegram", "bot:991")
    first = await conversations.act(conversation, ANA, Write("Hi Kim"), receipt)
    again = await conversations.act(conversation, ANA, Write("Hi Kim"), receipt)
    assert (first.applied, again.applied) == (True, False)
    lines = [text for author, text, _ in await backend.transcript(conversation) if author == "rep"]
    assert lines == ["Hi Kim"]
