"""A person held in every table (for export and erasure tests), and a dump of the whole
database to look for them in."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, MetaData, insert, select

from bot.ports import Transaction
from bot.records import NewLead, Receipt
from bot.state import ConversationState
from storage.db import Database
from storage.rep_threads import SqlRepThreads
from storage.tables import CrmDeliveryRow, CrmEventRow, CrmSubscriptionRow
from storage.transactions import SqlStorage

SCRIPT = "privacy-test"
VERSION = "v-privacy-1"
REPS_CHAT = -100123
CRM_SUBSCRIPTIONS = CrmSubscriptionRow.__table__  # type: ignore[attr-defined]
CRM_EVENTS = CrmEventRow.__table__  # type: ignore[attr-defined]
CRM_DELIVERIES = CrmDeliveryRow.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True)
class Person:
    first_name: str
    last_name: str
    phone: str  # E.164
    typed_phones: tuple[str, ...]  # how they wrote it
    email: str
    telegram_chat: str
    external_id: str

    @property
    def needles(self) -> list[str]:
        """What must not be found after an erasure, in lower case."""
        found = [
            self.first_name,
            self.last_name,
            self.phone,
            self.phone.lstrip("+"),
            self.phone[3:],
            *self.typed_phones,
            self.email,
            self.telegram_chat,
        ]
        return [needle.lower() for needle in found]


ZELDA = Person(
    first_name="Zelda",
    last_name="Quimby",
    phone="+34612345678",
    typed_phones=("612 345 678", "612-345-678", "612 34 56 78", "+34 612 345 678"),
    email="zelda.quimby@example.org",
    telegram_chat="987654321",
    external_id="7301000000000000001",
)
OTTO = Person(
    first_name="Otto",
    last_name="Brandtner",
    phone="+34699887766",
    typed_phones=("699 887 766", "699-887-766", "+34 699 887 766"),
    email="otto.brandtner@example.net",
    telegram_chat="123454321",
    external_id="7301000000000000002",
)


@dataclass(frozen=True)
class Held:
    lead_id: int
    sms_conversation: int
    telegram_conversation: int


async def hold(storage: SqlStorage, database: Database, person: Person, now: datetime) -> Held:
    """Put `person` in every table that can hold a person, the way the app would."""

    def work(tx: Transaction) -> Held:
        tx.scripts.ensure(SCRIPT, VERSION, "id: privacy-test", now)
        lead, _ = tx.leads.add(
            NewLead(
                source="tiktok",
                external_id=person.external_id,
                script_id=SCRIPT,
                submitted_at=now,
                fields={
                    "first_name": person.first_name,
                    "last_name": person.last_name,
                    "email": person.email.title(),
                    "phone": person.typed_phones[-1],
                },
                raw={
                    "full_name": f"{person.first_name} {person.last_name}",
                    "phone_number": person.typed_phones[0],
                },
                attribution={"campaign_id": "1800", "ad_name": "spring"},
                phone=person.phone,
                email=person.email,
                consent_text=f"{person.first_name}, may we call you? (TikTok form)",
            ),
            f"R{person.external_id[-6:]}",
            now,
        )
        sms = tx.conversations.add(
            lead_id=lead.id,
            channel="sms",
            channel_user_id=person.phone,
            script_id=SCRIPT,
            script_version=VERSION,
            now=now,
        )
        telegram = tx.conversations.add(
            lead_id=lead.id,
            channel="telegram",
            channel_user_id=person.telegram_chat,
            script_id=SCRIPT,
            script_version=VERSION,
            now=now,
        )
        state = ConversationState(
            SCRIPT,
            VERSION,
            "en",
            "Europe/Madrid",
            lead={"first_name": person.first_name, "phone": person.phone},
            answers={"callback": person.typed_phones[1]},
        )
        tx.conversations.save(sms, state, now=now, inbound=True)
        tx.leads.update_progress(
            lead.id,
            answers={"callback": person.typed_phones[1], "email": person.email},
            now=now,
            consent=(f"{person.first_name}, may we email you offers?", now),
            outcome=("qualified", 40, ["budget >= 10k"], True),
            started=True,
        )
        said = f"I'm {person.first_name} {person.last_name}, call {person.typed_phones[0]}"
        tx.transcript.add(
            conversation_id=sms.id, author="prospect", text=said, status="received", now=now
        )
        line = tx.transcript.add(
            conversation_id=sms.id,
            author="bot",
            text=f"Thanks {person.first_name}!",
            status="sent",
            now=now,
            provider_message_id=f"SM{person.external_id}",
        )
        tx.outbox.add(
            kind="send_text",
            idempotency_key=f"message-{line}",
            payload={"chat": person.phone, "text": f"Thanks {person.first_name}!"},
            due_at=now,
            now=now,
            conversation_id=sms.id,
            message_id=line,
        )
        tx.outbox.add(
            kind="first_contact",
            idempotency_key=f"first-contact-{lead.id}",
            payload={"chat": person.phone, "lead_id": lead.id, "text": f"Hi {person.first_name}"},
            due_at=now,
            now=now,
        )
        tx.outbox.add(  # a card for the reps' group: it names the conversation in its payload
            kind="telegram_rep_card",
            idempotency_key=f"rep-card-{sms.id}-{person.external_id}",
            payload={"conversation_id": sms.id, "text": f"{person.first_name} {person.phone}"},
            due_at=now + timedelta(minutes=1),
            now=now,
        )
        tx.outbox.add(  # someone else's, whose lead id is not a number: no error, and it stays
            kind="crm_event",
            idempotency_key=f"crm-{person.external_id}",
            payload={"lead_id": f"ext-{person.external_id[-4:]}", "event": "lead.created"},
            due_at=now,
            now=now,
        )
        tx.audit.add(
            conversation_id=sms.id,
            lead_id=lead.id,
            rep_id=None,
            actor="rep 1 (Ana Ruiz)",
            action="note",
            detail=f"called {person.first_name} on {person.typed_phones[1]}",
            now=now,
        )
        tx.suppressions.add(f"phone:{person.phone}", "sms", "said 'STOP'", now)
        tx.suppressions.add(f"telegram:{person.telegram_chat}", "telegram", "blocked", now)
        tx.receipts.add(Receipt("web", f"{telegram.id}:client-1"), now)
        tx.timers.schedule(sms.id, "reminder", 1, now + timedelta(minutes=10))
        return Held(lead.id, sms.id, telegram.id)

    held = await storage.run(work)
    await _crm(database, held.lead_id, person, now)
    threads = SqlRepThreads(database)
    await threads.open_thread(held.sms_conversation, REPS_CHAT, now, topic_id=5)
    await threads.record_message(
        REPS_CHAT, 1000 + held.sms_conversation, held.sms_conversation, "rep-card", now
    )
    return held


async def _crm(database: Database, lead_id: int, person: Person, now: datetime) -> None:
    """A CRM event about the person, and its delivery (whose receiver echoed the body back)."""
    body = {"lead": {"id": lead_id, "first_name": person.first_name, "phone": person.phone}}
    async with database.writing() as connection:
        subscription = await connection.scalar(
            insert(CRM_SUBSCRIPTIONS)
            .values(
                origin="api",
                url="https://crm.example.com/hook",
                events=["lead.created"],
                status="active",
                created_at=now,
                updated_at=now,
            )
            .returning(CRM_SUBSCRIPTIONS.c.id)
        )
        event = await connection.scalar(
            insert(CRM_EVENTS)
            .values(lead_id=lead_id, sequence=1, event="lead.created", body=body, occurred_at=now)
            .returning(CRM_EVENTS.c.id)
        )
        await connection.execute(
            insert(CRM_DELIVERIES).values(
                delivery_id=f"d-{person.external_id}",
                event_id=event,
                subscription_id=subscription,
                lead_id=lead_id,
                sequence=1,
                status="failed",
                attempts=1,
                due_at=now,
                queued_at=now,
                last_status=400,
                last_error=f"bad request: unknown field first_name={person.first_name}",
                created_at=now,
            )
        )
        await connection.commit()


def _dump(connection: Connection) -> dict[str, list[dict[str, Any]]]:
    metadata = MetaData()
    metadata.reflect(bind=connection)  # the database's own tables, whatever the models say
    return {
        table.name: [dict(row._mapping) for row in connection.execute(select(table))]
        for table in metadata.sorted_tables
    }


async def dump(database: Database) -> dict[str, list[dict[str, Any]]]:
    """Every row of every table in the database, every column."""
    async with database.reading() as connection:
        return await connection.run_sync(_dump)


def found_in(tables: dict[str, list[dict[str, Any]]], person: Person) -> list[str]:
    """Where any of the person's needles occur: "table.column: needle"."""
    hits = []
    for table, rows in tables.items():
        for row in rows:
            for column, value in row.items():
                text = repr(value).lower()
                hits += [f"{table}.{column}: {n}" for n in person.needles if n in text]
    return hits
