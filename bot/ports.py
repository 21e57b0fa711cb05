"""The ports the service talks through; `storage` implements them, tests fake them.

A turn's reads and writes are plain synchronous calls on a `Transaction`; `Storage.run` runs
that work in one database transaction, off the event loop, and commits it (or rolls it back
if the work raises). That shape lets SQLite run a whole turn in one hop to its thread and group
the commits of concurrent turns.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, Protocol, TypeVar

from bot.crm_records import ConfiguredHook, Delivery, LeadView, NewEvent, Subscription
from bot.records import (
    Appointment,
    Conversation,
    DeliveryTarget,
    DueTimer,
    Lead,
    NewAppointment,
    NewLead,
    OutboxItem,
    Receipt,
    Window,
)
from bot.state import ConversationState


class LeadRepository(Protocol):
    def add(self, lead: NewLead, reference: str, now: datetime) -> tuple[Lead, bool]:
        """Store a lead; on a repeated (source, external_id), return the stored one and False.
        Raises ReferenceTakenError when `reference` belongs to another lead."""

    def get(self, lead_id: int) -> Lead | None: ...

    def by_reference(self, reference: str) -> Lead | None: ...

    def latest_with_phone(self, phone: str, since: datetime) -> Lead | None:
        """The newest lead with this E.164 number submitted after `since`."""

    def mark_contacted(self, lead_id: int, now: datetime) -> None:
        """The bot wrote first to this lead (first contact), now."""

    def chatting_among(self, lead_ids: Sequence[int]) -> set[int]:
        """Those of `lead_ids` whose conversation has started."""

    def update_progress(
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
    def add(
        self,
        *,
        lead_id: int,
        channel: str,
        channel_user_id: str,
        script_id: str,
        script_version: str,
        now: datetime,
    ) -> Conversation: ...

    def find(self, lead_id: int, channel: str, channel_user_id: str) -> Conversation | None:
        """The conversation this lead already has in this chat, if any."""

    def lock_latest_in_chat(self, channel: str, channel_user_id: str) -> Conversation | None:
        """The newest conversation in this chat, whatever its lead, held for this transaction
        as `lock` holds it."""

    def lock(self, conversation_id: int) -> Conversation | None:
        """Load a conversation and hold it for this transaction (a row lock where supported)."""

    def mark_unreachable(self, conversation_id: int, now: datetime) -> None: ...

    def mark_abandoned(self, conversation_id: int, question_id: str | None, now: datetime) -> None:
        """The conversation expired in silence at this question (drop-off figures)."""

    def take(self, conversation_id: int, rep_id: int, rep_name: str) -> str | None:
        """Hold the conversation for this rep; None when it is theirs now, else the name of
        the rep who holds it (two reps pressing at once: one wins)."""

    def release(self, conversation_id: int) -> None:
        """Nobody holds the conversation any more."""

    def windows(self, conversation_ids: Sequence[int]) -> dict[int, Window]:
        """When each conversation's prospect last wrote, and what was sent since."""

    def count_sent(self, conversation_id: int) -> None:
        """One more message went out since the prospect last wrote."""

    def save(
        self, conversation: Conversation, state: ConversationState, *, now: datetime, inbound: bool
    ) -> None:
        """Store the new state; fails with ConcurrentUpdateError if the version moved meanwhile."""


