"""The ports the service talks through; `storage` implements them, tests fake them."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from types import TracebackType
from typing import Any, Protocol, Self

from bot.records import Conversation, Lead, NewLead, OutboxItem, Receipt
from bot.state import ConversationState


class LeadRepository(Protocol):
    async def add(self, lead: NewLead, reference: str, now: datetime) -> tuple[Lead, bool]:
        """Store a lead; on a repeated (source, external_id), return the stored one and False."""

    async def get(self, lead_id: int) -> Lead | None: ...

    async def update_progress(
        self,
        lead_id: int,
        *,
        answers: Mapping[str, Any],
        now: datetime,
        consent: tuple[str, datetime] | None = None,
        outcome: tuple[str, int, Sequence[str], bool | None] | None = None,
        started: bool = False,
    ) -> None:
        """Merge answers; record consent, the outcome (name, score, reasons, qualified) and
        the start of the conversation when given."""


class ConversationRepository(Protocol):
    async def add(
        self,
        *,
        lead_id: int,
        channel: str,
        channel_user_id: str,
        script_id: str,
        script_version: str,
        now: datetime,
    ) -> Conversation: ...

    async def lock(self, conversation_id: int) -> Conversation | None:
        """Load a conversation and hold it for this transaction (a row lock where supported)."""

    async def save(
        self, conversation: Conversation, state: ConversationState, *, now: datetime, inbound: bool
    ) -> None:
        """Store the new state; fails with ConcurrentUpdateError if the version moved meanwhile."""


class Transcript(Protocol):
    async def add(
        self,
        *,
        conversation_id: int,
        author: str,
        text: str,
        status: str,
        now: datetime,
        options: Sequence[Mapping[str, str]] = (),
        question_id: str | None = None,
        provider_message_id: str | None = None,
    ) -> int: ...


class Outbox(Protocol):
    async def add(
        self,
        *,
        kind: str,
        idempotency_key: str,
        payload: Mapping[str, Any],
        due_at: datetime,
        now: datetime,
        conversation_id: int | None = None,
        message_id: int | None = None,
    ) -> int: ...

    async def claim_due(self, now: datetime, limit: int, lease: timedelta) -> list[OutboxItem]:
        """Take due rows for `lease`; rows another worker holds are skipped, not waited for."""

    async def mark_sent(self, item: OutboxItem, provider_id: str | None, now: datetime) -> None: ...

    async def retry_later(self, item: OutboxItem, due_at: datetime, error: str) -> None: ...

    async def mark_failed(self, item: OutboxItem, error: str, now: datetime) -> None: ...


class Receipts(Protocol):
    async def add(self, receipt: Receipt, now: datetime) -> bool:
        """Record a delivery; False when it was seen before (a duplicate)."""


class Timers(Protocol):
    async def schedule(
        self, conversation_id: int, kind: str, seq: int, due_at: datetime
    ) -> None: ...

    async def cancel_all(self, conversation_id: int) -> None: ...


class ScriptVersions(Protocol):
    async def ensure(self, script_id: str, version: str, source: str, now: datetime) -> None: ...

    async def source(self, version: str) -> str | None: ...


class UnitOfWork(Protocol):
    """One transaction over every repository; leaving without `commit` rolls back."""

    leads: LeadRepository
    conversations: ConversationRepository
    transcript: Transcript
    outbox: Outbox
    receipts: Receipts
    timers: Timers
    scripts: ScriptVersions

    async def __aenter__(self) -> Self: ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None: ...

    async def commit(self) -> None: ...
