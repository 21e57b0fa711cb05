"""What the reps' Telegram group hears, decided inside each turn's transaction: a card when a
prospect asks for a person or a lead qualifies; in a lead's thread, while people have it, the
prospect's lines; what reps did to it (from the console or the group) and a wait for a rep that
ran out. The rows are written with the turn (bot.watchers), so a crash cannot lose a card; the
sender composes their text when it posts them (telegram_reps_sender)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from bot.effects import Complete, Effect, HandOff, RecordAnswer
from bot.inbound import (
    ContactShared,
    Inbound,
    OptionPicked,
    SilenceTimerFired,
    TextReceived,
    TimerKind,
)
from bot.ports import Transaction
from bot.state import WITH_PEOPLE, Status
from bot.watchers import RepAction, SavedTurn
from webhooks.channels.telegram_reps_card import HELP, CardEvent

REP_CARD = "rep_card"
REP_NOTE = "rep_note"
# The outbox rows' channel: the group is paced on its own (Telegram allows about 20 messages a
# minute into a group), and a 429 there pauses the reps' group, not the prospects' chats.
CHANNEL = "telegram_reps"


def card_event(effects: Sequence[Effect]) -> CardEvent | None:
    """What in a turn's effects calls for a card, if anything."""
    handoff = tuple(effect.reason for effect in effects if isinstance(effect, HandOff))
    done = next((e for e in effects if isinstance(e, Complete) and e.qualified), None)
    if done is not None:
        return CardEvent(handoff, True, done.score, done.reasons)
    return CardEvent(handoff) if handoff else None


def note_payload(
    chat_id: int,
    text: str | None,
    *,
    conversation_id: int | None = None,
    reply_to: int | None = None,
    topic: int | None = None,
    line: str | None = None,
    card_if_new: bool = False,
) -> dict[str, Any]:
    """A message into the group: in the conversation's thread when it has one, as a reply to
    `reply_to` when given (e.g. the rep's message it answers). A `line` is a prospect's words,
    masked and signed with their name when posted; `card_if_new` posts the lead's card with the
    text on top when the lead has no thread in the group yet."""
    return {
        "channel": CHANNEL,
        "chat": str(chat_id),
        "conversation_id": conversation_id,
        "text": text,
        "line": line,
        "card_if_new": card_if_new,
        "reply_to": reply_to,
        "topic": topic,
    }


def card_payload(chat_id: int, conversation_id: int, event: CardEvent) -> dict[str, Any]:
    return {
        "channel": CHANNEL,
        "chat": str(chat_id),
        "conversation_id": conversation_id,
        "event": {
            "handoff": list(event.handoff),
            "qualified": event.qualified,
            "score": event.score,
            "reasons": list(event.reasons),
        },
    }


def took_over_text(name: str, via: str) -> str:
    where = " from the console" if via == "console" else ""
    return f"✋ {name} took over{where}. Replies here go to the prospect. {HELP}"


class RepsWatcher:
    """Implements bot.watchers.TurnWatcher for the reps' group `chat_id`."""

    def __init__(self, chat_id: int) -> None:
        self.chat_id = chat_id

    def turn_saved(self, tx: Transaction, turn: SavedTurn) -> None:
        conversation = turn.conversation.id
        event = card_event(turn.effects)
        if event is not None:
            self._queue(tx, REP_CARD, card_payload(self.chat_id, conversation, event), turn)
        before = turn.conversation.state.status if turn.conversation.state else None
        if before not in WITH_PEOPLE:
            return
        line = _prospect_line(turn.inbound, turn.effects)
        if line is not None:
            self._queue(tx, REP_NOTE, self._note(conversation, None, line=line), turn)
        if _wait_ran_out(turn, before):
            text = (
                "⏰ Nobody took this lead in time: the bot told the prospect so and carries on "
                "with them. Take it over to write to them."
            )
            self._queue(tx, REP_NOTE, self._note(conversation, text), turn)

    def rep_acted(self, tx: Transaction, action: RepAction) -> None:
        conversation = action.conversation
        before = conversation.state.status if conversation.state else None
        in_thread = conversation.held_by is not None or before in WITH_PEOPLE
        text: str | None = None
        match action.action:
            case "took_over":
                text = took_over_text(action.rep_name, action.via)
            case "handed_back" if in_thread:
                text = f"↩️ {action.rep_name} handed this lead back to the bot."
            case "closed" if in_thread:
                text = f"🏁 {action.rep_name} closed this lead: {action.detail}."
            case "noted" if in_thread:
                text = f"📝 {action.rep_name}: {action.detail}"
            case "wrote" if action.via != "telegram":
                # From the group the rep's own message is already in the thread.
                text = f"💬 {action.rep_name} ({action.via}): {action.detail}"
        if text is None:
            return
        payload = self._note(conversation.id, text, card_if_new=action.action == "took_over")
        self._queue(tx, REP_NOTE, payload, action)

    def _note(
        self,
        conversation_id: int,
        text: str | None,
        *,
        line: str | None = None,
        card_if_new: bool = False,
    ) -> dict[str, Any]:
        return note_payload(
            self.chat_id,
            text,
            conversation_id=conversation_id,
            line=line,
            card_if_new=card_if_new,
        )

    @staticmethod
    def _queue(
        tx: Transaction, kind: str, payload: dict[str, Any], when: SavedTurn | RepAction
    ) -> None:
        # A key of its own: the row is written once, with its turn; the key only stops a
        # post from being made twice (its worker died before recording it).
        key = f"{kind}-{payload['conversation_id']}-{uuid.uuid4().hex}"
        now = when.now
        tx.outbox.add(kind=kind, idempotency_key=key, payload=payload, due_at=now, now=now)


def _prospect_line(inbound: Inbound | None, effects: Sequence[Effect]) -> str | None:
    """What the prospect said in this turn, as the transcript reads it."""
    match inbound:
        case TextReceived(text=text):
            return text
        case OptionPicked(question_id=question):
            for effect in effects:
                if isinstance(effect, RecordAnswer) and effect.question_id == question:
                    return effect.display
            return None
        case ContactShared(phone=phone):
            return f"[shared contact {phone}]"
        case _:
            return None


def _wait_ran_out(turn: SavedTurn, before: Status | None) -> bool:
    """The wait for a rep ended without one (a stale timer changes nothing)."""
    fired = turn.inbound
    return (
        isinstance(fired, SilenceTimerFired)
        and fired.kind is TimerKind.HANDOFF
        and before is Status.HANDED_OFF
        and turn.state.status is not Status.HANDED_OFF
    )
