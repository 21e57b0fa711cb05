"""The reps' Telegram group, end to end: cards for handoffs and qualified leads, taking over from
the card, answering the prospect from the lead's thread, handing back, and who may do it. The
real app on SQLite and PostgreSQL, the real python-telegram-bot, the fake Bot API."""

from __future__ import annotations

import asyncio
import itertools
import re
import textwrap
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from pytest_aiohttp import AiohttpClient, AiohttpServer
from sqlalchemy import inspect

from bot import desk
from bot.records import Submission
from storage.db import Database, connect
from storage.rep_threads import SqlRepThreads
from storage.reps import SqlReps
from tests.console_support import CHEAP, database_url, database_url_sync
from tests.fake_telegram import (
    BOT_ID,
    SECRET,
    Call,
    FakeTelegram,
    Harness,
    Prospect,
    telegram_settings,
    user,
)
from tests.schema_drift import schema_differences
from webhooks.app import create_app
from webhooks.channels.telegram_reps_card import mask_email, mask_phone, mask_text
from webhooks.cli import main
from webhooks.keys import CONVERSATIONS, DATABASE, INTAKE

REPS_CHAT = -1001234567890
ANA, BEN, STRANGER = 9001, 9002, 9003  # Telegram users: two linked reps, and someone else
PHONE, EMAIL = "+34612345678", "ana.garcia@example.com"

SCRIPT = """
id: reps-demo
name: Reps demo
languages: [en]
region: ES
lead_fields: [first_name, last_name, phone, email]
greeting: Hi {{ lead.first_name or 'there' }}!
questions:
  - id: budget
    type: choice
    prompt: What budget do you have in mind?
    options:
      - value: high
        label: Over 30k
        score: 40
      - value: low
        label: Under 30k
        score: 5
  - id: timing
    type: choice
    prompt: When would you like to buy?
    options:
      - value: soon
        label: This month
      - value: later
        label: Later
  - id: note
    type: text
    prompt: Anything else we should know?
outcomes:
  - id: hot
    qualified: true
    min_score: 30
    message: Thanks! A rep will call you.
  - id: cold
    qualified: false
    message: Thanks, we'll be in touch.
"""
_group_message_ids = itertools.count(60_001)


# -- the group, as Telegram posts its updates ------------------------------------------------


def _chat(chat: int, topics: bool) -> dict[str, Any]:
    return {"id": chat, "type": "supergroup", "title": "Reps", "is_forum": topics}


def group_message(
    update_id: int,
    sender: dict[str, Any],
    text: str | None,
    *,
    reply_to: int | None = None,
    topic: int | None = None,
    chat: int = REPS_CHAT,
) -> dict[str, Any]:
    message: dict[str, Any] = {
        "message_id": next(_group_message_ids),
        "date": int(time.time()),
        "chat": _chat(chat, topic is not None),
        "from": sender,
    }
    if text is not None:
        message["text"] = text
    else:
        message["sticker"] = {
            "file_id": "s1",
            "file_unique_id": "s1",
            "type": "regular",
            "width": 512,
            "height": 512,
            "is_animated": False,
            "is_video": False,
        }
    if topic is not None:
        message["message_thread_id"] = topic
        message["is_topic_message"] = True
    answered = reply_to if reply_to is not None else topic
    if answered is not None:  # in a topic, Telegram sets the topic's first message here
        message["reply_to_message"] = {
            "message_id": answered,
            "date": int(time.time()),
            "chat": _chat(chat, topic is not None),
            "from": {"id": BOT_ID, "is_bot": True, "first_name": "Leadbot Test"},
            "text": "(the card)",
        }
    return {"update_id": update_id, "message": message}


def group_tap(update_id: int, sender: dict[str, Any], card: Call, data: str) -> dict[str, Any]:
    assert card.message_id is not None
    return {
        "update_id": update_id,
        "callback_query": {
            "id": f"query-{update_id}",
            "from": sender,
            "chat_instance": "reps",
            "data": data,
            "message": {
                "message_id": card.message_id,
                "date": int(time.time()),
                "chat": _chat(int(card.chat), False),
                "from": {"id": BOT_ID, "is_bot": True, "first_name": "Leadbot Test"},
                "text": card.text,
            },
        },
    }


