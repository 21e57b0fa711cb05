"""Turn what happened to a lead into CRM events, written in the same transaction as the change
(a crash never leaves a qualified lead the CRM is not told about, nor tells it of one that was
rolled back)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from bot.crm_body import appointment_json, conversation_json, event_body
from bot.crm_records import LeadView, NewEvent
from bot.crm_routes import CrmRoutes
from bot.effects import (
    BookAppointment,
    CancelAppointment,
    Closed,
    Complete,
    Effect,
    HandOff,
    RecordAnswer,
    RecordConsent,
)
from bot.ports import Transaction
from bot.watchers import RepAction, SavedTurn


def turn_events(effects: tuple[Effect, ...]) -> list[tuple[str, str | None]]:
    """(event, handoff reason) for each event a turn's effects make, in the order a CRM should
    apply them: the answers first, then the verdict, then what happens to the conversation."""
    events: list[tuple[str, str | None]] = []
    if any(isinstance(e, RecordAnswer | RecordConsent) for e in effects):
        events.append(("lead.updated", None))
    for effect in effects:
        match effect:
            case Complete(qualified=qualified):
                if qualified is True:
                    events.append(("lead.qualified", None))
                elif qualified is False:
                    events.append(("lead.disqualified", None))
                events.append(("lead.completed", None))
            case HandOff(reason=reason):
                events.append(("conversation.handoff", reason))
            case Closed():
                events.append(("conversation.closed", None))
            case _:
                pass
    return events


def appointment_events(effects: tuple[Effect, ...]) -> list[tuple[str, dict[str, Any]]]:
    """(event, the body's `appointment`) for each booking made or cancelled, in turn order."""
    events: list[tuple[str, dict[str, Any]]] = []
    for effect in effects:
        match effect:
            case BookAppointment():
                events.append(("appointment.booked", appointment_json(effect)))
            case CancelAppointment():
                events.append(("appointment.cancelled", appointment_json(effect)))
            case _:
                pass
    return events


class CrmWatcher:
    """Implements bot.watchers.TurnWatcher, and records lead.created for the intake."""

    def __init__(self, routes: CrmRoutes) -> None:
        self._routes = routes
        # Events written so far, and how many the worker was told of: a commit wakes the
        # worker only when there is news (a wake costs it a claim transaction).
        self._recorded = 0
        self._told = 0

    def take_news(self) -> bool:
        """Whether events were written since the last call (a rolled-back one counts too:
        a wake for nothing is harmless, a missed one only waits for the worker's next poll)."""
        news = self._recorded != self._told
        self._told = self._recorded
        return news

    def turn_saved(self, tx: Transaction, turn: SavedTurn) -> None:
        events = turn_events(turn.effects)
        booked = appointment_events(turn.effects)
        names = [*(event for event, _ in events), *(event for event, _ in booked)]
        if not self._routes.any_wanted(names):
            return  # the common case: not one statement
        conversation = turn.conversation
        lead = tx.crm.lead_view(conversation.lead_id)  # once: every event shows it as it is now
        if lead is None:
            return
        for event, reason in events:
            shown = conversation_json(
                conversation.id, conversation.channel, turn.state.status.value, reason
            )
            self._record(tx, lead, event, turn.now, shown)
        for event, appointment in booked:
            shown = conversation_json(
                conversation.id, conversation.channel, turn.state.status.value
            )
            self._record(tx, lead, event, turn.now, shown, appointment=appointment)

    def rep_acted(self, tx: Transaction, action: RepAction) -> None:
        """A rep's close reaches turn_saved as a Closed effect; nothing else here is an event."""

    def lead_created(self, tx: Transaction, lead_id: int, now: datetime) -> bool:
        if not self._routes.wanted("lead.created"):
            return False
        lead = tx.crm.lead_view(lead_id)
        if lead is None:
            return False
        self._record(tx, lead, "lead.created", now, None)
        return True

    def _record(
        self,
        tx: Transaction,
        lead: LeadView,
        event: str,
        now: datetime,
        conversation: Mapping[str, Any] | None,
        *,
        appointment: Mapping[str, Any] | None = None,
    ) -> None:
        wanted = self._routes.wanted(event)
        if wanted:
            self._recorded += 1
            body = event_body(event, lead, now, conversation, appointment)
            tx.crm.record(NewEvent(lead.id, event, now, body), wanted, now)
