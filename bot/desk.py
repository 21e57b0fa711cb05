"""What a sales rep can do to a conversation: take it over, write, hand it back, close it, add a
note. Each is one transaction, recorded in the audit log, and goes through the engine where the
bot has to know (it falls silent, resumes, or stops). Exactly one rep holds a conversation.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TypeAlias

from bot import appointments_service
from bot.catalog import ScriptCatalog
from bot.effects import Effect
from bot.engine import Transition, step
from bot.errors import BotError, UnknownConversationError
from bot.inbound import Inbound, RepClosed, RepTookOver, ReturnedFromRep
from bot.ports import Transaction
from bot.records import Conversation
from bot.state import FINISHED, ConversationState, Status
from bot.textsafe import storable
from bot.watchers import RepAction

MAX_REP_TEXT = 4000
MAX_OUTCOME = 64


@dataclass(frozen=True, slots=True)
class Rep:
    id: int
    name: str
    via: str = "console"  # where they act from (console, telegram): the reps' group is told

    @property
    def actor(self) -> str:
        return f"{self.name} (rep {self.id})"


class HeldByAnotherError(BotError):
    """Another rep holds the conversation; `holder` says who."""

    def __init__(self, holder: str) -> None:
        super().__init__(f"{holder} is handling this conversation")
        self.holder = holder


class NotHoldingError(BotError):
    """The action needs the conversation to be held by this rep (take it over first)."""


class ActionRefusedError(BotError):
    """The action makes no sense now (an empty message, a closed conversation...)."""


@dataclass(frozen=True, slots=True)
class TakeOver:
    pass


@dataclass(frozen=True, slots=True)
class Write:
    text: str


@dataclass(frozen=True, slots=True)
class HandBack:
    pass


@dataclass(frozen=True, slots=True)
class Close:
    outcome: str


@dataclass(frozen=True, slots=True)
class Note:
    text: str


Action: TypeAlias = TakeOver | Write | HandBack | Close | Note
# Saves the engine's transition the way every turn is saved (bot.service.save_turn).
SaveTurn: TypeAlias = Callable[
    [Transaction, Conversation, Transition, Inbound | None, datetime], None
]


@dataclass(frozen=True, slots=True)
class ActionResult:
    conversation_id: int
    channel: str
    state: ConversationState | None
    effects: tuple[Effect, ...] = ()
    audited: RepAction | None = None  # what the audit log recorded (None: nothing was done)


def apply(
    tx: Transaction,
    catalog: ScriptCatalog,
    conversation_id: int,
    rep: Rep,
    action: Action,
    *,
    now: datetime,
    save_turn: SaveTurn,
    queue_rep_text: Callable[[Transaction, Conversation, str, Rep, datetime], None],
) -> ActionResult:
    conversation = tx.conversations.lock(conversation_id)
    if conversation is None or conversation.state is None:
        raise UnknownConversationError(f"no conversation {conversation_id}")
    script = catalog.version(conversation.script_id, conversation.script_version, tx.scripts)
    state = conversation.state
    detail: str | None = None
    effects: list[Effect] = []

    def turn(inbound: Inbound) -> ConversationState:
        # A hand back may ask the appointment question again: it offers what is free.
        seen = appointments_service.availability(tx, script, now)
        transition = step(script, state, inbound, now, availability=seen)
        save_turn(tx, conversation, transition, inbound, now)
        effects.extend(transition.effects)
        return transition.state

    match action:
        case TakeOver() if conversation.held_by == rep.id:
            return ActionResult(conversation.id, conversation.channel, state)  # theirs already
        case TakeOver():
            if state.status in FINISHED and state.status is not Status.COMPLETED:
                raise ActionRefusedError(f"the conversation is {state.status.value}")
            holder = tx.conversations.take(conversation.id, rep.id, rep.name)
            if holder is not None:
                raise HeldByAnotherError(holder)
            state = turn(RepTookOver(rep.name))
        case Write(text=text):
            _must_hold(conversation, rep)
            text = storable(text.strip())
            if not text:
                raise ActionRefusedError("the message is empty")
            if len(text) > MAX_REP_TEXT:
                raise ActionRefusedError(f"the message is longer than {MAX_REP_TEXT} characters")
            queue_rep_text(tx, conversation, text, rep, now)
            detail = text[:200]
        case HandBack():
            _must_hold(conversation, rep)
            tx.conversations.release(conversation.id)
            state = turn(ReturnedFromRep())
        case Close(outcome=outcome):
            outcome = outcome.strip()
            if not outcome or len(outcome) > MAX_OUTCOME:
                raise ActionRefusedError(f"an outcome is 1 to {MAX_OUTCOME} characters")
            if conversation.held_by not in (None, rep.id):
                raise HeldByAnotherError(conversation.held_by_name or "another rep")
            tx.conversations.release(conversation.id)
            state = turn(RepClosed(outcome))
            detail = outcome
        case Note(text=text):
            detail = _add_note(tx, conversation, rep, text, now)
    name = _ACTION_NAMES[type(action)]
    tx.audit.add(
        conversation_id=conversation.id,
        lead_id=conversation.lead_id,
        rep_id=rep.id,
        actor=rep.actor,
        action=name,
        detail=detail,
        now=now,
    )
    audited = RepAction(conversation, rep.id, rep.name, name, detail, now, rep.via)
    return ActionResult(conversation.id, conversation.channel, state, tuple(effects), audited)


def _add_note(
    tx: Transaction, conversation: Conversation, rep: Rep, text: str, now: datetime
) -> str:
    """A note for the other reps, never sent: the transcript line, and the audit's detail."""
    text = storable(text.strip())
    if not text:
        raise ActionRefusedError("the note is empty")
    tx.transcript.add(
        conversation_id=conversation.id,
        author="note",
        text=f"{rep.name}: {text[:MAX_REP_TEXT]}",
        status="internal",
        now=now,
    )
    return text[:200]


def _must_hold(conversation: Conversation, rep: Rep) -> None:
    if conversation.held_by == rep.id:
        return
    if conversation.held_by is not None:
        raise HeldByAnotherError(conversation.held_by_name or "another rep")
    raise NotHoldingError("take the conversation over first")


_ACTION_NAMES: dict[type, str] = {
    TakeOver: "took_over",
    Write: "wrote",
    HandBack: "handed_back",
    Close: "closed",
    Note: "noted",
}
