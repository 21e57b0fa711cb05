"""The tables. Only `storage` sees these classes; repositories map them to `bot` records."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import BigInteger, Index, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from storage.types import JSONValue, UTCDateTime


class ScriptVersionRow(SQLModel, table=True):
    """Every script version a conversation ever started on, so it can finish on it."""

    __tablename__ = "script_versions"

    version: str = Field(primary_key=True, max_length=64)
    script_id: str = Field(max_length=64, index=True)
    source: str = Field(sa_type=Text)
    created_at: datetime = Field(sa_type=UTCDateTime)


class LeadRow(SQLModel, table=True):
    __tablename__ = "leads"
    __table_args__ = (
        UniqueConstraint("source", "external_id", name="uq_leads_source_external_id"),
        Index("ix_leads_submitted_at", "submitted_at"),
        Index("ix_leads_phone", "phone"),
        # The funnel's refresh finds what changed since its last run (storage/analytics_refresh.py).
        Index("ix_leads_updated_at", "updated_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    source: str = Field(max_length=32)
    external_id: str = Field(max_length=128)
    reference: str = Field(max_length=16, unique=True)
    script_id: str = Field(max_length=64)
    is_test: bool = False
    fields: dict[str, Any] = Field(default_factory=dict, sa_type=JSONValue)
    raw: dict[str, Any] = Field(default_factory=dict, sa_type=JSONValue)
    attribution: dict[str, Any] = Field(default_factory=dict, sa_type=JSONValue)
    phone: str | None = Field(default=None, max_length=32)
    email: str | None = Field(default=None, max_length=320)
    language: str | None = Field(default=None, max_length=16)
    consent_text: str | None = Field(default=None, sa_type=Text)
    consent_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    # The latest consent's version (bot.privacy.consent_version) and how it was given; every
    # consent the lead ever gave is in `consents`.
    consent_version: str | None = Field(default=None, max_length=16)
    consent_via: str | None = Field(default=None, max_length=16)
    # Set when the lead's personal data was erased: the row stays, anonymous, for the funnel.
    erased_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    answers: dict[str, Any] = Field(default_factory=dict, sa_type=JSONValue)
    score: int | None = None
    reasons: list[str] = Field(default_factory=list, sa_type=JSONValue)
    outcome: str | None = Field(default=None, max_length=64, index=True)
    qualified: bool | None = None
    submitted_at: datetime = Field(sa_type=UTCDateTime)
    first_contact_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    conversation_started_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    completed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    updated_at: datetime = Field(sa_type=UTCDateTime)


class ConversationRow(SQLModel, table=True):
    __tablename__ = "conversations"
    __table_args__ = (
        Index("ix_conversations_channel_user", "channel", "channel_user_id"),
        # One conversation per lead and chat, whatever the number of workers opening it.
        UniqueConstraint(
            "lead_id", "channel", "channel_user_id", name="uq_conversations_lead_chat"
        ),
        Index("ix_conversations_updated_at", "updated_at"),  # the funnel's refresh
    )

    id: int | None = Field(default=None, primary_key=True)
    lead_id: int = Field(foreign_key="leads.id", index=True, ondelete="CASCADE")
    channel: str = Field(max_length=32)
    channel_user_id: str = Field(max_length=128)
    script_id: str = Field(max_length=64)
    script_version: str = Field(foreign_key="script_versions.version", max_length=64)
    state: dict[str, Any] | None = Field(default=None, sa_type=JSONValue)
    status: str = Field(max_length=16, index=True)
    mode: str = Field(default="bot", max_length=16)
    version: int = 0  # bumped by every committed turn: optimistic guard and audit
    last_inbound_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    # Messages sent since the prospect last wrote (TikTok allows about ten per window).
    sent_since_inbound: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    held_by: int | None = None  # the rep who holds it (reps.id); one at most
    held_by_name: str | None = Field(default=None, max_length=200)
    # When it expired in silence, and at which question (drop-off figures); kept when a late
    # reply brings the prospect back, so `status` says whether it is abandoned still.
    abandoned_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    abandoned_question: str | None = Field(default=None, max_length=48)
    created_at: datetime = Field(sa_type=UTCDateTime)
    updated_at: datetime = Field(sa_type=UTCDateTime)


class MessageRow(SQLModel, table=True):
    """The transcript: every message in and out, with its delivery status."""

    __tablename__ = "messages"
    __table_args__ = (Index("ix_messages_conversation", "conversation_id", "id"),)

    id: int | None = Field(default=None, primary_key=True)
    conversation_id: int = Field(foreign_key="conversations.id", ondelete="CASCADE")
    author: str = Field(max_length=16)  # prospect, bot, rep or system
    text: str = Field(sa_type=Text)
    options: list[dict[str, str]] = Field(default_factory=list, sa_type=JSONValue)
    question_id: str | None = Field(default=None, max_length=48)
    provider_message_id: str | None = Field(default=None, max_length=128, index=True)
    # received, queued, sent, delivered, read, undelivered, failed, held (outside a window)
    status: str = Field(max_length=16)
    error: str | None = Field(default=None, sa_type=Text)
    created_at: datetime = Field(sa_type=UTCDateTime)


class OutboxRow(SQLModel, table=True):
    """Work to do after commit: a message to send, an event to deliver."""

    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_due", "status", "due_at"),)

    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(max_length=32)
    idempotency_key: str = Field(max_length=128, unique=True)
    conversation_id: int | None = Field(
        default=None, foreign_key="conversations.id", index=True, ondelete="CASCADE"
    )
    message_id: int | None = Field(default=None, foreign_key="messages.id", ondelete="CASCADE")
    payload: dict[str, Any] = Field(default_factory=dict, sa_type=JSONValue)
    status: str = Field(default="pending", max_length=16)  # pending, sent, failed, held
    due_at: datetime = Field(sa_type=UTCDateTime)
    attempts: int = 0
    claimed_until: datetime | None = Field(default=None, sa_type=UTCDateTime)
    last_error: str | None = Field(default=None, sa_type=Text)
    provider_id: str | None = Field(default=None, max_length=128)
    created_at: datetime = Field(sa_type=UTCDateTime)
    finished_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class AuditRow(SQLModel, table=True):
    """What people did to a conversation: took over, wrote, handed back, closed, noted."""

    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_log_conversation", "conversation_id", "id"),)

    id: int | None = Field(default=None, primary_key=True)
    conversation_id: int | None = Field(
        default=None, foreign_key="conversations.id", ondelete="CASCADE"
    )
    lead_id: int | None = None
    rep_id: int | None = None
    actor: str = Field(max_length=200)  # "rep 3 (Ana Ruiz)", as shown on the conversation
    action: str = Field(max_length=32)
    detail: str | None = Field(default=None, sa_type=Text)
    at: datetime = Field(sa_type=UTCDateTime)


class SuppressionRow(SQLModel, table=True):
    """Addresses that opted out (STOP, or a provider saying so): nothing is sent to them."""

    __tablename__ = "suppressions"

    address: str = Field(primary_key=True, max_length=160)  # bot.suppression.address_of
    channel: str = Field(max_length=32)  # where the opt-out came from
    reason: str = Field(max_length=200)
    created_at: datetime = Field(sa_type=UTCDateTime)


class ReceiptRow(SQLModel, table=True):
    """Inbound provider ids already applied: a redelivery finds its receipt and changes nothing."""

    __tablename__ = "receipts"

    channel: str = Field(primary_key=True, max_length=32)
    provider_id: str = Field(primary_key=True, max_length=128)
    received_at: datetime = Field(sa_type=UTCDateTime)


class TimerRow(SQLModel, table=True):
    """Timers the engine asked for: reminders and expiry after silence, and the wait for a
    rep; `leadbot serve` fires them (bot.scheduler)."""

    __tablename__ = "timers"
    __table_args__ = (Index("ix_timers_due", "due_at"),)

    id: int | None = Field(default=None, primary_key=True)
    conversation_id: int = Field(foreign_key="conversations.id", index=True, ondelete="CASCADE")
    kind: str = Field(max_length=16)
    seq: int
    due_at: datetime = Field(sa_type=UTCDateTime)
    claimed_until: datetime | None = Field(default=None, sa_type=UTCDateTime)


class AppointmentRow(SQLModel, table=True):
    """Bookings of calendar slots (storage/appointments.py). A booking holds a seat, and no two
    hold the same seat of a slot: capacity is the database's to enforce, across workers. A
    cancelled booking keeps its row (the funnel counts it) and gives its seat back (NULL)."""

    __tablename__ = "appointments"
    __table_args__ = (
        UniqueConstraint("calendar", "location", "starts_at", "seat", name="uq_appointments_seat"),
        Index("ix_appointments_calendar_starts_at", "calendar", "starts_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    lead_id: int = Field(foreign_key="leads.id", index=True, ondelete="CASCADE")
    conversation_id: int | None = Field(
        default=None, foreign_key="conversations.id", index=True, ondelete="SET NULL"
    )
    script_id: str = Field(max_length=64)
    question_id: str = Field(max_length=48)
    calendar: str = Field(max_length=48)
    location: str = Field(max_length=48)
    starts_at: datetime = Field(sa_type=UTCDateTime)
    ends_at: datetime = Field(sa_type=UTCDateTime)
    seat: int | None = None
    status: str = Field(max_length=16)  # booked, cancelled
    booked_by: str = Field(max_length=16)  # prospect, rep
    created_at: datetime = Field(sa_type=UTCDateTime, index=True)
    cancelled_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    cancelled_by: str | None = Field(default=None, max_length=16)  # prospect, rep, erased


class RepRow(SQLModel, table=True):
    """A sales rep who logs in to the console (storage/reps.py)."""

    __tablename__ = "reps"

    id: int | None = Field(default=None, primary_key=True)
    email: str = Field(max_length=320, unique=True)  # stored lower-cased
    name: str = Field(max_length=200)
    role: str = Field(max_length=16)  # rep or admin
    password_hash: str = Field(max_length=255)  # argon2id, encoded with its parameters
    disabled: bool = False
    telegram_user_id: int | None = Field(default=None, sa_type=BigInteger, unique=True)
    created_at: datetime = Field(sa_type=UTCDateTime)


class RepSessionRow(SQLModel, table=True):
    """A logged-in browser. The id is the SHA-256 of the cookie's token: a copy of this table
    lets nobody in."""

    __tablename__ = "rep_sessions"

    id: str = Field(primary_key=True, max_length=64)
    rep_id: int = Field(foreign_key="reps.id", index=True, ondelete="CASCADE")
    csrf_token: str = Field(max_length=64)
    created_at: datetime = Field(sa_type=UTCDateTime)
    expires_at: datetime = Field(sa_type=UTCDateTime)
    last_seen_at: datetime = Field(sa_type=UTCDateTime)


class ApiKeyRow(SQLModel, table=True):
    """A key for programs on /api/v1, stored as the SHA-256 of the key."""

    __tablename__ = "api_keys"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=100)
    prefix: str = Field(max_length=8, index=True)  # the key's first characters, for lists
    key_hash: str = Field(max_length=64, unique=True)
    created_by: int | None = Field(default=None, foreign_key="reps.id", ondelete="SET NULL")
    created_at: datetime = Field(sa_type=UTCDateTime)
    revoked_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class LoginFailureRow(SQLModel, table=True):
    """Failed logins per email ("email:<email>") and per client address ("addr:<ip>"), in the
    database so that every worker throttles alike."""

    __tablename__ = "login_failures"

    key: str = Field(primary_key=True, max_length=400)
    failures: int = 0
    last_at: datetime = Field(sa_type=UTCDateTime, index=True)


class RepThreadRow(SQLModel, table=True):
    """Where a conversation is discussed in the reps' Telegram group: its forum topic, or the
    first card, whose replies form the thread (webhooks/channels/telegram_reps*.py)."""

    __tablename__ = "telegram_rep_threads"
    __table_args__ = (Index("ix_telegram_rep_threads_topic", "chat_id", "topic_id"),)

    conversation_id: int = Field(
        primary_key=True, foreign_key="conversations.id", ondelete="CASCADE"
    )
    chat_id: int = Field(primary_key=True, sa_type=BigInteger)
    topic_id: int | None = Field(default=None, sa_type=BigInteger)  # message_thread_id
    root_message_id: int | None = Field(default=None, sa_type=BigInteger)  # the first card
    mirrored_until: int = 0  # the last transcript line (messages.id) shown to the reps
    created_at: datetime = Field(sa_type=UTCDateTime)


class RepGroupMessageRow(SQLModel, table=True):
    """A message the bot posted in the reps' group about a conversation: a reply to it is about
    that conversation too. `outbox_key` is the outbox row that posted it (posted once)."""

    __tablename__ = "telegram_rep_messages"

    chat_id: int = Field(primary_key=True, sa_type=BigInteger)
    message_id: int = Field(primary_key=True, sa_type=BigInteger)
    conversation_id: int = Field(foreign_key="conversations.id", index=True, ondelete="CASCADE")
    outbox_key: str | None = Field(default=None, max_length=128, unique=True)
    created_at: datetime = Field(sa_type=UTCDateTime)


class ConsentRow(SQLModel, table=True):
    """Each consent a lead gave: the words (emptied when the lead is erased), their version,
    how and when (storage/privacy.py)."""

    __tablename__ = "consents"

    id: int | None = Field(default=None, primary_key=True)
    lead_id: int = Field(foreign_key="leads.id", index=True, ondelete="CASCADE")
    text: str | None = Field(default=None, sa_type=Text)
    version: str = Field(max_length=16)
    via: str = Field(max_length=16)  # form, source or chat (bot.privacy)
    given_at: datetime = Field(sa_type=UTCDateTime)


class MaintenanceLeaseRow(SQLModel, table=True):
    """Who runs a periodic job (the retention sweep) until when: one worker at a time."""

    __tablename__ = "maintenance_leases"

    name: str = Field(primary_key=True, max_length=64)
    holder: str = Field(max_length=64)
    until: datetime = Field(sa_type=UTCDateTime)


class CrmSubscriptionRow(SQLModel, table=True):
    """Where CRM events go: a webhook from settings (by name; its secret stays in settings) or
    a hook made through /api/v1/hooks (its own secret). Never deleted, only marked, so that a
    worker's slightly old view of them can still write deliveries (storage/crm.py)."""

    __tablename__ = "crm_subscriptions"

    id: int | None = Field(default=None, primary_key=True)
    name: str | None = Field(default=None, max_length=100, unique=True)  # settings' only
    origin: str = Field(max_length=16)  # settings or api
    url: str = Field(max_length=2000)
    events: list[str] = Field(default_factory=list, sa_type=JSONValue)
    secret: str | None = Field(default=None, max_length=128)  # an API hook's
    api_key_id: int | None = Field(default=None, foreign_key="api_keys.id", ondelete="SET NULL")
    status: str = Field(default="active", max_length=16)  # active, disabled, removed
    status_reason: str | None = Field(default=None, sa_type=Text)
    created_at: datetime = Field(sa_type=UTCDateTime)
    updated_at: datetime = Field(sa_type=UTCDateTime)


