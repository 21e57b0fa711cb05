"""In-memory fakes of our own ports, and a recording sender that fails on demand."""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, TypeVar

from bot.crm_records import LeadView
from bot.errors import (
    ConcurrentUpdateError,
    ConversationExistsError,
    DeliveryError,
    ReferenceTakenError,
)
from bot.inbound import APPOINTMENT_TIMERS
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
from storage.conversations import STATUS_RANK
from tests.memory_crm import MemoryCrm, MemoryCrmData

T = TypeVar("T")


@dataclass
class MemoryData:
    leads: dict[int, dict[str, Any]] = field(default_factory=dict)
    conversations: dict[int, Conversation] = field(default_factory=dict)
    messages: list[dict[str, Any]] = field(default_factory=list)
    outbox: dict[int, dict[str, Any]] = field(default_factory=dict)
    receipts: set[tuple[str, str]] = field(default_factory=set)
    timers: list[dict[str, Any]] = field(default_factory=list)
    scripts: dict[str, str] = field(default_factory=dict)
    unreachable: set[int] = field(default_factory=set)
    suppressed: dict[str, str] = field(default_factory=dict)  # address -> reason
    windows: dict[int, Window] = field(default_factory=dict)
    audit: list[dict[str, Any]] = field(default_factory=list)
    abandoned: dict[int, tuple[str | None, datetime]] = field(default_factory=dict)
    next_timer_id: int = 0
    crm: MemoryCrmData = field(default_factory=MemoryCrmData)
    appointments: dict[int, Appointment] = field(default_factory=dict)


class _Leads:
    def __init__(self, data: MemoryData) -> None:
        self.data = data

    def add(self, lead: NewLead, reference: str, now: datetime) -> tuple[Lead, bool]:
        for lead_id, row in self.data.leads.items():
            if (row["source"], row["external_id"]) == (lead.source, lead.external_id):
                return self._lead(lead_id), False
        if any(row["reference"] == reference for row in self.data.leads.values()):
            raise ReferenceTakenError(reference)
        lead_id = len(self.data.leads) + 1
        self.data.leads[lead_id] = {
            "source": lead.source,
            "external_id": lead.external_id,
            "reference": reference,
            "script_id": lead.script_id,
            "fields": dict(lead.fields),
            "language": lead.language,
            "answers": {},
            "outcome": None,
            "score": None,
            "phone": lead.phone,
            "submitted_at": lead.submitted_at,
            "contacted_at": None,
        }
        return self._lead(lead_id), True

    def _lead(self, lead_id: int) -> Lead:
        row = self.data.leads[lead_id]
        return Lead(
            lead_id,
            row["reference"],
            row["source"],
            row["external_id"],
            row["script_id"],
            row["fields"],
            row["language"],
            row["answers"],
            row["outcome"],
            row["score"],
        )

    def get(self, lead_id: int) -> Lead | None:
        return self._lead(lead_id) if lead_id in self.data.leads else None

    def by_reference(self, reference: str) -> Lead | None:
        for lead_id, row in self.data.leads.items():
            if row["reference"] == reference.upper():
                return self._lead(lead_id)
        return None

    def latest_with_phone(self, phone: str, since: datetime) -> Lead | None:
        found = [
            lead_id
            for lead_id, row in self.data.leads.items()
            if row["phone"] == phone and row["submitted_at"] >= since
        ]
        return self._lead(found[-1]) if found else None

    def mark_contacted(self, lead_id: int, now: datetime) -> None:
        self.data.leads[lead_id]["contacted_at"] = now

    def chatting_among(self, lead_ids: Sequence[int]) -> set[int]:
        return {i for i in lead_ids if self.data.leads.get(i, {}).get("started_at") is not None}

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
        row = self.data.leads[lead_id]
        row["answers"] = {**row["answers"], **answers}
        if outcome is not None:
            row["outcome"], row["score"] = outcome[0], outcome[1]
        if started:
            row.setdefault("started_at", now)


