"""The conversation service on fakes, SQLite and PostgreSQL: one commit per turn, once, in order."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest

from bot.catalog import LoadedScript, ScriptCatalog
from bot.errors import UnknownConversationError
from bot.inbound import OptionPicked, TextReceived
from bot.loader import load_script
from bot.records import NewLead, Receipt
from bot.service import ConversationService
from bot.tokens import TokenSigner
from storage.db import connect
from storage.transactions import SqlStorage
from tests.backends import BACKENDS, Backend, Counting, open_backend
from tests.conftest import NOW, FakeClock

SOURCE = """\
id: quote
name: Quote
lead_fields: [first_name]
greeting: "Hi {{ lead.first_name }}!"
questions:
  - id: product
    type: choice
    prompt: Which product?
    options:
      - {value: a, label: Alpha, score: 10}
      - {value: b, label: Beta}
  - id: budget
    type: number
    prompt: Budget?
  - id: notes
    type: text
    prompt: Anything else?
outcomes:
  - id: hot
    min_score: 10
    message: Thanks, we'll call you.
  - id: cold
    message: Thanks!
reminders:
  after: [10m]
"""


def catalog(source: str = SOURCE) -> ScriptCatalog:
    return ScriptCatalog([LoadedScript(load_script(source), source)])


@pytest.fixture(params=BACKENDS)
async def backend(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Backend]:
    async with open_backend(request.param, tmp_path) as opened:
        yield opened


async def add_lead(backend: Backend, external_id: str = "lead-1") -> int:
    new = NewLead("api", external_id, "quote", NOW, {"first_name": "Ana"})
    return await backend.storage.run(lambda tx: tx.leads.add(new, f"R{external_id}", NOW)[0].id)


async def started(backend: Backend, service: ConversationService) -> int:
    result = await service.start(await add_lead(backend), channel="web", channel_user_id="u1")
    return result.conversation_id


async def test_start_queues_greeting_and_first_question(backend: Backend) -> None:
    service = ConversationService(backend.storage, catalog(), FakeClock())
    conversation_id = await started(backend, service)
    assert await backend.transcript(conversation_id) == [
        ("bot", "Hi Ana!", "queued"),
        ("bot", "Which product?", "queued"),
    ]
    outbox = await backend.outbox()
    assert [row["payload"]["text"] for row in outbox] == ["Hi Ana!", "Which product?"]
    assert outbox[1]["payload"]["options"] == [
        {"value": "a", "label": "Alpha"},
        {"value": "b", "label": "Beta"},
    ]
    assert outbox[1]["payload"]["channel"] == "web"
    assert outbox[1]["payload"]["chat"] == "u1"
    assert await backend.version(conversation_id) == 1


async def test_turn_saves_transcript_answers_and_outbox_in_one_commit(backend: Backend) -> None:
    clock = FakeClock()
    service = ConversationService(backend.storage, catalog(), clock)
    conversation_id = await started(backend, service)
    clock.advance(seconds=30)
    result = await service.handle(
        conversation_id, OptionPicked("product", "a"), Receipt("web", "m1")
    )
    assert result.applied
    assert result.state is not None
    assert result.state.answers == {"product": "a"}
    transcript = await backend.transcript(conversation_id)
    assert transcript[-2:] == [("prospect", "Alpha", "received"), ("bot", "Budget?", "queued")]
    lead = await backend.storage.run(lambda tx: tx.leads.get(1))
    assert lead is not None
    assert lead.answers == {"product": "a"}


async def test_a_duplicate_delivery_changes_nothing(backend: Backend) -> None:
    service = ConversationService(backend.storage, catalog(), FakeClock())
    conversation_id = await started(backend, service)
    first = await service.handle(conversation_id, TextReceived("alpha"), Receipt("web", "m1"))
    outbox_after_first = await backend.outbox()
    again = await service.handle(conversation_id, TextReceived("alpha"), Receipt("web", "m1"))
    assert first.applied
    assert not again.applied
    assert await backend.outbox() == outbox_after_first
    assert await backend.version(conversation_id) == 2


async def test_messages_arriving_together_are_applied_in_arrival_order(backend: Backend) -> None:
    service = ConversationService(backend.storage, catalog(), FakeClock())
    conversation_id = await started(backend, service)
    replies = ["alpha", "20k", "call me after 5", "thanks"]
    results = await asyncio.gather(
        *(
            service.handle(conversation_id, TextReceived(text), Receipt("web", f"m{number}"))
            for number, text in enumerate(replies)
        )
    )
    assert all(result.applied for result in results)
    prospect_lines = [
        text
        for author, text, _ in await backend.transcript(conversation_id)
        if author == "prospect"
    ]
    assert prospect_lines == replies
    final = results[-1].state
    assert final is not None
    assert final.outcome == "hot"
    assert await backend.version(conversation_id) == 1 + len(replies)
    assert service.locks_held == 0


async def test_unknown_conversation_is_an_error(backend: Backend) -> None:
    service = ConversationService(backend.storage, catalog(), FakeClock())
    with pytest.raises(UnknownConversationError):
        await service.handle(404, TextReceived("hi"))
    with pytest.raises(UnknownConversationError):
        await service.start(404, channel="web", channel_user_id="x")


async def test_conversation_stays_on_its_script_version(backend: Backend) -> None:
    clock = FakeClock()
    old = ConversationService(backend.storage, catalog(), clock)
    conversation_id = await started(backend, old)
    edited = SOURCE.replace("prompt: Budget?", "prompt: What budget do you have in mind?")
    new = ConversationService(backend.storage, catalog(edited), clock)  # after a restart
    on_old = await new.handle(conversation_id, TextReceived("alpha"))
    assert on_old.state is not None
    assert on_old.state.script_version == load_script(SOURCE).version
    assert (await backend.transcript(conversation_id))[-1][1] == "Budget?"
    second_lead = await add_lead(backend, "lead-2")
    fresh = await new.start(second_lead, channel="web", channel_user_id="u2")
    assert fresh.state is not None
    assert fresh.state.script_version == load_script(edited).version
    after = await new.handle(fresh.conversation_id, TextReceived("alpha"))
    assert after.state is not None
    assert (await backend.transcript(fresh.conversation_id))[-1][
        1
    ] == "What budget do you have in mind?"


async def test_locks_do_not_accumulate(backend: Backend) -> None:
    service = ConversationService(backend.storage, catalog(), FakeClock())
    for number in range(20):
        result = await service.start(
            await add_lead(backend, f"l{number}"), channel="web", channel_user_id=f"u{number}"
        )
        await service.handle(result.conversation_id, TextReceived("beta"))
    assert service.locks_held == 0


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
async def test_two_workers_hammering_one_conversation_lose_nothing(
    kind: str, tmp_path: Path
) -> None:
    """Two engines (as two worker processes would have) and two services, one conversation."""
    async with open_backend(kind, tmp_path) as backend:
        assert backend.database is not None
        clock = FakeClock()
        first = ConversationService(backend.storage, catalog(), clock)
        conversation_id = await started(backend, first)
        other_database = connect(backend.database.url, schema=backend.database.schema)
        other_storage = SqlStorage(other_database)
        second = ConversationService(other_storage, catalog(), clock)
        per_worker = 15

        async def hammer(service: ConversationService, name: str) -> None:
            for number in range(per_worker):
                await service.handle(
                    conversation_id,
                    TextReceived(f"{name}-{number}"),
                    Receipt("web", f"{name}{number}"),
                )

        try:
            await asyncio.gather(
                hammer(first, "a"), hammer(second, "b"), hammer(first, "c"), hammer(second, "d")
            )
        finally:
            await other_storage.close()
            await other_database.dispose()
        lines = [
            text
            for author, text, _ in await backend.transcript(conversation_id)
            if author == "prospect"
        ]
        assert len(lines) == 4 * per_worker
        for name in "abcd":
            assert [line for line in lines if line.startswith(name)] == [
                f"{name}-{n}" for n in range(per_worker)
            ]
        assert await backend.version(conversation_id) == 1 + 4 * per_worker


async def test_a_chat_finds_its_lead_by_token(backend: Backend) -> None:
    signer = TokenSigner(b"s" * 32)
    service = ConversationService(backend.storage, catalog(), FakeClock())
    lead_id = await add_lead(backend)
    token = signer.sign(lead_id, NOW)
    assert await service.find_lead(token, signer) == lead_id
    assert await service.find_lead(f"/start {token}".split()[1], signer) == lead_id
    assert await service.find_lead("hello there", signer) is None
    assert await service.find_lead(token[:-2] + "xx", signer) is None
    expired = TokenSigner(b"s" * 32, lifetime=timedelta(seconds=-1)).sign(lead_id, NOW)
    assert await service.find_lead(expired, signer) is None


async def test_a_typed_reference_code_finds_the_lead(backend: Backend) -> None:
    new = NewLead("api", "coded", "quote", NOW, {"first_name": "Ana"})
    lead_id = await backend.storage.run(lambda tx: tx.leads.add(new, "K7Q2MX", NOW)[0].id)
    service = ConversationService(backend.storage, catalog(), FakeClock())
    assert (
        await service.find_lead("Hi! My reference is k7q2mx, thanks", TokenSigner(b"x" * 32))
        == lead_id
    )
    assert await service.find_lead("Hi! My reference is K7Q2MA", TokenSigner(b"x" * 32)) is None


async def test_open_starts_once_then_welcomes_back(backend: Backend) -> None:
    counting = Counting(backend.storage)
    service = ConversationService(counting, catalog(), FakeClock())
    lead_id = await add_lead(backend)
    first = await service.open(lead_id, channel="web", channel_user_id="lead-1")
    # Looking for the chat's conversation and starting it: one transaction, where they were two.
    assert counting.runs == 1
    assert [line[1] for line in await backend.transcript(first.conversation_id)] == [
        "Hi Ana!",
        "Which product?",
    ]
    await service.handle(first.conversation_id, TextReceived("alpha"))
    again = await service.open(lead_id, channel="web", channel_user_id="lead-1")
    assert again.conversation_id == first.conversation_id
    texts = [line[1] for line in await backend.transcript(first.conversation_id)]
    assert texts[-2:] == ["Welcome back!", "Budget?"]
    elsewhere = await service.open(lead_id, channel="telegram", channel_user_id="42")
    assert elsewhere.conversation_id != first.conversation_id


async def test_text_any_database_refuses_is_stored_cleaned(backend: Backend) -> None:
    """NUL (PostgreSQL refuses it) and a lone surrogate (no encoding writes it)."""
    service = ConversationService(backend.storage, catalog(), FakeClock())
    conversation_id = await started(backend, service)
    await service.handle(conversation_id, TextReceived("alp\x00ha"), Receipt("web", "n1"))
    await service.handle(conversation_id, TextReceived("20k \ud800"), Receipt("web", "n2"))
    texts = [
        text
        for author, text, _ in await backend.transcript(conversation_id)
        if author == "prospect"
    ]
    assert texts == ["alpha", "20k ?"]


async def test_an_overlong_external_id_still_dedupes(backend: Backend) -> None:
    long_id = "x" * 500
    new = NewLead("api", long_id, "quote", NOW)
    first = await backend.storage.run(lambda tx: tx.leads.add(new, "R1", NOW))
    again = await backend.storage.run(lambda tx: tx.leads.add(new, "R2", NOW))
    assert first[1]
    assert not again[1]
    assert again[0].id == first[0].id


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
async def test_two_workers_opening_one_chat_make_one_conversation(
    kind: str, tmp_path: Path
) -> None:
    async with open_backend(kind, tmp_path) as backend:
        assert backend.database is not None
        lead_id = await add_lead(backend)
        other_database = connect(backend.database.url, schema=backend.database.schema)
        other_storage = SqlStorage(other_database)
        try:
            services = [
                ConversationService(storage, catalog(), FakeClock())
                for storage in (backend.storage, other_storage, backend.storage, other_storage)
            ]
            opened = await asyncio.gather(
                *(s.open(lead_id, channel="web", channel_user_id="u1") for s in services)
            )
        finally:
            await other_storage.close()
            await other_database.dispose()
        assert len({result.conversation_id for result in opened}) == 1
