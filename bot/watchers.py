"""Watchers see each saved turn and each rep action inside its transaction, so what they queue
(a card for the reps' Telegram group, an event for the CRM) commits with the turn or not at all:
a crash can never leave a handoff that nobody was told about.

A watcher only writes through the transaction it is given; it must be quick (it runs under the
conversation's lock) and must not raise for anything but a real storage failure, which rolls
the turn back like any other.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from bot.effects import Effect
from bot.inbound import Inbound
from bot.ports import Transaction
from bot.records import Conversation
from bot.state import ConversationState


@dataclass(frozen=True, slots=True)
class SavedTurn:
    conversation: Conversation  # as it was loaded for the turn
    state: ConversationState  # after the turn
    effects: tuple[Effect, ...]
    inbound: Inbound | None  # None for a conversation's first turn
    now: datetime
    started: bool = False  # the conversation's first turn


@dataclass(frozen=True, slots=True)
class RepAction:
    conversation: Conversation
    rep_id: int
    rep_name: str
    action: str  # took_over, wrote, handed_back, closed, noted (as in the audit log)
    detail: str | None
    now: datetime
    via: str = "console"  # where the rep acted from: console, telegram


class TurnWatcher(Protocol):
    def turn_saved(self, tx: Transaction, turn: SavedTurn) -> None:
        """Called in the turn's transaction, after everything it wrote."""

    def rep_acted(self, tx: Transaction, action: RepAction) -> None:
        """Called in the action's transaction, after its audit line."""
