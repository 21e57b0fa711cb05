"""What the engine asks the edges to do: data, in the imperative, carried out after commit."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import TypeAlias

from bot.answers.result import JSONValue
from bot.inbound import TimerKind


class InputHint(StrEnum):
    """What kind of reply is expected, so a channel can offer the right control."""

    TEXT = "text"
    CHOICE = "choice"
    MULTIPLE_CHOICE = "multiple_choice"
    YES_NO = "yes_no"
    PHONE = "phone"  # e.g. Telegram's "share my number"
    EMAIL = "email"
    NUMBER = "number"
    DATE = "date"
    DATETIME = "datetime"
    URL = "url"


@dataclass(frozen=True, slots=True)
class OptionView:
    value: str  # what comes back in OptionPicked.value
    label: str


class ReminderPart(StrEnum):
    """A reminder's messages: outside a channel's window the nudge may go as the window
    template and the rest is skipped, where other messages are held."""

    NUDGE = "nudge"  # "Still there?": the reminder's own words
    REPEAT = "repeat"  # the question (or confirmation) asked again after it


@dataclass(frozen=True, slots=True)
class SendText:
    """A message to the prospect; `options` are rendered as buttons or numbered lines."""

    text: str
    options: tuple[OptionView, ...] = ()
    question_id: str | None = None
    hint: InputHint | None = None
    buttons_template: str | None = None  # WhatsApp: the question's quick-reply content SID
    reminder: ReminderPart | None = None  # part of a reminder after silence


@dataclass(frozen=True, slots=True)
class RecordAnswer:
    question_id: str
    value: JSONValue
    display: str
    source: str  # "prospect", "form" (prefilled) or "contact" (shared by the channel)


@dataclass(frozen=True, slots=True)
class RecordConsent:
    question_id: str
    text: str  # exactly what the prospect agreed to
    granted: bool


@dataclass(frozen=True, slots=True)
class Complete:
    outcome: str
    score: int
    reasons: tuple[str, ...]
    qualified: bool | None


@dataclass(frozen=True, slots=True)
class HandOff:
    reason: str


@dataclass(frozen=True, slots=True)
class Closed:
    """A rep closed the conversation: `outcome` is theirs, the score the answers'."""

    outcome: str
    score: int
    reasons: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class OptOut:
    keyword: str


@dataclass(frozen=True, slots=True)
class OptIn:
    """An opted-out prospect asked to hear from us again (START)."""

    keyword: str


@dataclass(frozen=True, slots=True)
class MarkAbandoned:
    """The conversation expired in silence; `question_id` is where it stopped (drop-off)."""

    question_id: str | None


@dataclass(frozen=True, slots=True)
class ScheduleTimer:
    kind: TimerKind
    at: datetime
    seq: int


@dataclass(frozen=True, slots=True)
class BookAppointment:
    """Take a seat in a slot. The service books it in the turn's transaction; when the slot
    filled up meanwhile, it runs the turn again with the slot full (the prospect is offered
    others), so a turn's effects only ever hold bookings that were made."""

    question_id: str
    calendar: str
    location: str
    starts_at: datetime  # UTC
    ends_at: datetime
    capacity: int  # seats of the slot, from the calendar
    replaces: bool  # the conversation's earlier booking is cancelled once this one holds
    by: str  # "prospect" or "rep"
    # "Add it to your calendar: {link}": the service fills it in and adds it to the message
    # before this effect (the confirmation), when it can make links.
    link_text: str = ""
    appointment_id: int | None = None  # set by the service once booked


@dataclass(frozen=True, slots=True)
class CancelAppointment:
    """Cancel the conversation's booked appointment (its seat is free again)."""

    question_id: str
    calendar: str
    location: str
    starts_at: datetime  # UTC
    by: str  # "prospect" or "rep"
    appointment_id: int | None = None  # set by the service for each booking it cancelled
    ends_at: datetime | None = None  # likewise


@dataclass(frozen=True, slots=True)
class CancelTimers:
    """Cancel every pending silence timer of the conversation (not appointment reminders)."""


Effect: TypeAlias = (
    SendText
    | RecordAnswer
    | RecordConsent
    | Complete
    | HandOff
    | Closed
    | OptOut
    | OptIn
    | MarkAbandoned
    | ScheduleTimer
    | CancelTimers
    | BookAppointment
    | CancelAppointment
)