class CrmSequenceRow(SQLModel, table=True):
    """Each lead's last CRM event number: bumped in the event's transaction, so gap-free."""

    __tablename__ = "crm_sequences"

    lead_id: int = Field(primary_key=True, foreign_key="leads.id", ondelete="CASCADE")
    last: int


class CrmEventRow(SQLModel, table=True):
    """Something a CRM wanted to know about a lead, with the body as it was then."""

    __tablename__ = "crm_events"
    __table_args__ = (UniqueConstraint("lead_id", "sequence", name="uq_crm_events_lead_sequence"),)

    id: int | None = Field(default=None, primary_key=True)
    lead_id: int = Field(foreign_key="leads.id", ondelete="CASCADE")
    sequence: int
    event: str = Field(max_length=32)
    body: dict[str, Any] = Field(default_factory=dict, sa_type=JSONValue)
    occurred_at: datetime = Field(sa_type=UTCDateTime)


class CrmDeliveryRow(SQLModel, table=True):
    """One event on its way to one subscription: pending, delivered, failed (a dead letter)
    or dropped. `lead_id` and `sequence` are the event's, here so that the claim can keep a
    lead's deliveries in order without a join."""

    __tablename__ = "crm_deliveries"
    __table_args__ = (
        Index("ix_crm_deliveries_due", "status", "due_at"),
        Index("ix_crm_deliveries_queue", "subscription_id", "lead_id", "sequence"),
    )

    id: int | None = Field(default=None, primary_key=True)
    delivery_id: str = Field(max_length=36, unique=True)  # the idempotency key
    event_id: int = Field(foreign_key="crm_events.id", index=True, ondelete="CASCADE")
    subscription_id: int = Field(foreign_key="crm_subscriptions.id", ondelete="CASCADE")
    lead_id: int
    sequence: int
    status: str = Field(default="pending", max_length=16)
    attempts: int = 0
    due_at: datetime = Field(sa_type=UTCDateTime)
    claimed_until: datetime | None = Field(default=None, sa_type=UTCDateTime)
    queued_at: datetime = Field(sa_type=UTCDateTime)  # retries stop 24 hours after this
    last_status: int | None = None  # the receiver's last HTTP status
    last_error: str | None = Field(default=None, sa_type=Text)
    created_at: datetime = Field(sa_type=UTCDateTime)
    finished_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class FunnelDayRow(SQLModel, table=True):
    """The funnel summed per day of submission (UTC) and attribution: what the dashboard reads,
    kept current by storage/analytics_refresh.py. Missing attribution is ''. `speed_0..8` count
    leads by seconds from the form to the first bot message (bot.funnel.SPEED_BOUNDS)."""

    __tablename__ = "funnel_days"

    day: date = Field(primary_key=True)
    source: str = Field(primary_key=True, sa_type=Text)
    campaign: str = Field(primary_key=True, sa_type=Text)
    adgroup: str = Field(primary_key=True, sa_type=Text)
    ad: str = Field(primary_key=True, sa_type=Text)
    form: str = Field(primary_key=True, sa_type=Text)
    script: str = Field(primary_key=True, sa_type=Text)
    channel: str = Field(primary_key=True, sa_type=Text)
    submitted: int = 0
    reached: int = 0
    started: int = 0
    completed: int = 0
    qualified: int = 0
    handed_off: int = 0
    booked: int = 0
    reminded: int = 0
    came_back: int = 0
    speed_0: int = 0
    speed_1: int = 0
    speed_2: int = 0
    speed_3: int = 0
    speed_4: int = 0
    speed_5: int = 0
    speed_6: int = 0
    speed_7: int = 0
    speed_8: int = 0