class _Conversations:
    def __init__(self, data: MemoryData) -> None:
        self.data = data

    def add(
        self,
        *,
        lead_id: int,
        channel: str,
        channel_user_id: str,
        script_id: str,
        script_version: str,
        now: datetime,
    ) -> Conversation:
        if any(
            (c.lead_id, c.channel, c.channel_user_id) == (lead_id, channel, channel_user_id)
            for c in self.data.conversations.values()
        ):
            raise ConversationExistsError(str(lead_id))
        conversation = Conversation(
            len(self.data.conversations) + 1,
            lead_id,
            channel,
            channel_user_id,
            script_id,
            script_version,
            None,
            0,
        )
        self.data.conversations[conversation.id] = conversation
        return conversation

    def find(self, lead_id: int, channel: str, channel_user_id: str) -> Conversation | None:
        found = [
            c
            for c in self.data.conversations.values()
            if (c.lead_id, c.channel, c.channel_user_id) == (lead_id, channel, channel_user_id)
        ]
        return found[-1] if found else None

    def lock_latest_in_chat(self, channel: str, channel_user_id: str) -> Conversation | None:
        found = [
            c
            for c in self.data.conversations.values()
            if (c.channel, c.channel_user_id) == (channel, channel_user_id)
        ]
        return found[-1] if found else None

    def lock(self, conversation_id: int) -> Conversation | None:
        return self.data.conversations.get(conversation_id)

    def mark_unreachable(self, conversation_id: int, now: datetime) -> None:
        self.data.unreachable.add(conversation_id)

    def mark_abandoned(self, conversation_id: int, question_id: str | None, now: datetime) -> None:
        self.data.abandoned[conversation_id] = (question_id, now)

    def take(self, conversation_id: int, rep_id: int, rep_name: str) -> str | None:
        stored = self.data.conversations[conversation_id]
        if stored.held_by not in (None, rep_id):
            return stored.held_by_name or "another rep"
        self.data.conversations[conversation_id] = replace(
            stored, held_by=rep_id, held_by_name=rep_name
        )
        return None

    def release(self, conversation_id: int) -> None:
        stored = self.data.conversations[conversation_id]
        self.data.conversations[conversation_id] = replace(stored, held_by=None, held_by_name=None)

    def windows(self, conversation_ids: Sequence[int]) -> dict[int, Window]:
        return {
            cid: self.data.windows.get(cid, Window(None, 0))
            for cid in conversation_ids
            if cid in self.data.conversations
        }

    def count_sent(self, conversation_id: int) -> None:
        window = self.data.windows.get(conversation_id, Window(None, 0))
        self.data.windows[conversation_id] = replace(
            window, sent_since_inbound=window.sent_since_inbound + 1
        )

    def save(
        self, conversation: Conversation, state: ConversationState, *, now: datetime, inbound: bool
    ) -> None:
        stored = self.data.conversations[conversation.id]
        if stored.version != conversation.version:
            raise ConcurrentUpdateError(str(conversation.id))
        self.data.conversations[conversation.id] = replace(
            stored, state=state, version=stored.version + 1
        )
        if inbound:
            self.data.windows[conversation.id] = Window(now, 0)


class _Transcript:
    def __init__(self, data: MemoryData) -> None:
        self.data = data

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
    ) -> int:
        self.data.messages.append(
            {
                "id": len(self.data.messages) + 1,
                "conversation_id": conversation_id,
                "author": author,
                "text": text,
                "status": status,
                "provider_id": provider_message_id,
                "error": None,
            }
        )
        return len(self.data.messages)

    def set_delivery_status(
        self, provider_message_id: str, status: str, error: str | None
    ) -> DeliveryTarget | None:
        for message in self.data.messages:
            if message["provider_id"] == provider_message_id:
                if STATUS_RANK.get(status, 0) > STATUS_RANK.get(message["status"], 0):
                    message.update(status=status, error=error)
                conversation = self.data.conversations[message["conversation_id"]]
                return DeliveryTarget(
                    conversation.id, conversation.channel, conversation.channel_user_id
                )
        return None