@dataclass
class Member:
    """Someone in the reps' group."""

    group: Group
    sender: dict[str, Any]

    async def deliver(self, update: dict[str, Any]) -> int:
        headers = {"X-Telegram-Bot-Api-Secret-Token": SECRET}
        response = await self.group.tg.client.post(
            "/webhooks/telegram", json=update, headers=headers
        )
        assert response.status == 200, await response.text()
        assert await response.json() == {"ok": True}
        return int(update["update_id"])

    async def tap(self, card: Call, data: str | None = None) -> str:
        """Tap the card's Take over button; what the bot answered (shown to the rep)."""
        [(_, button)] = card.buttons
        await self.group.tg.settled()  # the card is recorded as well as posted
        update_id = await self.deliver(
            group_tap(self.group.tg.fake.next_update_id(), self.sender, card, data or button)
        )
        return self.group.answer_to(update_id)

    async def say(
        self, text: str | None, *, to: Call | None = None, topic: int | None = None
    ) -> int:
        """Write in the group: as a reply to `to` (one of the bot's messages), or in a topic."""
        await self.group.tg.settled()  # the bot's messages are recorded as well as posted
        update = group_message(
            self.group.tg.fake.next_update_id(),
            self.sender,
            text,
            reply_to=to.message_id if to is not None else None,
            topic=topic,
        )
        await self.deliver(update)
        return int(update["message"]["message_id"])


@dataclass
class Group:
    tg: Harness
    topics: bool
    read: int = 0  # group messages already looked at
    members: dict[int, Member] = field(default_factory=dict)

    def member(self, user_id: int, name: str) -> Member:
        return self.members.setdefault(user_id, Member(self, user(user_id, name)))

    def posts(self) -> list[Call]:
        return self.tg.fake.sent(REPS_CHAT)

    async def expect(self, fragment: str) -> Call:
        """The bot's next message in the group that contains `fragment`."""

        def arrived() -> bool:
            return any(fragment in call.text for call in self.posts()[self.read :])

        await self.tg.fake.wait_until(arrived, f"{fragment!r} in the reps' group")
        posts = self.posts()
        index = next(i for i in range(self.read, len(posts)) if fragment in posts[i].text)
        self.read = index + 1
        return posts[index]

    def answer_to(self, update_id: int) -> str:
        [answer] = [
            call
            for call in self.tg.fake.calls_to("answerCallbackQuery")
            if call.params["callback_query_id"] == f"query-{update_id}"
        ]
        return str(answer.params.get("text", ""))

    async def add_rep(self, email: str, name: str, telegram_user: int | None) -> int:
        database = self.tg.client.app[DATABASE]
        rep = await SqlReps(database).add(
            email, name, "rep", CHEAP.hash("x" * 12), datetime.now(UTC)
        )
        if telegram_user is not None:
            await SqlRepThreads(database).link(email, telegram_user)
        return rep.id

    async def conversation(self, chat: int) -> Any:
        [found] = await self.tg.conversations(channel="telegram", channel_user_id=str(chat))
        return found


async def open_group(
    aiohttp_client: AiohttpClient,
    aiohttp_server: AiohttpServer,
    tmp_path: Path,
    url: str,
    *,
    topics: bool = False,
    telegram: dict[str, Any] | None = None,
    settings: dict[str, Any] | None = None,
) -> Group:
    fake = FakeTelegram()
    server = await aiohttp_server(fake.app())
    script = tmp_path / "reps_demo.yaml"
    script.write_text(textwrap.dedent(SCRIPT))
    section = {"reps_chat_id": REPS_CHAT, "reps_topics": topics, **(telegram or {})}
    configured = telegram_settings(
        tmp_path, str(server.make_url("")).rstrip("/"), section, scripts=[script]
    ).model_copy(update={"database_url": url, **(settings or {})})
    client = await aiohttp_client(create_app(configured))
    group = Group(Harness(client, fake), topics)
    await group.add_rep("ana@example.com", "Ana Ruiz", ANA)
    await group.add_rep("ben@example.com", "Ben Ortiz", BEN)
    return group


