"""CRM delivery's records: event names, subscriptions, the lead as a CRM sees it, deliveries."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

# Every event a subscription can ask for, in the order a lead usually meets them. The
# appointment ones are emitted by the appointments work; their body is this same body.
EVENTS = (
    "lead.created",
    "lead.updated",
    "lead.qualified",
    "lead.disqualified",
    "lead.completed",
    "conversation.handoff",
    "conversation.closed",
    "appointment.booked",
    "appointment.cancelled",
)
BODY_VERSION = 1  # bumped only when a field changes meaning or goes away; new fields may come

# A subscription's status: only active ones get events.
ACTIVE = "active"
DISABLED = "disabled"  # the receiver answered 410 Gone (or an operator turned it off)
REMOVED = "removed"  # taken out of settings, or deleted through the API

# A delivery's status: failed ones are the dead letters.
PENDING = "pending"
DELIVERED = "delivered"
FAILED = "failed"
DROPPED = "dropped"  # its subscription is gone: nobody to deliver to


@dataclass(frozen=True, slots=True)
class Subscription:
    id: int
    name: str | None  # a settings webhook's name; None for one made through the API
    url: str
    events: frozenset[str]
    origin: str  # "settings" or "api"
    status: str = ACTIVE


@dataclass(frozen=True, slots=True)
class ConfiguredHook:
    """A webhook from settings, as the database keeps it (its secret stays in settings)."""

    name: str
    url: str
    events: frozenset[str]


@dataclass(frozen=True, slots=True)
class LeadView:
    """Everything about a lead a CRM is told (the body's `lead`)."""

    id: int
    reference: str
    source: str
    external_id: str
    script_id: str
    is_test: bool
    submitted_at: datetime
    fields: Mapping[str, Any]
    attribution: Mapping[str, Any]
    phone: str | None
    email: str | None
    language: str | None
    answers: Mapping[str, Any]
    score: int | None
    reasons: Sequence[str]
    outcome: str | None
    qualified: bool | None
    consent_text: str | None
    consent_at: datetime | None
    conversation_started_at: datetime | None
    completed_at: datetime | None


@dataclass(frozen=True, slots=True)
class NewEvent:
    lead_id: int
    event: str
    occurred_at: datetime
    body: Mapping[str, Any]  # bot.crm_body.event_body: without sequence and delivery id


@dataclass(frozen=True, slots=True)
class Delivery:
    """One event on its way to one subscription, as a worker claimed it."""

    id: int
    delivery_id: str  # the idempotency key: the same on every attempt of this delivery
    event: str
    lead_id: int
    sequence: int
    body: Mapping[str, Any]
    subscription_id: int
    subscription_name: str | None
    url: str
    secret: str | None  # an API hook's own; a settings webhook's is in settings
    attempts: int  # including the one now claimed
    queued_at: datetime  # retries stop this long after it was queued (or queued again)
