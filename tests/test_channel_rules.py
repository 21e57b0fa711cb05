"""The rules every channel shares: opt-out and opt-in, one suppression list, messaging windows,
delivery reports, a number's first message finding its lead, and the bot writing first."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from bot.binding import ChatMessage, ChatRouter
from bot.catalog import LoadedScript, ScriptCatalog
from bot.dispatcher import Dispatcher
from bot.errors import DeliveryError
from bot.first_contact import FIRST_CONTACT, FirstContactPolicy, QuietHours
from bot.inbound import TextReceived
from bot.intake import IntakeService
from bot.loader import load_script
from bot.ports import Transaction
from bot.records import OutboxItem, Receipt, Submission
from bot.service import SEND_TEXT, ConversationService
from bot.tokens import TokenSigner
from tests.backends import BACKENDS, Backend, open_backend
from tests.conftest import FakeClock
from tests.fakes import RecordingSender

SIGNER = TokenSigner(b"channel-rules-secret-0123456789ab")
TEMPLATE = "HX" + "ab" * 16
DAYTIME = datetime(2026, 1, 5, 18, 0, tzinfo=UTC)  # 10:00 in Los Angeles, 19:00 in Madrid
SOURCE = """
id: quote
name: Quote
lead_fields: [first_name, phone]
greeting: "Hi {{ lead.first_name }}!"
questions:
  - id: product
    type: choice
    prompt: Which product?
    options:
      - {value: a, label: Alpha}
      - {value: b, label: Beta}
    whatsapp_buttons: HX0123456789abcdef0123456789abcdef
  - id: budget
    type: number
    prompt: Your budget?
outcomes:
  - id: done
first_contact:
  channel: sms
  text: "Hi {{ lead.first_name }}, thanks for your request! Reply to get your quote."
