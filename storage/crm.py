"""CRM events and deliveries inside a turn's (or a worker's) transaction: bot.ports.CrmStore."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, and_, exists, insert, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite

from bot.crm_records import (
    ACTIVE,
    DISABLED,
    FAILED,
    PENDING,
    REMOVED,
    ConfiguredHook,
    Delivery,
    LeadView,
    NewEvent,
    Subscription,
)
from storage.sql import ignoring_conflict
from storage.tables import (
    CrmDeliveryRow,
    CrmEventRow,
    CrmSequenceRow,
    CrmSubscriptionRow,
    LeadRow,
)

L = LeadRow.__table__  # type: ignore[attr-defined]
SUBS = CrmSubscriptionRow.__table__  # type: ignore[attr-defined]
SEQ = CrmSequenceRow.__table__  # type: ignore[attr-defined]
EV = CrmEventRow.__table__  # type: ignore[attr-defined]
D = CrmDeliveryRow.__table__  # type: ignore[attr-defined]
DROPPED_REASON = "the subscription was removed"


def lead_view(row: Any) -> LeadView:
    return LeadView(
        id=row.id,
        reference=row.reference,
        source=row.source,
        external_id=row.external_id,
        script_id=row.script_id,
        is_test=row.is_test,
        submitted_at=row.submitted_at,
        fields=row.fields or {},
        attribution=row.attribution or {},
        phone=row.phone,
        email=row.email,
        language=row.language,
        answers=row.answers or {},
        score=row.score,
        reasons=row.reasons or [],
        outcome=row.outcome,
        qualified=row.qualified,
        consent_text=row.consent_text,
        consent_at=row.consent_at,
        conversation_started_at=row.conversation_started_at,
        completed_at=row.completed_at,
    )


LEAD_COLUMNS = [
    L.c[name]
    for name in (
        "id",
        "reference",
        "source",
        "external_id",
        "script_id",
        "is_test",
        "submitted_at",
        "fields",
        "attribution",
        "phone",
        "email",
        "language",
        "answers",
        "score",
        "reasons",
        "outcome",
        "qualified",
        "consent_text",
        "consent_at",
        "conversation_started_at",
        "completed_at",
    )
]


def subscription(row: Any) -> Subscription:
    return Subscription(
        id=row.id,
        name=row.name,
        url=row.url,
        events=frozenset(row.events or ()),
        origin=row.origin,
        status=row.status,
    )


def new_delivery_id() -> str:
    return str(uuid.uuid4())


class SqlCrm:
    def __init__(self, connection: Connection) -> None:
        self._connection = connection

    def lead_view(self, lead_id: int) -> LeadView | None:
        row = self._connection.execute(select(*LEAD_COLUMNS).where(L.c.id == lead_id)).first()
        return lead_view(row) if row is not None else None

    def _next_sequence(self, lead_id: int) -> int:
        # One statement that takes the counter's row lock: two conversations of one lead, on
        # two workers, get 3 and 4, never 3 twice.
        dialect = postgresql if self._connection.dialect.name == "postgresql" else sqlite
        statement = (
            dialect.insert(SEQ)
            .values(lead_id=lead_id, last=1)
            .on_conflict_do_update(index_elements=[SEQ.c.lead_id], set_={"last": SEQ.c.last + 1})
            .returning(SEQ.c.last)
        )
        return int(self._connection.execute(statement).scalar_one())

    def record(self, event: NewEvent, subscription_ids: Sequence[int], now: datetime) -> int:
        sequence = self._next_sequence(event.lead_id)
        event_id = self._connection.execute(
            insert(EV)
            .values(
                lead_id=event.lead_id,
                sequence=sequence,
                event=event.event,
                body=dict(event.body),
                occurred_at=event.occurred_at,
            )
            .returning(EV.c.id)
        ).scalar_one()
        if subscription_ids:
            self._connection.execute(
                insert(D),
                [
                    _pending(int(event_id), sid, event.lead_id, sequence, now)
                    for sid in subscription_ids
                ],
            )
        return sequence

    def subscriptions(self) -> list[Subscription]:
        query = select(SUBS).where(SUBS.c.status == ACTIVE).order_by(SUBS.c.id)
        return [subscription(row) for row in self._connection.execute(query)]

    def sync_configured(self, hooks: Sequence[ConfiguredHook], now: datetime) -> None:
        stored = {
            row.name: row
            for row in self._connection.execute(select(SUBS).where(SUBS.c.origin == "settings"))
        }
        for hook in hooks:
            events = sorted(hook.events)
            row = stored.get(hook.name)
            if row is None:
                self._connection.execute(
                    ignoring_conflict(self._connection.dialect.name, SUBS).values(
                        name=hook.name,
                        origin="settings",
                        url=hook.url,
                        events=events,
                        status=ACTIVE,
                        created_at=now,
                        updated_at=now,
                    )  # (ignored if another worker starting at the same moment was first)
                )
                continue
            changes: dict[str, Any] = {}
            if row.url != hook.url or row.status == REMOVED:
                # A new address (or back in settings): whatever made it stop is history.
                changes.update(url=hook.url, status=ACTIVE, status_reason=None)
            if sorted(row.events or ()) != events:
                changes["events"] = events
            if changes:
                changes["updated_at"] = now
                self._connection.execute(update(SUBS).where(SUBS.c.id == row.id).values(changes))
        named = {hook.name for hook in hooks}
        for name, row in stored.items():
            if name not in named and row.status != REMOVED:
                self.remove(row.id, "taken out of settings", now)

    def remove(self, subscription_id: int, reason: str, now: datetime) -> None:
        """No more events for it; what was waiting is dropped (nobody to deliver to)."""
        self._connection.execute(
            update(SUBS)
            .where(SUBS.c.id == subscription_id)
            .values(status=REMOVED, status_reason=reason, updated_at=now)
        )
        self._finish_pending(subscription_id, "dropped", DROPPED_REASON, now)

    def disable(self, subscription_id: int, reason: str, now: datetime) -> None:
        self._connection.execute(
            update(SUBS)
            .where(SUBS.c.id == subscription_id, SUBS.c.status == ACTIVE)
            .values(status=DISABLED, status_reason=reason[:1000], updated_at=now)
        )
        self._finish_pending(subscription_id, FAILED, "the subscription was disabled", now)

    def _finish_pending(self, subscription_id: int, status: str, error: str, now: datetime) -> None:
        self._connection.execute(
            update(D)
            .where(D.c.subscription_id == subscription_id, D.c.status == PENDING)
            .values(status=status, last_error=error, finished_at=now, claimed_until=None)
        )

    def claim_due(self, now: datetime, limit: int, lease: timedelta) -> list[Delivery]:
        earlier = D.alias("earlier")
        due = (
            select(D.c.id)
            .where(
                D.c.status == PENDING,
                D.c.due_at <= now,
                or_(D.c.claimed_until.is_(None), D.c.claimed_until < now),
                # Only the head of each (subscription, lead) queue: a lead's events reach each
                # receiver in sequence order, on one worker or many, retries included.
                ~exists().where(
                    earlier.c.subscription_id == D.c.subscription_id,
                    earlier.c.lead_id == D.c.lead_id,
                    earlier.c.status == PENDING,
                    or_(
                        earlier.c.sequence < D.c.sequence,
                        and_(earlier.c.sequence == D.c.sequence, earlier.c.id < D.c.id),
                    ),
                ),
                exists().where(SUBS.c.id == D.c.subscription_id, SUBS.c.status == ACTIVE),
            )
            .order_by(D.c.due_at, D.c.id)
            .limit(limit)
            .with_for_update(skip_locked=True, of=D)  # rows another worker holds are skipped
        )
        ids = list(self._connection.execute(due).scalars())
        if not ids:
            return []
        self._connection.execute(
            update(D)
            .where(D.c.id.in_(ids))
            .values(claimed_until=now + lease, attempts=D.c.attempts + 1)
        )
        rows = self._connection.execute(
            select(
                D.c.id,
                D.c.delivery_id,
                D.c.lead_id,
                D.c.sequence,
                D.c.attempts,
                D.c.queued_at,
                D.c.subscription_id,
                EV.c.event,
                EV.c.body,
                SUBS.c.name,
                SUBS.c.url,
                SUBS.c.secret,
            )
            .join(EV, EV.c.id == D.c.event_id)
            .join(SUBS, SUBS.c.id == D.c.subscription_id)
            .where(D.c.id.in_(ids))
        )
        found = {
            row.id: Delivery(
                id=row.id,
                delivery_id=row.delivery_id,
                event=row.event,
                lead_id=row.lead_id,
                sequence=row.sequence,
                body=row.body or {},
                subscription_id=row.subscription_id,
                subscription_name=row.name,
                url=row.url,
                secret=row.secret,
                attempts=row.attempts,
                queued_at=row.queued_at,
            )
            for row in rows
        }
        return [found[i] for i in ids if i in found]

    def delivered(self, delivery: Delivery, status: int, now: datetime) -> None:
        self._connection.execute(
            update(D)
            .where(D.c.id == delivery.id)
            .values(
                status="delivered",
                last_status=status,
                last_error=None,
                finished_at=now,
                claimed_until=None,
            )
        )

    def retry_later(
        self, delivery: Delivery, due_at: datetime, status: int | None, error: str
    ) -> None:
        self._connection.execute(
            update(D)
            # Still pending: a delivery dropped while it was in flight (its hook removed, its
            # lead erased) keeps that outcome and its reason.
            .where(D.c.id == delivery.id, D.c.status == PENDING)
            .values(due_at=due_at, last_status=status, last_error=error[:1000], claimed_until=None)
        )

    def failed(self, delivery: Delivery, status: int | None, error: str, now: datetime) -> None:
        self._connection.execute(
            update(D)
            .where(D.c.id == delivery.id, D.c.status == PENDING)  # as in retry_later
            .values(
                status=FAILED,
                last_status=status,
                last_error=error[:1000],
                finished_at=now,
                claimed_until=None,
            )
        )


def _pending(
    event_id: int, subscription_id: int, lead_id: int, sequence: int, now: datetime
) -> dict[str, Any]:
    return {
        "delivery_id": new_delivery_id(),
        "event_id": event_id,
        "subscription_id": subscription_id,
        "lead_id": lead_id,
        "sequence": sequence,
        "status": PENDING,
        "attempts": 0,
        "due_at": now,
        "claimed_until": None,
        "queued_at": now,
        "last_status": None,
        "last_error": None,
        "created_at": now,
        "finished_at": None,
    }