class _Outbox:
    def __init__(self, data: MemoryData) -> None:
        self.data = data

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
    ) -> int:
        item_id = len(self.data.outbox) + 1
        self.data.outbox[item_id] = {
            "kind": kind,
            "key": idempotency_key,
            "payload": dict(payload),
            "due_at": due_at,
            "status": "pending",
            "attempts": 0,
            "claimed_until": None,
            "error": None,
            "conversation_id": conversation_id,
            "message_id": message_id,
            "provider_id": None,
        }
        return item_id

    def claim_due(self, now: datetime, limit: int, lease: timedelta) -> list[OutboxItem]:
        heads: dict[object, int] = {}  # the first pending item of each conversation
        for item_id, row in sorted(self.data.outbox.items()):
            key = row["conversation_id"] if row["conversation_id"] is not None else ("", item_id)
            if row["status"] == "pending" and key not in heads:
                heads[key] = item_id
        due = sorted(
            (row["due_at"], item_id)
            for item_id, row in self.data.outbox.items()
            if item_id in heads.values()
            and row["due_at"] <= now
            and (row["claimed_until"] is None or row["claimed_until"] < now)
        )[:limit]
        items = []
        for _due, item_id in due:
            row = self.data.outbox[item_id]
            row["claimed_until"] = now + lease
            row["attempts"] += 1
            items.append(
                OutboxItem(
                    item_id,
                    row["kind"],
                    row["key"],
                    row["payload"],
                    row["attempts"],
                    row["conversation_id"],
                    row["message_id"],
                )
            )
        return items

    def mark_sent(self, item: OutboxItem, provider_id: str | None, now: datetime) -> None:
        self.data.outbox[item.id].update(status="sent", provider_id=provider_id, claimed_until=None)
        for message in self.data.messages:
            if message["id"] == item.message_id:
                message.update(status="sent", provider_id=provider_id)

    def hold(self, item: OutboxItem, reason: str, now: datetime) -> None:
        self.data.outbox[item.id].update(status="held", error=reason, claimed_until=None)

    def skip(self, item: OutboxItem, reason: str, now: datetime) -> None:
        self.data.outbox[item.id].update(status="skipped", error=reason, claimed_until=None)
        for message in self.data.messages:
            if message["id"] == item.message_id:
                message.update(status="skipped", error=reason)

    def retry_later(self, item: OutboxItem, due_at: datetime, error: str) -> None:
        self.data.outbox[item.id].update(due_at=due_at, error=error, claimed_until=None)

    def mark_failed(self, item: OutboxItem, error: str, now: datetime) -> None:
        self.data.outbox[item.id].update(status="failed", error=error, claimed_until=None)

    def has_pending(self, conversation_id: int) -> bool:
        return any(
            row["conversation_id"] == conversation_id and row["status"] == "pending"
            for row in self.data.outbox.values()
        )

    def fail_pending(self, conversation_id: int, error: str, now: datetime) -> None:
        for row in self.data.outbox.values():
            if row["conversation_id"] == conversation_id and row["status"] == "pending":
                row.update(status="failed", error=error, claimed_until=None)


class _Receipts:
    def __init__(self, data: MemoryData) -> None:
        self.data = data

    def add(self, receipt: Receipt, now: datetime) -> bool:
        key = (receipt.channel, receipt.provider_id)
        if key in self.data.receipts:
            return False
        self.data.receipts.add(key)
        return True