"""


@pytest.fixture(params=BACKENDS)
async def backend(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Backend]:
    async with open_backend(request.param, tmp_path) as opened:
        yield opened


class NumberingSender(RecordingSender):
    """Answers provider ids P1, P2... as a provider would."""

    async def send(self, item: OutboxItem) -> str | None:
        await super().send(item)
        return f"P{len(self.sent)}"


class World:
    """The core as `create_app` wires it, on one backend, with a recording sender."""

    def __init__(self, backend: Backend, source: str = SOURCE, **dispatch: Any) -> None:
        self.backend = backend
        self.clock = FakeClock(DAYTIME)
        self.catalog = ScriptCatalog([LoadedScript(load_script(source), source)])
        self.conversations = ConversationService(backend.storage, self.catalog, self.clock)
        self.intake = IntakeService(
            backend.storage,
            self.catalog,
            SIGNER,
            self.clock,
            default_script="quote",
            first_contact=FirstContactPolicy(QuietHours(time(21), time(8)), "Europe/Madrid"),
        )
        self.router = ChatRouter(
            self.conversations, self.intake, SIGNER, phone_match=timedelta(days=7)
        )
        self.sender = NumberingSender()
        self.dispatcher = Dispatcher(
            backend.storage,
            {SEND_TEXT: self.sender, FIRST_CONTACT: self.sender},
            self.clock,
            rng=random.Random(3),
            **dispatch,
        )
        self._updates = 0

    async def say(self, text: str, *, channel: str = "sms", chat: str = "+14155550100") -> int:
        self._updates += 1
        phone = chat if channel in ("sms", "whatsapp") else None
        result = await self.router.receive(
            ChatMessage(
                channel,
                chat,
                TextReceived(text),
                Receipt(channel, f"SM{self._updates}"),
                phone=phone,
            )
        )
        return result.conversation_id

    async def lead(self, phone: str = "+14155550100", consent: str | None = "I agree") -> int:
        [accepted] = await self.intake.submit(
            [
                Submission(
                    "form",
                    f"form-{phone}-{self.clock().isoformat()}",
                    {"first_name": "Ana", "phone": phone},
                    {},
                    consent_text=consent,
                )
            ]
        )
        return accepted.lead_id

    async def drain(self) -> None:
        """Dispatch until nothing is due (one message per conversation a round, in order)."""
        for _round in range(50):
            if await self.dispatcher.run_once() == 0:
                return
        raise AssertionError("the outbox never emptied")

    def sent_texts(self) -> list[str]:
        return [str(item.payload["text"]) for item in self.sender.sent]


async def statuses(backend: Backend) -> list[tuple[str, str | None]]:
    return [(row["status"], row["error"]) for row in await backend.outbox()]


# -- opt-out and opt-in -----------------------------------------------------------------------


async def test_stop_suppresses_the_number_on_every_channel_and_start_resumes(
    backend: Backend,
) -> None:
    world = World(backend)
    conversation = await world.say("hello")  # a lead from chat, asked its first question
    await world.drain()
    assert world.sent_texts()[-1] == "Which product?"

    await world.say("STOP")
    await world.drain()
    # Twilio confirms an SMS opt-out itself: leadbot's confirmation is kept, not sent.
    assert world.sent_texts()[-1] == "Which product?"
    transcript = await backend.transcript(conversation)
    assert transcript[-2:] == [
        ("prospect", "STOP", "received"),
        ("bot", "You're unsubscribed and won't hear from us again here.", "skipped"),
    ]

    # The same number on WhatsApp is the same person: nothing goes out there either.
    whatsapp = await world.say("hi", channel="whatsapp")
    await world.drain()
    assert not [item for item in world.sender.sent if item.payload["channel"] == "whatsapp"]
    failed = [(s, e) for s, e in await statuses(backend) if s == "failed"]
    assert failed
    assert all("opted out" in str(error) for _status, error in failed)
    assert whatsapp != conversation

    sent_before = len(world.sender.sent)
    await world.say("START")
    await world.drain()
    assert world.sent_texts()[sent_before:] == [
        "Welcome back! You'll hear from us here again.",
        "Which product?",
    ]


async def test_stop_on_telegram_is_confirmed_then_silence(backend: Backend) -> None:
    world = World(backend)
    await world.say("hello", channel="telegram", chat="77")
    await world.say("unsubscribe", channel="telegram", chat="77")
    await world.say("Alpha", channel="telegram", chat="77")  # ignored: they opted out
    await world.drain()
    assert world.sent_texts()[-1] == "You're unsubscribed and won't hear from us again here."
    assert world.sent_texts().count("Your budget?") == 0


async def test_stop_before_any_conversation_suppresses_without_a_lead(backend: Backend) -> None:
    world = World(backend)
    lead = await world.lead()
    await world.drain()
    assert [item.kind for item in world.sender.sent] == [FIRST_CONTACT]
    assert await world.say("Stop") == 0  # the reply to first contact: no conversation opened
    # A second lead from the same number: its first contact is not sent.
    world.clock.advance(minutes=1)
    await world.lead()
    await world.drain()
    assert len(world.sender.sent) == 1
    assert (await statuses(backend))[-1][0] == "failed"
    assert lead > 0


# -- a number's first message finds its lead ------------------------------------------------


async def test_reply_to_first_contact_opens_that_leads_conversation(backend: Backend) -> None:
    world = World(backend)
    lead = await world.lead()
    await world.drain()
    [first] = world.sender.sent
    assert first.payload["text"] == "Hi Ana, thanks for your request! Reply to get your quote."
    assert first.payload["chat"] == "+14155550100"

    conversation = await world.say("yes please")
    await world.drain()
    assert world.sent_texts()[1:] == ["Hi Ana!", "Which product?"]
    transcript = await backend.transcript(conversation)
    assert transcript[0] == ("prospect", "yes please", "received")
    stored = await backend.storage.run(
        lambda tx: tx.conversations.lock_latest_in_chat("sms", first.payload["chat"])
    )
    assert stored is not None
    assert stored.lead_id == lead


async def test_an_old_lead_with_the_number_is_not_joined(backend: Backend) -> None:
    world = World(backend)
    lead = await world.lead()
    world.clock.advance(days=8)
    conversation = await world.say("hi")
    stored = await backend.storage.run(lambda tx: tx.conversations.lock(conversation))
    assert stored is not None
    assert stored.lead_id != lead


# -- first contact ---------------------------------------------------------------------------


async def test_first_contact_waits_for_the_end_of_quiet_hours(backend: Backend) -> None:
    world = World(backend)
    world.clock.now = datetime(2026, 1, 5, 6, 30, tzinfo=UTC)  # 22:30 in Los Angeles
    await world.lead()
    [row] = await backend.outbox()
    assert row["due_at"] == datetime(2026, 1, 5, 16, 0, tzinfo=UTC)  # 08:00 there
    assert await world.dispatcher.run_once() == 0


async def test_first_contact_is_dropped_when_the_prospect_wrote_first(backend: Backend) -> None:
    world = World(backend)
    world.clock.now = datetime(2026, 1, 5, 6, 30, tzinfo=UTC)  # night in Los Angeles
    await world.lead()
    await world.say("hi, I filled in your form")  # the number finds its lead
    world.clock.now = datetime(2026, 1, 5, 16, 0, tzinfo=UTC)  # 08:00 there
    await world.drain()
    assert [item.kind for item in world.sender.sent] == [SEND_TEXT, SEND_TEXT]
    first = (await statuses(backend))[0]
    assert first == ("skipped", "not sent: the prospect was already chatting")


async def test_no_first_contact_without_consent_or_number(backend: Backend) -> None:
    world = World(backend)
    await world.lead(consent=None)
    await world.intake.submit(
        [Submission("form", "no-phone", {"first_name": "Bo"}, {}, consent_text="ok")]
    )
    assert await backend.outbox() == []


async def test_no_first_contact_on_a_channel_this_server_cannot_send_on(
    backend: Backend,
) -> None:
    world = World(backend)
    world.intake = IntakeService(
        backend.storage,
        world.catalog,
        SIGNER,
        world.clock,
        default_script="quote",
        first_contact=FirstContactPolicy(channels=frozenset({"whatsapp"})),
    )
    await world.lead()
    assert await backend.outbox() == []


@pytest.mark.parametrize(("consent", "contacted"), [("true", True), ("no", False), ("", False)])
async def test_a_relays_consent_field_counts_as_consent(
    backend: Backend, consent: str, contacted: bool
) -> None:
    world = World(backend)
    fields = {"first_name": "Ana", "phone": "+14155550100", "consent": consent}
    await world.intake.submit([Submission("api:zapier", "z-1", fields, {})])
    assert bool(await backend.outbox()) is contacted


async def test_first_contact_on_whatsapp_is_the_approved_template(backend: Backend) -> None:
    source = SOURCE.replace(
        """first_contact:
  channel: sms
  text: "Hi {{ lead.first_name }}, thanks for your request! Reply to get your quote.\"""",
        f"""first_contact:
  channel: whatsapp
  template: {TEMPLATE}
  variables:
    "1": "{{{{ lead.first_name }}}}\"""",
    )
    world = World(backend, source)
    await world.lead()
    await world.drain()
    [first] = world.sender.sent
    assert first.payload["channel"] == "whatsapp"
    assert first.payload["content_sid"] == TEMPLATE
    assert first.payload["content_variables"] == {"1": "Ana"}


