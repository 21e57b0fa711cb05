"""Everything held about one person: export it as JSON, or erase it from every table.

An erased lead stays as an anonymous row (source, script, campaign ids, timestamps, outcome,
score) so that funnel counts still add up; everything that names or reaches the person goes:
its form fields, answers, phone and email, its conversations with their transcripts, timers and
reps' threads, the outbox rows that would write to them or about them, its audit details and
CRM event bodies, the words of its consents (their versions and times stay). Its bookings still
to come are cancelled, their seats freed; booking rows stay, anonymous, for the funnel. An
opt-out is a must-not-contact record and is kept, as a SHA-256 of the address
(bot.privacy.hashed_address), which still matches.

Each table's part is one function in ERASERS and EXPORTERS (the CRM's events and deliveries:
`_erase_crm`, `_export_crm`): a new table that holds personal data adds its own pair there
(appointments' eraser needs the time, so `erase` calls it after the others).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    String,
    Table,
    cast,
    delete,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncConnection

from bot.privacy import hashed_address
from bot.suppression import PHONE_CHANNELS, address_of
from storage.crm_admin import erase_crm_data
from storage.db import Database
from storage.errors import StorageError
from storage.sql import ignoring_conflict
from storage.tables import (
    AppointmentRow,
    AuditRow,
    ConsentRow,
    ConversationRow,
    CrmDeliveryRow,
    CrmEventRow,
    LeadRow,
    MessageRow,
    OutboxRow,
    ReceiptRow,
    RepGroupMessageRow,
    RepThreadRow,
    SuppressionRow,
    TimerRow,
)

L: Table = LeadRow.__table__  # type: ignore[attr-defined]
CONSENTS: Table = ConsentRow.__table__  # type: ignore[attr-defined]
C: Table = ConversationRow.__table__  # type: ignore[attr-defined]
M: Table = MessageRow.__table__  # type: ignore[attr-defined]
O: Table = OutboxRow.__table__  # type: ignore[attr-defined]  # noqa: E741
A: Table = AuditRow.__table__  # type: ignore[attr-defined]
X: Table = SuppressionRow.__table__  # type: ignore[attr-defined]
R: Table = ReceiptRow.__table__  # type: ignore[attr-defined]
T: Table = TimerRow.__table__  # type: ignore[attr-defined]
THREADS: Table = RepThreadRow.__table__  # type: ignore[attr-defined]
GROUP_MESSAGES: Table = RepGroupMessageRow.__table__  # type: ignore[attr-defined]
CRM_EVENTS: Table = CrmEventRow.__table__  # type: ignore[attr-defined]
CRM_DELIVERIES: Table = CrmDeliveryRow.__table__  # type: ignore[attr-defined]
APPOINTMENTS: Table = AppointmentRow.__table__  # type: ignore[attr-defined]

WEB_CHAT = "web"  # webhooks.webchat.CHANNEL: its receipts are "<conversation id>:<client id>"
ERASED = "erased"  # the audit line's action


class UnknownLeadError(StorageError):
    """No lead has this id (or none has this phone or email)."""


@dataclass(frozen=True, slots=True)
class Person:
    """One lead and what reaches its person, as found before an export or an erasure."""

    lead_id: int
    phone: str | None
    email: str | None
    conversation_ids: tuple[int, ...]
    addresses: tuple[str, ...]  # bot.suppression addresses: phone:+34..., telegram:123...
    erased: bool


@dataclass(frozen=True, slots=True)
class Erasure:
    """What an erasure removed; `already`: the lead had been erased before, nothing changed."""

    lead_id: int
    already: bool
    removed: Mapping[str, int]  # rows removed or emptied, by what they were
    conversation_ids: tuple[int, ...] = ()  # those that are gone (open console pages say so)

    def summary(self) -> str:
        """For the audit log and the command line: counts, never contents."""
        return ", ".join(f"{what} {count}" for what, count in self.removed.items() if count)


def _json(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


def _rows(result: Any) -> list[dict[str, Any]]:
    return [{key: _json(value) for key, value in row._mapping.items()} for row in result]


# -- finding the person ------------------------------------------------------------------------


async def _person(connection: AsyncConnection, lead_id: int, *, lock: bool) -> Person | None:
    query = select(L.c.id, L.c.phone, L.c.email, L.c.erased_at).where(L.c.id == lead_id)
    chats = select(C.c.id, C.c.channel, C.c.channel_user_id).where(C.c.lead_id == lead_id)
    if lock:  # a turn of this lead waits for the erasure, then finds nothing (PostgreSQL)
        query, chats = query.with_for_update(), chats.with_for_update()
    lead = (await connection.execute(query)).first()
    if lead is None:
        return None
    conversations = (await connection.execute(chats.order_by(C.c.id))).all()
    addresses = {address_of(row.channel, row.channel_user_id) for row in conversations}
    if lead.phone:
        addresses.add(address_of("sms", lead.phone))
    return Person(
        lead_id=lead.id,
        phone=lead.phone,
        email=lead.email,
        conversation_ids=tuple(row.id for row in conversations),
        addresses=tuple(sorted(addresses)),
        erased=lead.erased_at is not None,
    )


def _outbox_of(person: Person) -> ColumnElement[bool]:
    """The outbox rows that write to the person or about them: their conversations' messages,
    the first contact, and rows about them that name no conversation (reps' group cards)."""
    ids = list(person.conversation_ids)

    def named(key: str) -> ColumnElement[Any]:
        # Compared as text: a payload whose value there is not a number is simply not theirs
        # (an integer CAST would fail the whole erasure on PostgreSQL).
        return cast(O.c.payload[key].as_string(), String)

    return or_(
        O.c.conversation_id.in_(ids),
        O.c.idempotency_key == f"first-contact-{person.lead_id}",
        named("lead_id") == str(person.lead_id),
        named("conversation_id").in_([str(one) for one in ids]),
    )


def _suppressions_of(person: Person) -> ColumnElement[bool]:
    hashed = [hashed_address(address) for address in person.addresses]
    return X.c.address.in_([*person.addresses, *hashed])


# -- export ------------------------------------------------------------------------------------


async def _export_lead(connection: AsyncConnection, person: Person) -> Any:
    row = (await connection.execute(select(L).where(L.c.id == person.lead_id))).one()
    return {key: _json(value) for key, value in row._mapping.items()}


async def _export_consents(connection: AsyncConnection, person: Person) -> Any:
    query = select(CONSENTS).where(CONSENTS.c.lead_id == person.lead_id).order_by(CONSENTS.c.id)
    return _rows(await connection.execute(query))


async def _export_conversations(connection: AsyncConnection, person: Person) -> Any:
    found = []
    for conversation_id in person.conversation_ids:
        row = (await connection.execute(select(C).where(C.c.id == conversation_id))).one()
        lines = select(M).where(M.c.conversation_id == conversation_id).order_by(M.c.id)
        threads = select(THREADS).where(THREADS.c.conversation_id == conversation_id)
        found.append(
            {
                **{key: _json(value) for key, value in row._mapping.items()},
                "transcript": _rows(await connection.execute(lines)),
                "reps_group_threads": _rows(await connection.execute(threads)),
            }
        )
    return found


async def _export_outbox(connection: AsyncConnection, person: Person) -> Any:
    return _rows(await connection.execute(select(O).where(_outbox_of(person)).order_by(O.c.id)))


async def _export_audit(connection: AsyncConnection, person: Person) -> Any:
    mine = or_(A.c.lead_id == person.lead_id, A.c.conversation_id.in_(person.conversation_ids))
    return _rows(await connection.execute(select(A).where(mine).order_by(A.c.id)))


async def _export_suppressions(connection: AsyncConnection, person: Person) -> Any:
    query = select(X).where(_suppressions_of(person)).order_by(X.c.address)
    return _rows(await connection.execute(query))


async def _export_crm(connection: AsyncConnection, person: Person) -> Any:
    events = select(CRM_EVENTS).where(CRM_EVENTS.c.lead_id == person.lead_id)
    deliveries = select(CRM_DELIVERIES).where(CRM_DELIVERIES.c.lead_id == person.lead_id)
    return {
        "events": _rows(await connection.execute(events.order_by(CRM_EVENTS.c.sequence))),
        "deliveries": _rows(await connection.execute(deliveries.order_by(CRM_DELIVERIES.c.id))),
    }


async def _export_appointments(connection: AsyncConnection, person: Person) -> Any:
    query = select(APPOINTMENTS).where(APPOINTMENTS.c.lead_id == person.lead_id)
    return _rows(await connection.execute(query.order_by(APPOINTMENTS.c.id)))


# -- erasure -----------------------------------------------------------------------------------


async def _erase_appointments(
    connection: AsyncConnection, person: Person, now: datetime
) -> dict[str, int]:
    """Bookings still to come are cancelled and give their seats back (nobody is coming, and
    nobody could be told); every booking keeps its anonymous row (slot, status, times) for
    the funnel, without its conversation. Runs after the conversations are gone."""
    mine = APPOINTMENTS.c.lead_id == person.lead_id
    freed = await connection.execute(
        update(APPOINTMENTS)
        .where(mine, APPOINTMENTS.c.status == "booked", APPOINTMENTS.c.starts_at > now)
        .values(status="cancelled", seat=None, cancelled_at=now, cancelled_by="erased")
    )
    await connection.execute(update(APPOINTMENTS).where(mine).values(conversation_id=None))
    return {"appointments_cancelled": int(freed.rowcount)}


async def _erase_outbox(connection: AsyncConnection, person: Person) -> dict[str, int]:
    # Pending rows go too: nothing is sent to, or about, an erased person.
    result = await connection.execute(delete(O).where(_outbox_of(person)))
    return {"outbox": int(result.rowcount)}


async def _erase_conversations(connection: AsyncConnection, person: Person) -> dict[str, int]:
    """Conversations and everything hanging off them, child tables first (the foreign keys
    cascade, but an erasure should not hang on a pragma). Their audit lines stay, without
    their details or conversation: who took over, wrote and closed, and when, is the
    business's record; what was written was the person's."""
    ids = list(person.conversation_ids)
    if not ids:
        return {}
    count = select(func.count()).select_from(M).where(M.c.conversation_id.in_(ids))
    messages = int((await connection.execute(count)).scalar_one())
    for table in (T, GROUP_MESSAGES, THREADS, M):
        await connection.execute(delete(table).where(table.c.conversation_id.in_(ids)))
    await connection.execute(
        update(A)
        .where(A.c.conversation_id.in_(ids))
        .values(conversation_id=None, lead_id=person.lead_id, detail=None)
    )
    web = or_(*(R.c.provider_id.startswith(f"{conversation_id}:") for conversation_id in ids))
    await connection.execute(delete(R).where(R.c.channel == WEB_CHAT, web))
    result = await connection.execute(delete(C).where(C.c.id.in_(ids)))
    return {"conversations": int(result.rowcount), "messages": messages}


async def _erase_audit_details(connection: AsyncConnection, person: Person) -> dict[str, int]:
    """Every audit line of the lead keeps who did what and when, never a detail."""
    result = await connection.execute(
        update(A).where(A.c.lead_id == person.lead_id, A.c.detail.is_not(None)).values(detail=None)
    )
    return {"audit_details": int(result.rowcount)}


async def _erase_suppressions(connection: AsyncConnection, person: Person) -> dict[str, int]:
    """Keep each opt-out, under the hash of its address: still never written to."""
    query = select(X).where(X.c.address.in_(list(person.addresses)))
    rows = (await connection.execute(query)).all()
    for row in rows:
        await connection.execute(delete(X).where(X.c.address == row.address))
        hashed = {
            "address": hashed_address(row.address),
            "channel": row.channel,
            "reason": row.reason,
            "created_at": row.created_at,
        }
        await connection.execute(ignoring_conflict(connection.dialect.name, X).values(hashed))
    return {"opt_outs_hashed": len(rows)}


async def _erase_consents(connection: AsyncConnection, person: Person) -> dict[str, int]:
    """The words go (a rendered prompt may hold the name); version, channel and time stay."""
    result = await connection.execute(
        update(CONSENTS)
        .where(CONSENTS.c.lead_id == person.lead_id, CONSENTS.c.text.is_not(None))
        .values(text=None)
    )
    return {"consent_texts": int(result.rowcount)}


async def _erase_lead(connection: AsyncConnection, person: Person, now: datetime) -> None:
    """The anonymous shell: a lower-case reference is never found by a typed code, and the
    external id no longer names the source's record of the person."""
    lead_id = person.lead_id
    reference = f"erased-{lead_id}" if lead_id < 10**9 else f"e{lead_id}"
    await connection.execute(
        update(L)
        .where(L.c.id == lead_id)
        .values(
            external_id=f"erased:{lead_id}",
            reference=reference,
            fields={},
            raw={},
            answers={},
            phone=None,
            email=None,
            consent_text=None,
            erased_at=now,
            updated_at=now,
        )
    )


Exporter = Callable[[AsyncConnection, Person], Awaitable[Any]]
Eraser = Callable[[AsyncConnection, Person], Awaitable[dict[str, int]]]

EXPORTERS: tuple[tuple[str, Exporter], ...] = (
    ("lead", _export_lead),
    ("consents", _export_consents),
    ("conversations", _export_conversations),
    ("outbox", _export_outbox),
    ("audit_log", _export_audit),
    ("suppressions", _export_suppressions),
    ("crm", _export_crm),
    ("appointments", _export_appointments),
)


async def _erase_crm(connection: AsyncConnection, person: Person) -> dict[str, int]:
    """CRM event bodies keep nothing personal, deliveries still waiting are dropped
    (storage/crm_admin.py); and a receiver's error text goes too: it may quote the body."""
    removed = await erase_crm_data(connection, person.lead_id)
    quoted = await connection.execute(
        update(CRM_DELIVERIES)
        .where(CRM_DELIVERIES.c.lead_id == person.lead_id, CRM_DELIVERIES.c.last_error.is_not(None))
        .values(last_error="the lead was erased")
    )
    return {**removed, "crm_delivery_errors": int(quoted.rowcount)}


# The outbox first: its rows are found through the conversations, which go next.
ERASERS: tuple[Eraser, ...] = (
    _erase_outbox,
    _erase_conversations,
    _erase_audit_details,
    _erase_suppressions,
    _erase_consents,
    _erase_crm,
)


class SqlPrivacy:
    """Export and erasure, on the Database (like the console's records: not a turn)."""

    def __init__(self, database: Database) -> None:
        self._database = database

    async def export(self, lead_id: int, *, actor: str, now: datetime) -> dict[str, Any]:
        """Everything held about the lead's person; the export itself goes in the audit log."""
        async with self._database.writing() as connection:
            person = await _person(connection, lead_id, lock=False)
            if person is None:
                raise UnknownLeadError(f"no lead with id {lead_id}")
            found: dict[str, Any] = {"format": "leadbot.lead-export/1", "exported_at": _json(now)}
            for name, exporter in EXPORTERS:
                found[name] = await exporter(connection, person)
            await _audit(connection, lead_id, actor=actor, action="exported", detail=None, now=now)
            await connection.commit()
        return found

    async def leads_with(self, *, phone: str | None = None, email: str | None = None) -> list[int]:
        """The leads (not erased) with this E.164 number, on the form or as their chat on SMS
        or WhatsApp; or with this email, in any case."""
        alive = L.c.erased_at.is_(None)
        if phone is not None:
            by_chat = select(C.c.lead_id).where(
                C.c.channel.in_(sorted(PHONE_CHANNELS)), C.c.channel_user_id == phone
            )
            query = select(L.c.id).where(alive, or_(L.c.phone == phone, L.c.id.in_(by_chat)))
        elif email is not None:
            query = select(L.c.id).where(alive, func.lower(L.c.email) == email.strip().lower())
        else:
            raise ValueError("give a phone or an email")
        async with self._database.reading() as connection:
            return list((await connection.execute(query.order_by(L.c.id))).scalars())

    async def erase(self, lead_id: int, *, actor: str, now: datetime) -> Erasure:
        """Erase the lead's personal data in one transaction; again, it changes nothing."""
        async with self._database.writing() as connection:
            if connection.dialect.name == "sqlite":
                # Freed space is overwritten, so the erased values do not linger in the file.
                await connection.exec_driver_sql("PRAGMA secure_delete=ON")
            person = await _person(connection, lead_id, lock=True)
            if person is None:
                raise UnknownLeadError(f"no lead with id {lead_id}")
            if person.erased:
                return Erasure(lead_id, already=True, removed={})
            removed: dict[str, int] = {}
            for eraser in ERASERS:
                removed.update(await eraser(connection, person))
            removed.update(await _erase_appointments(connection, person, now))
            await _erase_lead(connection, person, now)
            erasure = Erasure(lead_id, False, removed, person.conversation_ids)
            detail = erasure.summary() or None
            await _audit(connection, lead_id, actor=actor, action=ERASED, detail=detail, now=now)
            await connection.commit()
        return erasure


async def _audit(
    connection: AsyncConnection,
    lead_id: int,
    *,
    actor: str,
    action: str,
    detail: str | None,
    now: datetime,
) -> None:
    values = {
        "conversation_id": None,
        "lead_id": lead_id,
        "rep_id": None,
        "actor": actor[:200],
        "action": action,
        "detail": detail,
        "at": now,
    }
    await connection.execute(insert(A).values(values))
