"""The state of one conversation: small, immutable, and serialisable to JSON."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from enum import StrEnum
from typing import Any

from bot.answers.result import JSONValue
from bot.errors import StateError


class Status(StrEnum):
    ACTIVE = "active"  # the bot is asking
    HANDED_OFF = "handed_off"  # waiting for a rep: the prospect was told one is coming
    WITH_REP = "with_rep"  # a rep holds it; the bot is silent
    COMPLETED = "completed"
    CLOSED = "closed"  # a rep closed it with an outcome
    OPTED_OUT = "opted_out"
    EXPIRED = "expired"  # went silent past the script's expiry


FINISHED = frozenset({Status.COMPLETED, Status.CLOSED, Status.OPTED_OUT})
WITH_PEOPLE = frozenset({Status.HANDED_OFF, Status.WITH_REP})  # the bot says nothing


@dataclass(frozen=True, slots=True)
class ConversationState:
    """Treat the mappings as read-only: the engine always builds a new state."""

    script_id: str
    script_version: str  # content hash of the script the conversation started on
    language: str
    timezone: str
    status: Status = Status.ACTIVE
    question: str | None = None  # the pending question
    confirming: bool = False  # waiting for yes/no on a prefilled value
    attempts: int = 0
    lead: Mapping[str, str] = field(default_factory=dict)
    answers: Mapping[str, JSONValue] = field(default_factory=dict)
    outcome: str | None = None
    reminders_sent: int = 0
    timer_seq: int = 0
    waiting_since: str | None = None  # ISO time the bot last asked; expiry counts from it
    turns: int = 0
    awaiting_callback: bool = False  # no rep came in time: the next message is a call-back time
    rule_fired: bool = False  # the script's handoff rule hands over once a conversation
    appointment: Mapping[str, JSONValue] = field(default_factory=dict)  # bot/appointments.py

    def to_dict(self) -> dict[str, Any]:
        # Shallow: a state is never changed in place, and this dict goes straight to JSON.
        # dataclasses.asdict deep-copies every answer: 110 us against 5 us, once every turn.
        data = {name: getattr(self, name) for name in _FIELDS}
        data["status"] = self.status.value
        for name in ("lead", "answers", "appointment"):
            data[name] = dict(data[name])
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ConversationState:
        try:
            values = dict(data)
            values["status"] = Status(values.get("status", Status.ACTIVE))
            values["lead"] = dict(values.get("lead", {}))
            values["answers"] = dict(values.get("answers", {}))
            values["appointment"] = dict(values.get("appointment", {}))
            return cls(**values)
        except (TypeError, ValueError) as error:
            raise StateError(f"not a conversation state: {error}") from None


_FIELDS = tuple(member.name for member in fields(ConversationState))
