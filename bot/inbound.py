"""What can happen to a conversation: facts in the past tense, from any channel."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import TypeAlias


@dataclass(frozen=True, slots=True)
class ConversationStarted:
    """The prospect arrived (form redirect, deep link, first message); `lead` holds form fields."""

    lead: Mapping[str, str] = field(default_factory=dict)
    language: str | None = None
    timezone: str | None = None


@dataclass(frozen=True, slots=True)
class TextReceived:
    text: str


@dataclass(frozen=True, slots=True)
class OptionPicked:
    """A button was tapped; `question_id` tells a fresh tap from a stale keyboard."""

    question_id: str
    value: str


@dataclass(frozen=True, slots=True)
class ContactShared:
    """A channel's "share my number" button; `own` is true when it is the sender's own contact."""

    phone: str
    own: bool


class TimerKind(StrEnum):
    REMINDER = "reminder"
    EXPIRY = "expiry"
    HANDOFF = "handoff"  # no rep took the conversation in time
    APPOINTMENT_DAY = "appointment_24h"  # a day before the booked appointment
    APPOINTMENT_HOUR = "appointment_1h"  # an hour before it


# Not silence timers: a CancelTimers leaves them, and their seq is the booking's, not timer_seq.
APPOINTMENT_TIMERS = frozenset({TimerKind.APPOINTMENT_DAY, TimerKind.APPOINTMENT_HOUR})


@dataclass(frozen=True, slots=True)
class SilenceTimerFired:
    kind: TimerKind
    seq: int  # the state's timer_seq when it was scheduled: older timers are stale


@dataclass(frozen=True, slots=True)
class ReturnedFromRep:
    """A rep handed the conversation back to the bot."""


@dataclass(frozen=True, slots=True)
class RepTookOver:
    """A rep holds the conversation now: the bot falls silent."""

    rep_name: str


@dataclass(frozen=True, slots=True)
class RepClosed:
    """A rep closed the conversation with an outcome of their own (won, lost, no answer...)."""

    outcome: str


@dataclass(frozen=True, slots=True)
class AppointmentMoved:
    """A rep moved the prospect's appointment to another slot (checked free and bookable)."""

    location: str
    starts_at: datetime  # UTC
    rep_name: str


@dataclass(frozen=True, slots=True)
class AppointmentCancelled:
    """A rep cancelled the prospect's appointment."""

    rep_name: str


Inbound: TypeAlias = (
    ConversationStarted
    | TextReceived
    | OptionPicked
    | ContactShared
    | SilenceTimerFired
    | ReturnedFromRep
    | RepTookOver
    | RepClosed
    | AppointmentMoved
    | AppointmentCancelled
)