class _Suppressions:
    def __init__(self, data: MemoryData) -> None:
        self.data = data

    def add(self, address: str, channel: str, reason: str, now: datetime) -> None:
        self.data.suppressed.setdefault(address, reason)

    def remove(self, address: str) -> None:
        self.data.suppressed.pop(address, None)

    def among(self, addresses: Sequence[str]) -> set[str]:
        return {address for address in addresses if address in self.data.suppressed}


class _Audit:
    def __init__(self, data: MemoryData) -> None:
        self.data = data

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
    ) -> None:
        self.data.audit.append(
            {"conversation_id": conversation_id, "actor": actor, "action": action, "detail": detail}
        )


class _Timers:
    def __init__(self, data: MemoryData) -> None:
        self.data = data

    def schedule(self, conversation_id: int, kind: str, seq: int, due_at: datetime) -> None:
        self.data.next_timer_id += 1
        self.data.timers.append(
            {
                "id": self.data.next_timer_id,
                "conversation_id": conversation_id,
                "kind": kind,
                "seq": seq,
                "due_at": due_at,
                "claimed_until": None,
            }
        )

    def claim_due(
        self, now: datetime, limit: int, lease: timedelta, kinds: Sequence[str]
    ) -> list[DueTimer]:
        due = [
            t
            for t in sorted(self.data.timers, key=lambda t: (t["due_at"], t["id"]))
            if t["due_at"] <= now
            and t["kind"] in kinds
            and (t["claimed_until"] is None or t["claimed_until"] < now)
        ][:limit]
        for timer in due:
            timer["claimed_until"] = now + lease
        return [self._due(t) for t in due]

    def _due(self, timer: dict[str, Any]) -> DueTimer:
        conversation = self.data.conversations[timer["conversation_id"]]
        phone = self.data.leads[conversation.lead_id].get("phone")
        if phone is None and conversation.channel in ("sms", "whatsapp"):
            phone = conversation.channel_user_id
        timezone = conversation.state.timezone if conversation.state else None
        return DueTimer(timer["id"], conversation.id, timer["kind"], timer["seq"], phone, timezone)

    def defer(self, timer_id: int, due_at: datetime) -> None:
        for timer in self.data.timers:
            if timer["id"] == timer_id:
                timer.update(due_at=due_at, claimed_until=None)

    def done(self, timer: DueTimer) -> None:
        self.data.timers = [
            t
            for t in self.data.timers
            if (t["id"], t["kind"], t["seq"]) != (timer.id, timer.kind, timer.seq)
        ]

    def cancel_all(self, conversation_id: int) -> None:
        self.data.timers = [
            t
            for t in self.data.timers
            if t["conversation_id"] != conversation_id or t["kind"] in APPOINTMENT_TIMERS
        ]


class _Appointments:
    """Seats as storage/appointments.py holds them: unique per (calendar, place, start)."""

    def __init__(self, data: MemoryData) -> None:
        self.data = data

    def seats_taken(
        self, calendars: Sequence[str], since: datetime, until: datetime
    ) -> dict[tuple[str, str, datetime], int]:
        taken: dict[tuple[str, str, datetime], int] = {}
        for row in self.data.appointments.values():
            if row.calendar in calendars and since <= row.starts_at < until and row.seat:
                key = (row.calendar, row.location, row.starts_at)
                taken[key] = taken.get(key, 0) + 1
        return taken

    def book(self, new: NewAppointment, capacity: int, now: datetime) -> Appointment | None:
        held = {
            row.seat
            for row in self.data.appointments.values()
            if (row.calendar, row.location, row.starts_at)
            == (new.calendar, new.location, new.starts_at)
        }
        seat = next((n for n in range(1, capacity + 1) if n not in held), None)
        if seat is None:
            return None
        appointment = Appointment(
            len(self.data.appointments) + 1,
            new.lead_id,
            new.conversation_id,
            new.script_id,
            new.question_id,
            new.calendar,
            new.location,
            new.starts_at,
            new.ends_at,
            "booked",
            seat,
            new.booked_by,
            now,
        )
        self.data.appointments[appointment.id] = appointment
        return appointment

    def cancel_booked(
        self, conversation_id: int, *, by: str, now: datetime, keep: int | None = None
    ) -> list[Appointment]:
        cancelled = []
        for row in list(self.data.appointments.values()):
            if row.conversation_id == conversation_id and row.status == "booked" and row.id != keep:
                gone = replace(
                    row, status="cancelled", seat=None, cancelled_at=now, cancelled_by=by
                )
                self.data.appointments[row.id] = gone
                cancelled.append(gone)
        return cancelled

    def get(self, appointment_id: int) -> Appointment | None:
        return self.data.appointments.get(appointment_id)

    def between(
        self,
        since: datetime,
        until: datetime,
        *,
        calendar: str | None = None,
        location: str | None = None,
        booked_only: bool = False,
    ) -> list[Appointment]:
        found = [
            row
            for row in self.data.appointments.values()
            if since <= row.starts_at < until
            and calendar in (None, row.calendar)
            and location in (None, row.location)
            and (row.status == "booked" or not booked_only)
        ]
        return sorted(found, key=lambda row: (row.starts_at, row.location, row.id))