class Transcript(Protocol):
    def add(
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

    def set_delivery_status(
        self, provider_message_id: str, status: str, error: str | None
    ) -> DeliveryTarget | None:
        """Move a sent line's status forward; None when no line has that provider id."""


class Outbox(Protocol):
    def add(
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

    def claim_due(self, now: datetime, limit: int, lease: timedelta) -> list[OutboxItem]:
        """Take due rows for `lease`; rows another worker holds are skipped, not waited for."""

    def mark_sent(self, item: OutboxItem, provider_id: str | None, now: datetime) -> None: ...

    def retry_later(self, item: OutboxItem, due_at: datetime, error: str) -> None: ...

    def mark_failed(self, item: OutboxItem, error: str, now: datetime) -> None: ...

    def fail_pending(self, conversation_id: int, error: str, now: datetime) -> None:
        """Give up every pending item of this conversation."""

    def has_pending(self, conversation_id: int) -> bool:
        """Whether an item of this conversation still waits to go out."""

    def hold(self, item: OutboxItem, reason: str, now: datetime) -> None:
        """Keep the item unsent, marked with why (outside a channel's window): reps see it."""

    def skip(self, item: OutboxItem, reason: str, now: datetime) -> None:
        """Drop the item unsent: it is no longer needed (e.g. the prospect wrote first)."""


class AuditLog(Protocol):
    def add(
        self,
        *,
        conversation_id: int,
        lead_id: int,
        rep_id: int | None,
        actor: str,
        action: str,
        detail: str | None,
        now: datetime,
    ) -> None: ...


class Suppressions(Protocol):
    def add(self, address: str, channel: str, reason: str, now: datetime) -> None:
        """Put an address on the list (a second opt-out keeps the first reason)."""

    def remove(self, address: str) -> None: ...

    def among(self, addresses: Sequence[str]) -> set[str]:
        """Those of `addresses` that are on the list."""


class Receipts(Protocol):
    def add(self, receipt: Receipt, now: datetime) -> bool:
        """Record a delivery; False when it was seen before (a duplicate)."""


class Timers(Protocol):
    def schedule(self, conversation_id: int, kind: str, seq: int, due_at: datetime) -> None: ...

    def cancel_all(self, conversation_id: int) -> None: ...

    def claim_due(
        self, now: datetime, limit: int, lease: timedelta, kinds: Sequence[str]
    ) -> list[DueTimer]:
        """Take due timers of these kinds for `lease`; others' claims are skipped."""

    def defer(self, timer_id: int, due_at: datetime) -> None:
        """Release a claimed timer to come due again at `due_at` (e.g. after quiet hours)."""

    def done(self, timer: DueTimer) -> None:
        """Forget a fired timer (the one claimed: not a newer one that took over its id)."""


class ScriptVersions(Protocol):
    def ensure(self, script_id: str, version: str, source: str, now: datetime) -> None: ...

    def source(self, version: str) -> str | None: ...


class CrmStore(Protocol):
    """CRM events and their deliveries (bot/crm_*.py, storage/crm.py)."""

    def lead_view(self, lead_id: int) -> LeadView | None: ...

    def record(self, event: NewEvent, subscription_ids: Sequence[int], now: datetime) -> int:
        """Store the event with the lead's next sequence number, and a delivery of it to each
        subscription; return the sequence number."""

    def subscriptions(self) -> list[Subscription]:
        """Every active subscription."""

    def sync_configured(self, hooks: Sequence[ConfiguredHook], now: datetime) -> None:
        """Make the settings' webhooks the settings subscriptions: new ones added, changed ones
        updated (and enabled again when their URL changed), missing ones removed."""

    def claim_due(self, now: datetime, limit: int, lease: timedelta) -> list[Delivery]:
        """Take due deliveries of active subscriptions for `lease`, only the first pending one
        of each (subscription, lead), so a lead's events arrive in sequence order."""

    def delivered(self, delivery: Delivery, status: int, now: datetime) -> None: ...

    def retry_later(
        self, delivery: Delivery, due_at: datetime, status: int | None, error: str
    ) -> None: ...

    def failed(self, delivery: Delivery, status: int | None, error: str, now: datetime) -> None:
        """A dead letter: kept, listed, and sent again by `leadbot deliveries retry`."""

    def disable(self, subscription_id: int, reason: str, now: datetime) -> None:
        """Stop the subscription; its pending deliveries become dead letters."""


class Appointments(Protocol):
    """Bookings (storage/appointments.py). Capacity is the database's to enforce: a booking
    holds a seat, unique per (calendar, location, starts_at, seat), seats 1..capacity."""

    def seats_taken(
        self, calendars: Sequence[str], since: datetime, until: datetime
    ) -> dict[tuple[str, str, datetime], int]:
        """Booked seats per (calendar, location, starts_at) for slots starting in [since, until)."""

    def book(self, new: NewAppointment, capacity: int, now: datetime) -> Appointment | None:
        """Take the lowest free seat; None when all `capacity` seats are taken (on PostgreSQL
        a seat another transaction is taking counts once that one commits)."""

    def cancel_booked(
        self, conversation_id: int, *, by: str, now: datetime, keep: int | None = None
    ) -> list[Appointment]:
        """Cancel the conversation's booked appointments but `keep`, freeing their seats."""

    def get(self, appointment_id: int) -> Appointment | None: ...

    def between(
        self,
        since: datetime,
        until: datetime,
        *,
        calendar: str | None = None,
        location: str | None = None,
        booked_only: bool = False,
    ) -> list[Appointment]:
        """Appointments starting in [since, until), in time order (a console's day)."""


class Transaction(Protocol):
    """Every repository, inside one database transaction."""

    @property
    def leads(self) -> LeadRepository: ...

    @property
    def conversations(self) -> ConversationRepository: ...

    @property
    def transcript(self) -> Transcript: ...

    @property
    def outbox(self) -> Outbox: ...

    @property
    def receipts(self) -> Receipts: ...

    @property
    def suppressions(self) -> Suppressions: ...

    @property
    def audit(self) -> AuditLog: ...

    @property
    def timers(self) -> Timers: ...

    @property
    def scripts(self) -> ScriptVersions: ...

    @property
    def crm(self) -> CrmStore: ...

    @property
    def appointments(self) -> Appointments: ...


T = TypeVar("T")


class Storage(Protocol):
    async def run(self, work: Callable[[Transaction], T]) -> T:
        """Run `work` in one transaction and commit; return only once it is committed."""
