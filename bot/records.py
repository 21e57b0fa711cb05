"""What the service reads and writes through the ports: plain records, no table classes."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from bot.state import ConversationState


@dataclass(frozen=True, slots=True)
class Submission:
    """One form submission as a source delivered it, before routing to a script.

    `fields` are the form's answers keyed by leadbot's lead-field names where the source has a
    standard name for them (first_name, last_name, name, email, phone, city, zip_code...), else by
    the source's own key. `attribution` holds advertiser, campaign, ad group, ad and form ids and
    names under the keys advertiser_id, advertiser_name, campaign_id, campaign_name, adgroup_id,
    adgroup_name, ad_id, ad_name, form_id, form_name (only those the source gives), all strings.
    """

    source: str  # "tiktok", "google", "api:<name>", "form"
    external_id: str  # the source's lead id, as a string (TikTok's exceed 2**53)
    fields: Mapping[str, str]
    raw: Mapping[str, Any]  # what the source sent for this lead, to keep
    attribution: Mapping[str, str] = field(default_factory=dict)
    submitted_at: datetime | None = None  # when the prospect submitted, if the source says
    is_test: bool = False
    consent_text: str | None = None  # what the prospect ticked on the form, word for word


@dataclass(frozen=True, slots=True)
class NewLead:
    """A form submission as the intake parsed it."""

    source: str  # tiktok, api, google, form, chat
    external_id: str  # the source's own lead id: (source, external_id) is unique
    script_id: str
    submitted_at: datetime
    fields: Mapping[str, str] = field(default_factory=dict)
    raw: Mapping[str, Any] = field(default_factory=dict)
    attribution: Mapping[str, str] = field(default_factory=dict)
    phone: str | None = None  # E.164
    email: str | None = None
    language: str | None = None
    is_test: bool = False
    consent_text: str | None = None  # agreed to when the form was submitted


@dataclass(frozen=True, slots=True)
class Lead:
    id: int
    reference: str  # the short code a prospect can type into any channel
    source: str
    external_id: str
    script_id: str
    fields: Mapping[str, str]
    language: str | None
    answers: Mapping[str, Any]
    outcome: str | None
    score: int | None


@dataclass(frozen=True, slots=True)
class Conversation:
    id: int
    lead_id: int
    channel: str
    channel_user_id: str
    script_id: str
    script_version: str
    state: ConversationState | None
    version: int
    held_by: int | None = None  # the rep holding it
    held_by_name: str | None = None


@dataclass(frozen=True, slots=True)
class Receipt:
    """A provider's id for one inbound delivery: Telegram update_id, Twilio MessageSid..."""

    channel: str
    provider_id: str


@dataclass(frozen=True, slots=True)
class OutboxItem:
    id: int
    kind: str
    idempotency_key: str
    payload: Mapping[str, Any]
    attempts: int  # including the one now claimed
    conversation_id: int | None
    message_id: int | None


@dataclass(frozen=True, slots=True)
class TranscriptLine:
    """One message of a conversation, as stored."""

    id: int
    author: str  # prospect, bot, rep or system
    text: str
    options: Sequence[Mapping[str, str]]
    question_id: str | None
    status: str


@dataclass(frozen=True, slots=True)
class Window:
    """What a channel's messaging window needs to know about a conversation."""

    last_inbound_at: datetime | None  # when the prospect last wrote
    sent_since_inbound: int  # messages the bot sent since then


@dataclass(frozen=True, slots=True)
class DeliveryTarget:
    """The conversation a provider's delivery report is about."""

    conversation_id: int
    channel: str
    chat: str


@dataclass(frozen=True, slots=True)
class DueTimer:
    id: int
    conversation_id: int
    kind: str
    seq: int
    # Where the lead is, for quiet hours: their number (E.164; the chat's on SMS and WhatsApp
    # when the form gave none) and the conversation's time zone (the script's unless the
    # channel said).
    phone: str | None = None
    timezone: str | None = None


@dataclass(frozen=True, slots=True)
class NewAppointment:
    """A booking to make: a seat in one slot of a calendar's place."""

    lead_id: int
    conversation_id: int
    script_id: str
    question_id: str
    calendar: str
    location: str
    starts_at: datetime  # UTC
    ends_at: datetime
    booked_by: str  # "prospect" or "rep"


@dataclass(frozen=True, slots=True)
class Appointment:
    """A booking as stored; a cancelled one keeps its row, without its seat."""

    id: int
    lead_id: int
    conversation_id: int | None
    script_id: str
    question_id: str
    calendar: str
    location: str
    starts_at: datetime  # UTC
    ends_at: datetime
    status: str  # "booked" or "cancelled"
    seat: int | None  # 1..capacity while booked
    booked_by: str
    created_at: datetime
    cancelled_at: datetime | None = None
    cancelled_by: str | None = None