class _Scripts:
    def __init__(self, data: MemoryData) -> None:
        self.data = data

    def ensure(self, script_id: str, version: str, source: str, now: datetime) -> None:
        self.data.scripts.setdefault(version, source)

    def source(self, version: str) -> str | None:
        return self.data.scripts.get(version)


class MemoryTransaction:
    def __init__(self, data: MemoryData) -> None:
        self.leads = _Leads(data)
        self.conversations = _Conversations(data)
        self.transcript = _Transcript(data)
        self.outbox = _Outbox(data)
        self.receipts = _Receipts(data)
        self.suppressions = _Suppressions(data)
        self.audit = _Audit(data)
        self.timers = _Timers(data)
        self.scripts = _Scripts(data)
        self.crm = MemoryCrm(data.crm, lambda lead_id: _lead_view(data, lead_id))
        self.appointments = _Appointments(data)


def _lead_view(data: MemoryData, lead_id: int) -> LeadView | None:
    """What the CRM is told about a lead, from what the fake keeps of it."""
    row = data.leads.get(lead_id)
    if row is None:
        return None
    return LeadView(
        id=lead_id,
        reference=row["reference"],
        source=row["source"],
        external_id=row["external_id"],
        script_id=row["script_id"],
        is_test=False,
        submitted_at=row["submitted_at"],
        fields=dict(row["fields"]),
        attribution={},
        phone=row.get("phone"),
        email=None,
        language=row.get("language"),
        answers=dict(row["answers"]),
        score=row.get("score"),
        reasons=list(row.get("reasons", [])),
        outcome=row.get("outcome"),
        qualified=row.get("qualified"),
        consent_text=None,
        consent_at=None,
        conversation_started_at=None,
        completed_at=None,
    )


class MemoryStorage:
    """Implements bot.ports.Storage in memory: each run works on a copy, swapped in on success."""

    def __init__(self) -> None:
        self.data = MemoryData()
        self._lock = asyncio.Lock()  # one transaction at a time, like SQLite

    async def run(self, work: Callable[[Any], T]) -> T:
        async with self._lock:
            draft = copy.deepcopy(self.data)
            result = work(MemoryTransaction(draft))
            await asyncio.sleep(0)  # a real database yields here: let other turns queue up
            self.data = draft
            return result


class RecordingSender:
    """Records what it was asked to send; `fail_next` queues failures to raise first."""

    def __init__(self) -> None:
        self.sent: list[OutboxItem] = []
        self.fail_next: list[DeliveryError] = []
        self.calls = 0

    async def send(self, item: OutboxItem) -> str | None:
        self.calls += 1
        if self.fail_next:
            raise self.fail_next.pop(0)
        self.sent.append(item)
        return f"provider-{item.idempotency_key}"