class FunnelQuestionDayRow(SQLModel, table=True):
    """Per question and day: conversations that were asked it, answered it, or went silent at
    it; `answer_0..11` count answers by seconds taken (bot.funnel.ANSWER_BOUNDS)."""

    __tablename__ = "funnel_question_days"

    day: date = Field(primary_key=True)
    source: str = Field(primary_key=True, sa_type=Text)
    campaign: str = Field(primary_key=True, sa_type=Text)
    adgroup: str = Field(primary_key=True, sa_type=Text)
    ad: str = Field(primary_key=True, sa_type=Text)
    form: str = Field(primary_key=True, sa_type=Text)
    script: str = Field(primary_key=True, sa_type=Text)
    channel: str = Field(primary_key=True, sa_type=Text)
    question: str = Field(primary_key=True, max_length=48)
    asked: int = 0
    answered: int = 0
    abandoned: int = 0
    answer_0: int = 0
    answer_1: int = 0
    answer_2: int = 0
    answer_3: int = 0
    answer_4: int = 0
    answer_5: int = 0
    answer_6: int = 0
    answer_7: int = 0
    answer_8: int = 0
    answer_9: int = 0
    answer_10: int = 0
    answer_11: int = 0


class AnalyticsMarkRow(SQLModel, table=True):
    """How far the funnel's summary has read: the newest change it saw (leads' and
    conversations' `updated_at`, appointments' `created_at`). Its row is locked while a refresh
    runs, so two workers never rebuild the same days at once."""

    __tablename__ = "analytics_marks"

    name: str = Field(primary_key=True, max_length=32)
    mark: datetime | None = Field(default=None, sa_type=UTCDateTime)
    refreshed_at: datetime = Field(sa_type=UTCDateTime)
