"""A chat's first message finds its lead: a deep link's token, a typed code, or a new lead."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.binding import ChatMessage, ChatRouter
from bot.inbound import TextReceived
from bot.intake import IntakeService
from bot.ports import Storage
from bot.records import NewLead, Receipt
from bot.service import ConversationService, TurnResult
from bot.tokens import TokenSigner
from storage.db import connect
from storage.transactions import SqlStorage
from tests.backends import BACKENDS, Backend, Counting, open_backend
from tests.conftest import NOW, FakeClock
from tests.test_service import catalog

SIGNER = TokenSigner(b"binding-secret-0123456789abcdef")


@pytest.fixture(params=BACKENDS)
async def backend(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Backend]:
    async with open_backend(request.param, tmp_path) as opened:
        yield opened


def router(
    backend: Backend, storage: Storage | None = None
) -> tuple[ChatRouter, ConversationService]:
    clock = FakeClock()
    storage = storage or backend.storage
    conversations = ConversationService(storage, catalog(), clock)
    intake = IntakeService(storage, catalog(), SIGNER, clock, default_script="quote")
    return ChatRouter(conversations, intake, SIGNER), conversations


def message(text: str, update: int, *, start: str | None = None, chat: str = "42") -> ChatMessage:
    return ChatMessage(
        channel="telegram",
        chat=chat,
        inbound=TextReceived(text),
        receipt=Receipt("telegram", f"bot:{update}"),
        start=start,
        profile={"first_name": "Ana"},
    )


async def form_lead(backend: Backend, reference: str = "K7Q2MX") -> int:
    new = NewLead("form", "f-1", "quote", NOW, {"first_name": "Lea"})
    return await backend.storage.run(lambda tx: tx.leads.add(new, reference, NOW)[0].id)


async def test_a_deep_link_token_binds_the_chat_to_the_form_lead(backend: Backend) -> None:
    chats, _ = router(backend)
    lead_id = await form_lead(backend)
    opened = await chats.receive(message("/start", 1, start=SIGNER.sign(lead_id, NOW)))
    assert opened.applied
    assert opened.effects[0].text == "Hi Lea!"  # type: ignore[union-attr]  # the form's name
    answered = await chats.receive(message("alpha", 2))
    assert answered.conversation_id == opened.conversation_id
    assert answered.state is not None
    assert answered.state.answers == {"product": "a"}


async def test_a_typed_reference_code_binds_a_first_message(backend: Backend) -> None:
    chats, _ = router(backend)
    lead_id = await form_lead(backend)
    opened = await chats.receive(message("hi! my code is k7q2mx", 1))
    lead = await backend.storage.run(
        lambda tx: tx.conversations.lock_latest_in_chat("telegram", "42")
    )
    assert opened.applied
    assert lead is not None
    assert lead.lead_id == lead_id


async def test_a_chat_without_a_form_gets_a_lead_of_its_own(backend: Backend) -> None:
    chats, _ = router(backend)
    opened = await chats.receive(message("/start", 1, start=""))
    conversation = await backend.storage.run(
        lambda tx: tx.conversations.lock_latest_in_chat("telegram", "42")
    )
    assert conversation is not None
    lead = await backend.storage.run(lambda tx: tx.leads.get(conversation.lead_id))
    assert lead is not None
    assert (lead.source, lead.external_id) == ("telegram", "42")
    assert lead.fields["first_name"] == "Ana"  # what Telegram told us about the prospect
    assert opened.effects[0].text == "Hi Ana!"  # type: ignore[union-attr]
    again = await chats.receive(message("/start", 2, start=""))  # a plain /start later
    assert again.conversation_id == opened.conversation_id


async def test_a_chats_first_message_is_one_trip_to_the_database(backend: Backend) -> None:
    counting = Counting(backend.storage)
    chats, _ = router(backend, counting)
    lead_id = await form_lead(backend)
    own = await chats.receive(message("/start", 1, start=""))  # a lead of the chat's own
    coded = await chats.receive(message("my code is k7q2mx", 2, chat="43"))
    # Finding no conversation in the chat, finding or storing its lead, opening a conversation
    # and running its first turn: one transaction, where they were three.
    assert counting.runs == 2
    assert own.applied
    assert coded.applied
    conversation = await backend.storage.run(
        lambda tx: tx.conversations.lock_latest_in_chat("telegram", "43")
    )
    assert conversation is not None
    assert conversation.lead_id == lead_id
    assert [text for _, text, _ in await backend.transcript(coded.conversation_id)] == [
        "my code is k7q2mx",  # kept: it opened the conversation, it answered nothing
        "Hi Lea!",
        "Which product?",
    ]


async def test_a_campaign_tag_in_the_start_payload_is_attribution(backend: Backend) -> None:
    chats, _ = router(backend)
    await chats.receive(message("/start", 1, start="spring_promo"))
    conversation = await backend.storage.run(
        lambda tx: tx.conversations.lock_latest_in_chat("telegram", "42")
    )
    assert conversation is not None
    lead = await backend.storage.run(lambda tx: tx.leads.get(conversation.lead_id))
    assert lead is not None
    assert lead.external_id == "42:spring_promo"


async def test_a_repeated_start_update_changes_nothing(backend: Backend) -> None:
    chats, _ = router(backend)
    lead_id = await form_lead(backend)
    token = SIGNER.sign(lead_id, NOW)
    first = await chats.receive(message("/start", 7, start=token))
    again = await chats.receive(message("/start", 7, start=token))
    assert first.applied
    assert not again.applied
    transcript = await backend.transcript(first.conversation_id)
    assert [text for _, text, _ in transcript] == ["Hi Lea!", "Which product?"]


async def test_two_first_messages_at_once_are_both_applied(backend: Backend) -> None:
    chats, _ = router(backend)
    first, second = await asyncio.gather(
        chats.receive(message("hello", 1)), chats.receive(message("alpha", 2))
    )
    assert first.applied
    assert second.applied
    assert second.conversation_id == first.conversation_id
    transcript = await backend.transcript(first.conversation_id)
    assert ("prospect", "alpha", "received") in transcript  # the second text was not lost
    assert second.state is not None
    assert second.state.answers == {"product": "a"}


async def test_a_deep_link_payload_never_binds_by_reference_code(backend: Backend) -> None:
    chats, _ = router(backend)
    lead_id = await form_lead(backend)
    await chats.receive(message("/start", 1, start="K7Q2MX"))  # someone else's code
    conversation = await backend.storage.run(
        lambda tx: tx.conversations.lock_latest_in_chat("telegram", "42")
    )
    assert conversation is not None
    assert conversation.lead_id != lead_id  # a lead of this chat's own, tagged K7Q2MX


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
async def test_two_workers_taking_one_new_chats_first_messages_make_one_conversation(
    kind: str, tmp_path: Path
) -> None:
    """Each worker has its own in-process chat lock, so both find no conversation at once; the
    one that loses the race to open it applies its message in the winner's conversation."""
    async with open_backend(kind, tmp_path) as backend:
        assert backend.database is not None
        other_database = connect(backend.database.url, schema=backend.database.schema)
        other_storage = SqlStorage(other_database)
        try:
            routers = [router(backend, storage)[0] for storage in (backend.storage, other_storage)]
            texts = ["hello", "alpha", "hi there", "beta"]
            outcomes = await asyncio.gather(
                *(
                    routers[number % 2].receive(message(text, number))
                    for number, text in enumerate(texts)
                ),
                return_exceptions=True,  # all done before the database goes away
            )
        finally:
            await other_storage.close()
            await other_database.dispose()
        results = [outcome for outcome in outcomes if isinstance(outcome, TurnResult)]
        assert results == outcomes  # no worker failed
        assert all(result.applied for result in results)
        assert len({result.conversation_id for result in results}) == 1
        transcript = await backend.transcript(results[0].conversation_id)
        said = [text for author, text, _ in transcript if author == "prospect"]
        assert sorted(said) == sorted(texts)  # none lost, none twice
        leads = await backend.storage.run(
            lambda tx: [tx.leads.get(lead_id) for lead_id in range(1, 10)]
        )
        assert [lead.external_id for lead in leads if lead is not None] == ["42"]