@pytest.fixture(params=["sqlite", "postgresql"])
async def backend(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """A database URL for the app: a SQLite file, or a PostgreSQL database of its own."""
    async with database_url(request.param, tmp_path) as url:
        yield url


@pytest.fixture
async def group(
    aiohttp_client: AiohttpClient, aiohttp_server: AiohttpServer, tmp_path: Path, backend: str
) -> AsyncIterator[Group]:
    found = await open_group(aiohttp_client, aiohttp_server, tmp_path, backend)
    yield found
    await found.tg.client.close()  # before a PostgreSQL database is dropped


@pytest.fixture
async def forum(
    aiohttp_client: AiohttpClient, aiohttp_server: AiohttpServer, tmp_path: Path, backend: str
) -> AsyncIterator[Group]:
    found = await open_group(aiohttp_client, aiohttp_server, tmp_path, backend, topics=True)
    yield found
    await found.tg.client.close()


async def telegram_lead(group: Group, chat: int = 42) -> Prospect:
    """A form lead (name, phone, email) who opens the Telegram chat and is asked the budget."""
    submission = Submission(
        source="api:test",
        external_id=f"ext-{chat}",
        fields={"first_name": "Ana", "last_name": "García", "phone": PHONE, "email": EMAIL},
        raw={},
    )
    [accepted] = await group.tg.client.app[INTAKE].submit([submission], "reps-demo")
    prospect = group.tg.prospect(chat)
    await prospect.start(accepted.token)
    await prospect.expect("What budget do you have in mind?")
    return prospect


async def tap(group: Group, prospect: Prospect, value: str) -> None:
    await group.tg.settled()  # the question's message id is stored: the tap finds its question
    await prospect.tap(value)


async def asks_for_a_person(group: Group, chat: int = 42) -> tuple[Prospect, Call]:
    prospect = await telegram_lead(group, chat)
    await tap(group, prospect, "high")
    await prospect.expect("When would you like to buy?")
    await prospect.say("can I talk to a human? my number is 612 345 678")
    await prospect.expect("I'm passing you to a member of our team")
    card = await group.expect("is waiting for a rep")
    return prospect, card


# -- cards ------------------------------------------------------------------------------------


async def test_a_prospect_asking_for_a_person_posts_a_card(group: Group) -> None:
    _, card = await asks_for_a_person(group)
    conversation = await group.conversation(42)
    assert card.chat == str(REPS_CHAT)
    lines = card.text.splitlines()
    assert lines[0] == "🙋 Ana García is waiting for a rep"
    assert lines[1].startswith("Telegram · ref ")
    assert lines[1].endswith(" · waiting for a rep")
    assert "Score so far: 40 (budget = Over 30k: +40)" in lines
    assert "Phone: +34 •••••••78 · Email: a•••@e•••.com" in lines
    assert "• budget: Over 30k" in lines
    assert f"Console: https://leads.example.com/console/conversations/{conversation.id}" in lines
    assert "Why: prospect asked for a person: 'human'" in lines
    for whole in ("612345678", "612 345 678", "ana.garcia@", "@example.com"):
        assert whole not in card.text
    assert card.buttons == [("✋ Take over", f"take:{conversation.id}")]
    assert len(f"take:{conversation.id}".encode()) <= 64
    await group.tg.settled()
    [row] = await group.tg.outbox(kind="rep_card")
    assert (row.status, row.conversation_id) == ("sent", None)  # never blocks the prospect's


async def test_a_qualified_lead_posts_a_card(group: Group) -> None:
    prospect = await telegram_lead(group)
    await tap(group, prospect, "high")
    await prospect.expect("When would you like to buy?")
    await tap(group, prospect, "soon")
    await prospect.expect("Anything else we should know?")
    await prospect.say("call me at 612 345 678 after 5pm")
    await prospect.expect("Thanks! A rep will call you.")
    card = await group.expect("Qualified lead")
    lines = card.text.splitlines()
    assert lines[0] == "⭐ Qualified lead: Ana García"
    assert lines[1].endswith(" · completed")
    assert any(line.startswith("Score: 40 (budget = Over 30k: +40") for line in lines)
    assert "• timing: This month" in lines
    assert "• note: call me at +34 •••••••78 after 5pm" in lines
    assert card.buttons[0][0] == "✋ Take over"


async def test_an_unqualified_lead_posts_no_card(group: Group) -> None:
    prospect = await telegram_lead(group)
    await tap(group, prospect, "low")
    await prospect.expect("When would you like to buy?")
    await tap(group, prospect, "later")
    await prospect.expect("Anything else we should know?")
    await prospect.say("nothing")
    await prospect.expect("Thanks, we'll be in touch.")
    await group.tg.settled()
    assert group.posts() == []
    assert await group.tg.outbox(kind="rep_card") == []


async def test_a_card_is_retried_when_telegram_fails_once(group: Group) -> None:
    """The prospect is on the web chat: the card is the only message sent to Telegram."""
    client = group.tg.client
    page = await (await client.get("/f/reps-demo")).text()
    nonce = re.search(r'name="_nonce" value="([^"]+)"', page)
    assert nonce is not None
    form = {
        "_nonce": nonce.group(1),
        "_consent": "yes",
        "first_name": "Ana",
        "last_name": "García",
        "phone": "612345678",
        "email": EMAIL,
    }
    submitted = await client.post("/f/reps-demo", data=form, allow_redirects=False)
    assert submitted.status == 303, await submitted.text()
    token = submitted.headers["Location"].removeprefix("/r/")
    assert (await client.get(f"/chat/{token}")).status == 200
    group.tg.fake.fail_next("sendMessage", 502, "Bad Gateway")
    said = {"text": "I want to speak to a person", "client_id": "c1"}
    assert (await client.post(f"/chat/{token}/messages", json=said)).status == 202
    card = await group.expect("is waiting for a rep")
    assert "web chat · ref " in card.text
    attempts = [call.status for call in group.tg.fake.calls_to("sendMessage")]
    assert attempts == [502, 200]
    await group.tg.settled()
    [row] = await group.tg.outbox(kind="rep_card")
    assert (row.status, row.attempts) == ("sent", 2)


# -- taking over from Telegram ------------------------------------------------------------


async def test_a_linked_rep_takes_over_answers_and_hands_back(group: Group) -> None:
    prospect, card = await asks_for_a_person(group)
    ana = group.member(ANA, "Ana")

    assert await ana.tap(card) == "It's yours: reply in this thread to write to the prospect."
    await prospect.expect("You're now chatting with Ana Ruiz from our team.")
    took = await group.expect("✋ Ana Ruiz took over.")
    assert took.params["reply_parameters"]["message_id"] == card.message_id  # in the thread
    conversation = await group.conversation(42)
    assert (conversation.status, conversation.held_by_name) == ("with_rep", "Ana Ruiz")

    # Her reply to the card goes to the prospect, on their channel.
    await ana.say("Hi Ana, I can call you at 5pm. Does that work?", to=card)
    [sent] = await prospect.expect("I can call you at 5pm")
    assert sent.text == "Hi Ana, I can call you at 5pm. Does that work?"
    rep_lines = await group.tg.messages(conversation_id=conversation.id, author="rep")
    assert [line.text for line in rep_lines] == [sent.text]

    # The prospect's answer is shown in the thread, masked.
    await prospect.say("Yes! Or call 612 345 678 tomorrow")
    shown = await group.expect("💬 Ana García: Yes!")
    assert "612 345 678" not in shown.text
    assert "•••••••78" in shown.text
    assert shown.params["reply_parameters"]["message_id"] == card.message_id

    # A reply to any of the bot's messages in the thread counts as the thread.
    await ana.say("Great, talk tomorrow.", to=shown)
    await prospect.expect("Great, talk tomorrow.")

    await ana.say("/handback")
    await group.tg.settled()
    assert (await group.conversation(42)).status == "with_rep"  # not in a thread: nothing
    await ana.say("/handback", to=card)
    await prospect.expect("Thanks for waiting!", "When would you like to buy?")
    await group.expect("↩️ Ana Ruiz handed this lead back to the bot.")
    conversation = await group.conversation(42)
    assert (conversation.status, conversation.held_by) == ("active", None)
    await tap(group, prospect, "soon")
    await prospect.expect("Anything else we should know?")
    await prospect.say("no")
    await prospect.expect("Thanks! A rep will call you.")
    await group.expect("Qualified lead")  # it completed qualified: the reps hear of it


async def test_close_ends_the_lead_with_the_reps_outcome(group: Group) -> None:
    _prospect, card = await asks_for_a_person(group)
    ana = group.member(ANA, "Ana")
    await ana.tap(card)
    await group.expect("took over")
    await ana.say("/note wants a call on Friday", to=card)
    await group.expect("📝 Ana Ruiz: wants a call on Friday")  # the thread hears the note
    await ana.say("/close", to=card)
    await group.expect("Say how it ended")
    await ana.say("/close won", to=card)
    await group.expect("🏁 Ana Ruiz closed this lead: won.")
    conversation = await group.conversation(42)
    assert (conversation.status, conversation.held_by) == ("closed", None)
    [lead] = await group.tg.leads()
    assert lead.outcome == "won"
    [note] = await group.tg.messages(conversation_id=conversation.id, author="note")
    assert note.text == "Ana Ruiz: wants a call on Friday"
    assert not any("Friday" in text for text in group.tg.fake.texts(42))


async def test_what_reps_do_in_the_console_is_told_in_the_leads_thread(group: Group) -> None:
    prospect, _card = await asks_for_a_person(group)
    cara = desk.Rep(await group.add_rep("cara@example.com", "Cara Díaz", None), "Cara Díaz")
    conversation = (await group.conversation(42)).id
    conversations = group.tg.client.app[CONVERSATIONS]
    await conversations.act(conversation, cara, desk.TakeOver())
    await group.expect("✋ Cara Díaz took over from the console")
    await prospect.expect("You're now chatting with Cara Díaz")
    await prospect.say("are you there? call me on 612 345 678")
    await group.expect("💬 Ana García: are you there? call me on +34 •••••••78")
    await conversations.act(conversation, cara, desk.Write("Yes! Cara here."))
    await prospect.expect("Yes! Cara here.")
    await group.expect("💬 Cara Díaz (console): Yes! Cara here.")
    await conversations.act(conversation, cara, desk.HandBack())
    await group.expect("↩️ Cara Díaz handed this lead back to the bot.")


async def test_a_console_take_over_of_a_lead_the_group_has_not_seen_posts_its_card(
    group: Group,
) -> None:
    prospect = await telegram_lead(group)
    cara = desk.Rep(await group.add_rep("cara@example.com", "Cara Díaz", None), "Cara Díaz")
    conversation = (await group.conversation(42)).id
    await group.tg.client.app[CONVERSATIONS].act(conversation, cara, desk.TakeOver())
    card = await group.expect("✋ Cara Díaz took over from the console")
    assert "👤 Ana García" in card.text
    assert card.buttons  # Take over, for a colleague
    await prospect.say("hello?")
    line = await group.expect("💬 Ana García: hello?")
    assert line.params["reply_parameters"]["message_id"] == card.message_id  # in its thread


async def test_a_wait_for_a_rep_that_runs_out_is_told_in_the_thread(
    aiohttp_client: AiohttpClient, aiohttp_server: AiohttpServer, tmp_path: Path, backend: str
) -> None:
    group = await open_group(
        aiohttp_client,
        aiohttp_server,
        tmp_path,
        backend,
        settings={"handoff_timeout": timedelta(seconds=1)},
    )
    try:
        prospect, _card = await asks_for_a_person(group)
        await prospect.expect("everyone on our team is busy")
        await group.expect("⏰ Nobody took this lead in time")
    finally:
        await group.tg.client.close()


async def test_a_reply_before_taking_over_is_not_sent(group: Group) -> None:
    prospect, card = await asks_for_a_person(group)
    ana = group.member(ANA, "Ana")
    await ana.say("I'll take this one", to=card)
    hint = await group.expect("Take this lead over first")
    assert hint.params["reply_parameters"]["message_id"] != card.message_id  # answers her
    await ana.say(None, to=card)  # a sticker
    await ana.say("/takeover", to=card)
    await group.expect("✋ Ana Ruiz took over.")
    await ana.say(None, to=card)
    await group.expect("Only text reaches the prospect from here.")
    await prospect.expect("You're now chatting with Ana Ruiz")
    await group.tg.settled()
    assert not any("take this one" in text for text in group.tg.fake.texts(42))


async def test_someone_not_linked_to_a_rep_is_refused(group: Group) -> None:
    _prospect, card = await asks_for_a_person(group)
    stranger = group.member(STRANGER, "Sam")
    refusal = await stranger.tap(card)
    assert refusal.startswith("Sorry, only reps linked to leadbot can take over leads.")
    assert f"your id is {STRANGER}" in refusal
    [answer] = [
        call
        for call in group.tg.fake.calls_to("answerCallbackQuery")
        if call.params.get("text") == refusal
    ]
    assert answer.params["show_alert"] in (True, "true", "True")  # an alert, not a toast
    await stranger.say("/takeover", to=card)
    await stranger.say("hello?", to=card)
    told = await group.expect("only reps linked to leadbot can answer leads from here")
    assert f"--telegram-user-id {STRANGER}" in told.text
    await group.tg.settled()
    conversation = await group.conversation(42)
    assert (conversation.status, conversation.held_by) == ("handed_off", None)
    assert not any("hello?" in text for text in group.tg.fake.texts(42))


async def test_a_disabled_rep_is_refused_like_a_stranger(group: Group) -> None:
    _, card = await asks_for_a_person(group)
    await SqlReps(group.tg.client.app[DATABASE]).set_disabled("ana@example.com", True)
    refusal = await group.member(ANA, "Ana").tap(card)
    assert refusal.startswith("Sorry, only reps linked to leadbot")
    assert (await group.conversation(42)).held_by is None


async def test_two_reps_tapping_at_once_one_wins_the_other_is_told_who(group: Group) -> None:
    prospect, card = await asks_for_a_person(group)
    ana, ben = group.member(ANA, "Ana"), group.member(BEN, "Ben")
    answers = await asyncio.gather(ana.tap(card), ben.tap(card))
    conversation = await group.conversation(42)
    winner = conversation.held_by_name
    assert winner in ("Ana Ruiz", "Ben Ortiz")
    won = "It's yours: reply in this thread to write to the prospect."
    lost = f"{winner} is handling this lead."
    assert sorted(answers) == sorted([won, lost])
    await prospect.expect(f"You're now chatting with {winner}")
    await group.tg.settled()
    joined = [text for text in group.tg.fake.texts(42) if "You're now chatting" in text]
    assert len(joined) == 1
    # The loser cannot write to the prospect either; the winner tapping again changes nothing.
    loser = ben if winner == "Ana Ruiz" else ana
    await loser.say("Let me help", to=card)
    await group.expect(f"{winner} is handling this lead.")
    holder = ana if loser is ben else ben
    assert (
        await holder.tap(card)
        == "It's yours already: reply in this thread to write to the prospect."
    )
    await group.tg.settled()
    assert [text for text in group.tg.fake.texts(42) if "You're now chatting" in text] == joined


async def test_a_forged_button_does_nothing(group: Group) -> None:
    _, card = await asks_for_a_person(group)
    answer = await group.member(ANA, "Ana").tap(card, data="take:999")
    assert answer == "This button no longer does anything."
    assert (await group.conversation(42)).held_by is None


async def test_a_repeated_update_is_applied_once(group: Group) -> None:
    prospect, card = await asks_for_a_person(group)
    ana = group.member(ANA, "Ana")
    await ana.tap(card)
    await prospect.expect("You're now chatting with Ana Ruiz")
    update = group_message(
        group.tg.fake.next_update_id(), ana.sender, "Only once, please", reply_to=card.message_id
    )
    await ana.deliver(update)
    await ana.deliver(update)
    await prospect.expect("Only once, please")
    await group.tg.settled()
    assert group.tg.fake.texts(42).count("Only once, please") == 1


# -- a forum: a topic per lead --------------------------------------------------------------


async def test_in_a_forum_each_lead_gets_a_topic_and_reps_write_there(forum: Group) -> None:
    prospect, card = await asks_for_a_person(forum)
    [topic] = forum.tg.fake.calls_to("createForumTopic")
    assert topic.params["chat_id"] == str(REPS_CHAT)
    assert topic.params["name"].startswith("Ana García · Telegram · ")
    thread = int(topic.result["message_thread_id"])
    assert int(card.params["message_thread_id"]) == thread
    assert "reply_parameters" not in card.params

    ana = forum.member(ANA, "Ana")
    await ana.tap(card)
    took = await forum.expect("took over")
    assert int(took.params["message_thread_id"]) == thread
    await ana.say("Hello from the showroom!", topic=thread)  # in the topic, answering nothing
    await prospect.expect("Hello from the showroom!")
    await prospect.say("hi!")
    line = await forum.expect("💬 Ana García: hi!")
    assert int(line.params["message_thread_id"]) == thread
    await ana.say("/handback", topic=thread)
    await prospect.expect("Thanks for waiting!")

    # A second lead: a topic of its own.
    _other, other_card = await asks_for_a_person(forum, chat=43)
    assert len(forum.tg.fake.calls_to("createForumTopic")) == 2
    assert int(other_card.params["message_thread_id"]) != thread
    # The same lead asking again: its card goes to its topic.
    await prospect.say("human please")
    again = await forum.expect("is waiting for a rep")
    assert int(again.params["message_thread_id"]) == thread
    assert len(forum.tg.fake.calls_to("createForumTopic")) == 2


async def test_a_group_without_topics_still_gets_the_card(forum: Group) -> None:
    forum.tg.fake.fail_next("createForumTopic", 400, "Bad Request: the chat is not a forum")
    prospect, card = await asks_for_a_person(forum)
    assert "message_thread_id" not in card.params
    assert card.buttons[0][0] == "✋ Take over"

    # Once topics work (an admin fixed the group), the lead's next card opens its topic, once.
    ana = forum.member(ANA, "Ana")
    for _ in range(2):
        await ana.tap(card)
        await forum.expect("took over")
        await ana.say("/handback", to=card)
        await prospect.expect("When would you like to buy?")
        await prospect.say("a human please")
        card = await forum.expect("is waiting for a rep")
        assert int(card.params["message_thread_id"]) == 7001
    assert len(forum.tg.fake.calls_to("createForumTopic")) == 2  # the failed one, and one


# -- other groups, and setting the group up ----------------------------------------------------


async def test_chatid_and_whoami_help_set_the_group_up(group: Group) -> None:
    elsewhere = -1009999
    sam = group.member(STRANGER, "Sam")
    update = group_message(group.tg.fake.next_update_id(), sam.sender, "/chatid", chat=elsewhere)
    await sam.deliver(update)
    [answer] = group.tg.fake.sent(elsewhere)
    assert answer.text == f"This group's chat id is {elsewhere}: set telegram.reps_chat_id to it."
    await sam.deliver(
        group_message(group.tg.fake.next_update_id(), sam.sender, "hi", chat=elsewhere)
    )
    await sam.say("/whoami@leadbot_test_bot")
    [whoami] = group.tg.fake.sent(REPS_CHAT)
    assert f"Your Telegram user id is {STRANGER}." in whoami.text
    assert len(group.tg.fake.sent(elsewhere)) == 1  # "hi" in another group: nothing
    await sam.say("/whoami@some_other_bot")
    await group.tg.settled()
    assert len(group.tg.fake.sent(REPS_CHAT)) == 1


# -- linking reps, the tables, and what a card masks --------------------------------------------


@pytest.fixture(params=["sqlite", "postgresql"])
def cli_url(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[str]:
    with database_url_sync(request.param, tmp_path) as found:
        monkeypatch.setenv("LEADBOT_DATABASE_URL", found)
        yield found


def linked(url: str, telegram_user: int) -> str | None:
    async def read() -> str | None:
        database = connect(url)
        try:
            rep = await SqlRepThreads(database).linked_rep(telegram_user)
        finally:
            await database.dispose()
        return rep.email if rep is not None else None

    return asyncio.run(read())


def test_rep_link_telegram_links_unlinks_and_refuses_a_taken_user(cli_url: str) -> None:
    def run(*args: str) -> Result:
        return CliRunner().invoke(main, ["rep", *args])

    for email in ("ana@example.com", "ben@example.com"):
        assert run("add", "--email", email, "--name", "N", "--generate").exit_code == 0
    done = run("link-telegram", "--email", "Ana@Example.com", "--telegram-user-id", str(ANA))
    assert done.exit_code == 0, done.output
    assert f"N <ana@example.com> now acts from Telegram as user {ANA}" in done.output
    assert linked(cli_url, ANA) == "ana@example.com"

    taken = run("link-telegram", "--email", "ben@example.com", "--telegram-user-id", str(ANA))
    assert taken.exit_code == 1
    assert f"Telegram user {ANA} is linked to ana@example.com already" in taken.output
    nobody = run("link-telegram", "--email", "zoe@example.com", "--telegram-user-id", "5")
    assert nobody.exit_code == 1
    assert "no rep with the email zoe@example.com" in nobody.output
    assert run("link-telegram", "--email", "ana@example.com").exit_code == 2  # id or --unlink
    assert (
        run("link-telegram", "--email", "ana@example.com", "--telegram-user-id", "0").exit_code == 2
    )

    unlinked = run("link-telegram", "--email", "ana@example.com", "--unlink")
    assert unlinked.exit_code == 0, unlinked.output
    assert linked(cli_url, ANA) is None
    again = run("link-telegram", "--email", "ben@example.com", "--telegram-user-id", str(ANA))
    assert again.exit_code == 0, again.output
    assert linked(cli_url, ANA) == "ben@example.com"


async def test_the_migration_makes_the_tables_as_declared(database: Database) -> None:
    ours = {"telegram_rep_threads", "telegram_rep_messages"}
    found = await schema_differences(database)
    assert [d for d in found if any(name in repr(d) for name in ours)] == []
    async with database.reading() as connection:
        tables = await connection.run_sync(lambda sync: set(inspect(sync).get_table_names()))
    assert ours <= tables


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("call me on 612 345 678", "call me on +34 •••••••78"),
        ("or +44 20 7946 0958 at work", "or +44 ••••••••58 at work"),
        ("write to ana.garcia@example.com", "write to a•••@e•••.com"),
        ("budget 25000, visit 2026-01-07 11:00", "budget 25000, visit 2026-01-07 11:00"),
    ],
)
def test_phone_numbers_and_emails_in_free_text_are_masked(text: str, masked: str) -> None:
    assert mask_text(text, "ES") == masked