def test_quiet_hours_follow_the_numbers_zones_and_daylight_saving() -> None:
    policy = FirstContactPolicy(QuietHours(time(21), time(8)), "Europe/London")
    # A Spanish mobile may be in Madrid or the Canaries: wait until it is 08:00 in both.
    zones = policy.zones_for("+34612345678", "UTC")
    assert {zone.key for zone in zones} == {"Europe/Madrid", "Atlantic/Canary"}
    late = datetime(2026, 3, 10, 22, 0, tzinfo=UTC)  # 23:00 Madrid, 22:00 Canaries
    assert policy.due_at(late, zones) == datetime(2026, 3, 11, 8, 0, tzinfo=UTC)
    # UK mobiles have no zone in the numbering plan: the setting's zone serves.
    assert [zone.key for zone in policy.zones_for("+447700900123", "UTC")] == ["Europe/London"]
    # The night the clocks go forward in New York (8 March 2026), 08:00 is 12:00 UTC.
    new_york = [ZoneInfo("America/New_York")]
    night = datetime(2026, 3, 8, 4, 0, tzinfo=UTC)
    assert policy.due_at(night, new_york) == datetime(2026, 3, 8, 12, 0, tzinfo=UTC)
    # Daytime: now.
    noon = datetime(2026, 3, 9, 17, 0, tzinfo=UTC)
    assert policy.due_at(noon, new_york) == noon


# -- windows ---------------------------------------------------------------------------------


