"""Receipts of inbound deliveries, silence timers, and the script versions conversations use."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import (
    Connection,
    bindparam,
    delete,
    insert,
    literal,
    or_,
    select,
    update,
)

from bot.inbound import APPOINTMENT_TIMERS
from bot.privacy import hashed_address
from bot.records import DueTimer, Receipt
from bot.suppression import PHONE_CHANNELS  # their chat id is the prospect's number
from storage.prepared import execute
from storage.sql import insert_ignoring_conflict
from storage.tables import (
    AuditRow,
    ConversationRow,
    LeadRow,
    ReceiptRow,
    ScriptVersionRow,
    SuppressionRow,
    TimerRow,
)

R = ReceiptRow.__table__  # type: ignore[attr-defined]
T = TimerRow.__table__  # type: ignore[attr-defined]
S = ScriptVersionRow.__table__  # type: ignore[attr-defined]
X = SuppressionRow.__table__  # type: ignore[attr-defined]
A = AuditRow.__table__  # type: ignore[attr-defined]
C = ConversationRow.__table__  # type: ignore[attr-defined]
L = LeadRow.__table__  # type: ignore[attr-defined]


# Every claim of outbox rows asks which of its addresses opted out: this many addresses at a
# time, a long list in several runs of the one statement (the last run's list padded with its
# own last address). A statement built per call for its exact length cost more than the claim
# it checked, and an "expanding" IN would rewrite the statement's text on every execution.
CHECKED_AT_ONCE = 16
_SUPPRESSED = select(X.c.address).where(
    X.c.address.in_([bindparam(f"b_{n}") for n in range(CHECKED_AT_ONCE)])
)
# Every turn silences its conversation's timers; an appointment's reminders stay until it is
# moved or cancelled.
_CANCEL_ALL = delete(T).where(
    T.c.conversation_id == bindparam("b_conversation"),
    # One parameter per kind, not an "expanding" list, which is rendered anew on each run.
    T.c.kind.not_in([literal(kind.value) for kind in APPOINTMENT_TIMERS]),
)


class SqlReceipts:
    def __init__(self, connection: Connection) -> None:
        self._connection = connection

    def add(self, receipt: Receipt, now: datetime) -> bool:
        values = {
            "channel": receipt.channel,
            "provider_id": receipt.provider_id,
            "received_at": now,
        }
        return insert_ignoring_conflict(self._connection, R, values)


class SqlSuppressions:
    def __init__(self, connection: Connection) -> None:
        self._connection = connection

    def add(self, address: str, channel: str, reason: str, now: datetime) -> None:
        values = {"address": address, "channel": channel, "reason": reason[:200], "created_at": now}
        insert_ignoring_conflict(self._connection, X, values)

    def remove(self, address: str) -> None:
        stored = (address, hashed_address(address))
        self._connection.execute(delete(X).where(X.c.address.in_(stored)))

    def among(self, addresses: Sequence[str]) -> set[str]:
        if not addresses:
            return set()
        # An erased person's opt-out is kept under the hash of its address (storage/privacy.py).
        by_hash = {hashed_address(address): address for address in set(addresses)}
        wanted = sorted({*addresses, *by_hash})
        found: set[str] = set()
        for start in range(0, len(wanted), CHECKED_AT_ONCE):
            some = wanted[start : start + CHECKED_AT_ONCE]
            some += [some[-1]] * (CHECKED_AT_ONCE - len(some))
            parameters = {f"b_{number}": address for number, address in enumerate(some)}
            found.update(execute(self._connection, _SUPPRESSED, parameters).scalars())
        return {by_hash.get(address, address) for address in found}


class SqlAudit:
    def __init__(self, connection: Connection) -> None:
        self._connection = connection

    def add(
        self,
        *,
        conversation_id: int,
        lead_id: int,
        rep_id: int | None,
        actor: str,
        action: str,
        detail: str | None,
        now: datetime,
    ) -> None:
        self._connection.execute(
            insert(A).values(
                conversation_id=conversation_id,
                lead_id=lead_id,
                rep_id=rep_id,
                actor=actor[:200],
                action=action,
                detail=detail,
                at=now,
            )
        )


class SqlTimers:
    def __init__(self, connection: Connection) -> None:
        self._connection = connection

    def schedule(self, conversation_id: int, kind: str, seq: int, due_at: datetime) -> None:
        self._connection.execute(
            insert(T).values(conversation_id=conversation_id, kind=kind, seq=seq, due_at=due_at)
        )

    def cancel_all(self, conversation_id: int) -> None:
        execute(self._connection, _CANCEL_ALL, {"b_conversation": conversation_id})

    def claim_due(
        self, now: datetime, limit: int, lease: timedelta, kinds: Sequence[str]
    ) -> list[DueTimer]:
        due = (
            select(T.c.id)
            .where(
                T.c.due_at <= now,
                T.c.kind.in_(list(kinds)),
                or_(T.c.claimed_until.is_(None), T.c.claimed_until < now),
            )
            .order_by(T.c.due_at, T.c.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        ids = list(self._connection.execute(due).scalars())
        if not ids:
            return []
        self._connection.execute(update(T).where(T.c.id.in_(ids)).values(claimed_until=now + lease))
        # With where the lead is, for quiet hours: their number and the conversation's zone.
        claimed = self._connection.execute(
            select(
                T.c.id,
                T.c.conversation_id,
                T.c.kind,
                T.c.seq,
                C.c.channel,
                C.c.channel_user_id,
                C.c.state,
                L.c.phone,
            )
            .join(C, C.c.id == T.c.conversation_id)
            .join(L, L.c.id == C.c.lead_id)
            .where(T.c.id.in_(ids))
        )
        timers = [
            DueTimer(
                r.id,
                r.conversation_id,
                r.kind,
                r.seq,
                phone=r.phone or (r.channel_user_id if r.channel in PHONE_CHANNELS else None),
                timezone=(r.state or {}).get("timezone"),
            )
            for r in claimed
        ]
        return sorted(timers, key=lambda timer: ids.index(timer.id))

    def defer(self, timer_id: int, due_at: datetime) -> None:
        self._connection.execute(
            update(T).where(T.c.id == timer_id).values(due_at=due_at, claimed_until=None)
        )

    def done(self, timer: DueTimer) -> None:
        # SQLite gives a deleted row's id to the next insert: the turn the timer caused may
        # have replaced it by one with the same id, which is not done.
        self._connection.execute(
            delete(T).where(T.c.id == timer.id, T.c.kind == timer.kind, T.c.seq == timer.seq)
        )


class SqlScriptVersions:
    def __init__(self, connection: Connection) -> None:
        self._connection = connection

    def ensure(self, script_id: str, version: str, source: str, now: datetime) -> None:
        values = {"version": version, "script_id": script_id, "source": source, "created_at": now}
        insert_ignoring_conflict(self._connection, S, values)

    def source(self, version: str) -> str | None:
        query = select(S.c.source).where(S.c.version == version)
        return (self._connection.execute(query)).scalar_one_or_none()