def test_contact_fields_are_masked_to_a_hint() -> None:
    assert mask_phone("+34612345678") == "+34 •••••••78"
    assert mask_phone("12") == "••••"
    assert mask_email("ana@example.com") == "a•••@e•••.com"
    assert mask_email("x@localhost") == "x•••@l•••"


def _leaves(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    if isinstance(value, dict):
        return [p for key, item in value.items() for p in _leaves(item, (*path, key))] or [path]
    return [path]


def _replaced(value: Any, path: tuple[Any, ...], new: Any) -> Any:
    if not path:
        return new
    copy = dict(value)
    copy[path[0]] = _replaced(value[path[0]], path[1:], new)
    return copy


async def test_no_field_of_a_group_update_of_the_wrong_type_gets_a_500(
    aiohttp_client: AiohttpClient, aiohttp_server: AiohttpServer, tmp_path: Path
) -> None:
    """Each field of the group's updates, replaced by values of other types: 200 or 400."""
    group = await open_group(
        aiohttp_client, aiohttp_server, tmp_path, f"sqlite+aiosqlite:///{tmp_path / 'fuzz.db'}"
    )
    _, card = await asks_for_a_person(group)
    ana = group.member(ANA, "Ana")
    samples = [
        group_message(1, ana.sender, "/close won", reply_to=card.message_id),
        group_message(2, ana.sender, "hello", topic=7001),
        group_tap(3, ana.sender, card, card.buttons[0][1]),
    ]
    odd_values: list[Any] = [None, 7, -1, 10**30, "x", True, [], {}, 1.5]
    statuses: set[int] = set()
    headers = {"X-Telegram-Bot-Api-Secret-Token": SECRET}
    for sample in samples:
        for path in _leaves(sample):
            for value in odd_values:
                update = _replaced(sample, path, value)
                response = await group.tg.client.post(
                    "/webhooks/telegram", json=update, headers=headers
                )
                statuses.add(response.status)
                assert response.status in (200, 400), (path, value, await response.text())
    assert statuses == {200, 400}
