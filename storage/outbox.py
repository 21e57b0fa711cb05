"""The outbox: work committed with a turn, claimed by dispatchers under a lease."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, bindparam, exists, or_, select, update

from bot.records import OutboxItem
from storage.prepared import execute
from storage.sql import insert_row
from storage.tables import MessageRow, OutboxRow

O = OutboxRow.__table__  # type: ignore[attr-defined]  # noqa: E741
M = MessageRow.__table__  # type: ignore[attr-defined]

# Built once (see storage/conversations.py): the claims, and a row's update after each send.
_EARLIER = O.alias("earlier")
_FREE_AND_DUE = (
    O.c.status == "pending",
    O.c.due_at <= bindparam("b_now"),
    or_(O.c.claimed_until.is_(None), O.c.claimed_until < bindparam("b_now")),
)
_HEADS = (
    # Only the head of each conversation's queue: its messages go out in the order the bot
    # wrote them, on one worker or many, retries included.
    ~exists().where(
        _EARLIER.c.conversation_id == O.c.conversation_id,
        _EARLIER.c.status == "pending",
        _EARLIER.c.id < O.c.id,
    ),
)
_DUE = (
    select(O.c.id)
    .where(*_FREE_AND_DUE, *_HEADS)
    .order_by(O.c.due_at, O.c.id)
    .limit(bindparam("b_limit"))
    .with_for_update(skip_locked=True)  # PostgreSQL: rows another worker holds are skipped
)
# The claim in one statement, the queue's usual form: lease the due heads and read them back.
_CLAIM = (
    update(O)
    .where(O.c.id.in_(_DUE.scalar_subquery()))
    .values(claimed_until=bindparam("b_until"), attempts=O.c.attempts + 1)
    .returning(
        O.c.id,
        O.c.kind,
        O.c.idempotency_key,
        O.c.payload,
        O.c.attempts,
        O.c.conversation_id,
        O.c.message_id,
        O.c.due_at,
    )
)
_FINISH = update(O).where(O.c.id == bindparam("b_id"))
_HAS_PENDING = (
    select(O.c.id)
    .where(O.c.conversation_id == bindparam("b_conversation"), O.c.status == "pending")
    .limit(1)
)
_MESSAGE_STATUS = update(M).where(M.c.id == bindparam("b_id"))


class SqlOutbox:
    def __init__(self, connection: Connection) -> None:
        self._connection = connection

    def add(
        self,
        *,
        kind: str,
        idempotency_key: str,
        payload: Mapping[str, Any],
        due_at: datetime,
        now: datetime,
        conversation_id: int | None = None,
        message_id: int | None = None,
    ) -> int:
        values = {
            "kind": kind,
            "idempotency_key": idempotency_key,
            "payload": dict(payload),
            "conversation_id": conversation_id,
            "message_id": message_id,
            "status": "pending",
            "due_at": due_at,
            "attempts": 0,
            "created_at": now,
        }
        return insert_row(self._connection, O, values)

    def claim_due(self, now: datetime, limit: int, lease: timedelta) -> list[OutboxItem]:
        """Lease up to `limit` due heads of their conversations' queues: oldest due first."""
        parameters = {"b_now": now, "b_limit": limit, "b_until": now + lease}
        claimed = sorted(execute(self._connection, _CLAIM, parameters), key=_due_order)
        return [_item(row) for row in claimed]

    def mark_sent(self, item: OutboxItem, provider_id: str | None, now: datetime) -> None:
        sent = {"status": "sent", "provider_id": provider_id, "finished_at": now}
        execute(self._connection, _FINISH, {**sent, "claimed_until": None, "b_id": item.id})
        if item.message_id is not None:
            line = {"status": "sent", "provider_message_id": provider_id, "b_id": item.message_id}
            execute(self._connection, _MESSAGE_STATUS, line)

    def has_pending(self, conversation_id: int) -> bool:
        found = execute(self._connection, _HAS_PENDING, {"b_conversation": conversation_id})
        return found.first() is not None

    def retry_later(self, item: OutboxItem, due_at: datetime, error: str) -> None:
        self._connection.execute(
            update(O)
            .where(O.c.id == item.id)
            .values(due_at=due_at, last_error=error[:1000], claimed_until=None)
        )

    def fail_pending(self, conversation_id: int, error: str, now: datetime) -> None:
        """Give up every message still waiting for this conversation (the prospect blocked us)."""
        waiting = (
            select(O.c.message_id)
            .where(O.c.conversation_id == conversation_id, O.c.status == "pending")
            .scalar_subquery()
        )
        self._connection.execute(
            update(M).where(M.c.id.in_(waiting)).values(status="failed", error=error[:1000])
        )
        self._connection.execute(
            update(O)
            .where(O.c.conversation_id == conversation_id, O.c.status == "pending")
            .values(status="failed", last_error=error[:1000], finished_at=now, claimed_until=None)
        )

    def mark_failed(self, item: OutboxItem, error: str, now: datetime) -> None:
        self._connection.execute(
            update(O)
            .where(O.c.id == item.id)
            .values(status="failed", last_error=error[:1000], finished_at=now, claimed_until=None)
        )
        if item.message_id is not None:
            self._connection.execute(
                update(M)
                .where(M.c.id == item.message_id)
                .values(status="failed", error=error[:1000])
            )

    def hold(self, item: OutboxItem, reason: str, now: datetime) -> None:
        self._connection.execute(
            update(O)
            .where(O.c.id == item.id)
            .values(status="held", last_error=reason[:1000], finished_at=now, claimed_until=None)
        )
        if item.message_id is not None:
            self._connection.execute(
                update(M)
                .where(M.c.id == item.message_id)
                .values(status="held", error=reason[:1000])
            )

    def skip(self, item: OutboxItem, reason: str, now: datetime) -> None:
        self._connection.execute(
            update(O)
            .where(O.c.id == item.id)
            .values(status="skipped", last_error=reason[:1000], finished_at=now, claimed_until=None)
        )
        if item.message_id is not None:  # e.g. a reminder outside a window: reps see why
            self._connection.execute(
                update(M)
                .where(M.c.id == item.message_id)
                .values(status="skipped", error=reason[:1000])
            )


def _due_order(row: Any) -> tuple[datetime, int]:
    return row.due_at, row.id


def _item(row: Any) -> OutboxItem:
    return OutboxItem(
        id=row.id,
        kind=row.kind,
        idempotency_key=row.idempotency_key,
        payload=row.payload,
        attempts=row.attempts,
        conversation_id=row.conversation_id,
        message_id=row.message_id,
    )