async def queue_in(world: World, conversation: int, channel: str, text: str) -> None:
    def work(tx: Transaction) -> None:
        tx.outbox.add(
            kind=SEND_TEXT,
            idempotency_key=f"{channel}-{text}",
            payload={"channel": channel, "chat": "+14155550100", "text": text, "options": []},
            due_at=world.clock(),
            now=world.clock(),
            conversation_id=conversation,
        )

    await world.backend.storage.run(work)


async def test_whatsapp_outside_24_hours_holds_free_text(backend: Backend) -> None:
    world = World(backend)
    conversation = await world.say("hi", channel="whatsapp")
    await world.drain()
    assert world.sent_texts() == ["Hi !", "Which product?"]
    world.clock.advance(hours=25)
    await queue_in(world, conversation, "whatsapp", "Still there?")
    await world.drain()
    assert len(world.sender.sent) == 2
    status, error = (await statuses(backend))[-1]
    assert status == "held"
    assert "outside WhatsApp's 24-hour window" in str(error)
    # The prospect writes: the window opens again and the bot answers.
    await world.say("Alpha", channel="whatsapp")
    await world.drain()
    assert world.sent_texts()[-1] == "Your budget?"


async def test_whatsapp_outside_the_window_sends_the_window_template(backend: Backend) -> None:
    world = World(backend, window_templates={"whatsapp": TEMPLATE})
    conversation = await world.say("hi", channel="whatsapp")
    world.clock.advance(hours=30)
    await queue_in(world, conversation, "whatsapp", "Still there?")
    await world.drain()
    late = world.sender.sent[-1]
    assert late.payload["text"] == "Still there?"
    assert late.payload["content_sid"] == TEMPLATE


async def test_question_names_its_quick_reply_template(backend: Backend) -> None:
    world = World(backend)
    await world.say("hi", channel="whatsapp")
    await world.drain()
    question = world.sender.sent[-1]
    assert question.payload["buttons_template"] == "HX0123456789abcdef0123456789abcdef"


async def test_tiktok_allows_ten_messages_until_the_prospect_writes(backend: Backend) -> None:
    world = World(backend)
    conversation = await world.say("hi", channel="tiktok", chat="conv-1")
    await world.drain()
    sent = len(world.sender.sent)  # greeting and question
    for number in range(10):
        await queue_in(world, conversation, "tiktok", f"note {number}")
    await world.drain()
    assert len(world.sender.sent) == 10
    held = [error for status, error in await statuses(backend) if status == "held"]
    assert len(held) == sent
    assert "about 10 messages" in str(held[0])
    world.clock.advance(hours=49)
    await queue_in(world, conversation, "tiktok", "late")
    await world.drain()
    assert "48-hour" in str((await statuses(backend))[-1][1])


# -- what providers report -------------------------------------------------------------------


async def test_provider_opt_out_on_send_suppresses_and_stops(backend: Backend) -> None:
    world = World(backend)
    conversation = await world.say("hi")
    world.sender.fail_next = [DeliveryError("21610 unsubscribed recipient", suppress=True)]
    await world.drain()
    assert [status for status, _ in await statuses(backend)] == ["failed", "failed"]
    await queue_in(world, conversation, "sms", "anything")
    await world.drain()
    assert world.sender.sent == []
    assert "opted out" in str((await statuses(backend))[-1][1])


async def test_held_by_the_provider_is_kept_with_the_reason(backend: Backend) -> None:
    world = World(backend)
    await world.say("hi", channel="whatsapp")
    world.sender.fail_next = [DeliveryError("63016 outside the window", held=True)]
    await world.drain()
    assert (await statuses(backend))[0] == ("held", "63016 outside the window")


async def test_delivery_reports_move_forward_only_and_63014_suppresses(backend: Backend) -> None:
    world = World(backend)
    conversation = await world.say("hi", channel="whatsapp")
    await world.drain()
    assert len(world.sender.sent) == 2
    report = world.conversations.record_delivery
    assert await report("whatsapp", "P1", "delivered")
    assert await report("whatsapp", "P1", "sent")  # late and out of order: ignored
    assert not await report("whatsapp", "unknown", "delivered")
    lines = await backend.transcript(conversation)
    assert [status for _a, _t, status in lines if _a == "bot"][:1] == ["delivered"]
    assert await report("whatsapp", "P2", "failed", "63014 blocked")
    await queue_in(world, conversation, "whatsapp", "anything")
    await world.drain()
    assert len(world.sender.sent) == 2
    assert "opted out" in str((await statuses(backend))[-1][1])
