"""A small, known funnel written straight into the tables, for the analytics tests.

Two days of leads (DAY1, DAY2) on a two-question script (budget, email):

| lead | source, campaign, ad group | day | contact after | chat | what happened |
| --- | --- | --- | --- | --- | --- |
| 1 | tiktok Spring A | 1 | 3 s | telegram | answered both, completed, qualified, booked |
| 2 | tiktok Spring A | 1 | 40 s | whatsapp | reminded, expired at email; booking cancelled |
| 3 | google 123 / 9 (ids) | 2 | 600 s | none | texted, never replied |
| 4 | form, no attribution | 2 | never | none | nothing |
| 5 | tiktok Spring B | 2 | 2 s | web | silent, back after a reminder, waiting for a rep |
| 6 | tiktok Spring A | 1 | 8 s | telegram | completed, unqualified, a rep took it over, closed |
| 7 | tiktok Spring A, a test lead | 1 | 1 s | telegram | completed: never counted |
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import insert, text

from storage.db import Database
from storage.tables import (
    AuditRow,
    ConversationRow,
    LeadRow,
    MessageRow,
    OutboxRow,
    ScriptVersionRow,
)

DAY1 = date(2026, 1, 5)
DAY2 = date(2026, 1, 6)
L = LeadRow.__table__  # type: ignore[attr-defined]
C = ConversationRow.__table__  # type: ignore[attr-defined]
M = MessageRow.__table__  # type: ignore[attr-defined]
O = OutboxRow.__table__  # type: ignore[attr-defined]  # noqa: E741
A = AuditRow.__table__  # type: ignore[attr-defined]
V = ScriptVersionRow.__table__  # type: ignore[attr-defined]


def at(day: date, hour: int, minute: int = 0, second: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, second, tzinfo=UTC)


class Writer:
    def __init__(self, connection: Any) -> None:
        self.connection = connection
        self.leads = 0

    async def lead(
        self,
        source: str,
        submitted: datetime,
        *,
        attribution: dict[str, str] | None = None,
        contact_after: float | None = None,
        started: bool = False,
        completed: bool = False,
        qualified: bool | None = None,
        is_test: bool = False,
    ) -> int:
        self.leads += 1
        contacted = (
            submitted + timedelta(seconds=contact_after) if contact_after is not None else None
        )
        values = {
            "source": source,
            "external_id": f"x{self.leads}",
            "reference": f"REF{self.leads:03d}",
            "script_id": "quote",
            "is_test": is_test,
            "attribution": attribution or {},
            "submitted_at": submitted,
            "first_contact_at": contacted,
            "conversation_started_at": contacted if started else None,
            "completed_at": submitted + timedelta(minutes=5) if completed else None,
            "outcome": "done" if completed else None,
            "qualified": qualified,
            "updated_at": submitted,
        }
        result = await self.connection.execute(insert(L).values(**values).returning(L.c.id))
        return int(result.scalar_one())

    async def conversation(
        self,
        lead_id: int,
        channel: str,
        status: str,
        created: datetime,
        abandoned_question: str | None = None,
    ) -> int:
        values = {
            "lead_id": lead_id,
            "channel": channel,
            "channel_user_id": f"chat-{lead_id}",
            "script_id": "quote",
            "script_version": "v1",
            "status": status,
            "abandoned_question": abandoned_question,
            "abandoned_at": created + timedelta(days=1) if abandoned_question else None,
            "created_at": created,
            "updated_at": created,
        }
        result = await self.connection.execute(insert(C).values(**values).returning(C.c.id))
        return int(result.scalar_one())

    async def message(
        self, conversation_id: int, author: str, when: datetime, question: str | None = None
    ) -> int:
        values = {
            "conversation_id": conversation_id,
            "author": author,
            "text": "...",
            "question_id": question,
            "status": "sent" if author == "bot" else "received",
            "created_at": when,
        }
        result = await self.connection.execute(insert(M).values(**values).returning(M.c.id))
        return int(result.scalar_one())

    async def nudge(self, conversation_id: int, when: datetime) -> None:
        message_id = await self.message(conversation_id, "bot", when)
        await self.connection.execute(
            insert(O).values(
                kind="send_text",
                idempotency_key=f"message-{message_id}",
                conversation_id=conversation_id,
                message_id=message_id,
                payload={"reminder": "nudge"},
                status="sent",
                due_at=when,
                created_at=when,
            )
        )


async def _appointment(connection: Any, lead_id: int, status: str, when: datetime) -> None:
    await connection.execute(
        text(
            "INSERT INTO appointments (lead_id, script_id, question_id, calendar, location, "
            "starts_at, ends_at, seat, status, booked_by, created_at, cancelled_at) VALUES "
            "(:lead, 'quote', 'slot', 'demo', 'office', :starts, :ends, :seat, :status, "
            "'prospect', :at, :cancelled)"
        ),
        {
            "lead": lead_id,
            "starts": when + timedelta(days=2),
            "ends": when + timedelta(days=2, hours=1),
            "seat": lead_id if status == "booked" else None,
            "status": status,
            "at": when,
            "cancelled": when + timedelta(minutes=1) if status == "cancelled" else None,
        },
    )


async def write_known_funnel(database: Database) -> None:
    async with database.writing() as connection:
        w = Writer(connection)
        spring_a = {"campaign_name": "Spring", "campaign_id": "1", "adgroup_name": "A"}
        spring_b = {"campaign_name": "Spring", "campaign_id": "1", "adgroup_name": "B"}
        await connection.execute(
            insert(V).values(version="v1", script_id="quote", source="", created_at=at(DAY1, 0))
        )
        # 1: both answered (17 s, 60 s), completed, qualified, an appointment.
        one = await w.lead(
            "tiktok",
            at(DAY1, 10),
            attribution=spring_a,
            contact_after=3,
            started=True,
            completed=True,
            qualified=True,
        )
        c1 = await w.conversation(one, "telegram", "completed", at(DAY1, 10))
        await w.message(c1, "bot", at(DAY1, 10, 0, 3), "budget")
        await w.message(c1, "prospect", at(DAY1, 10, 0, 20))
        await w.message(c1, "bot", at(DAY1, 10, 0, 20), "email")
        await w.message(c1, "prospect", at(DAY1, 10, 1, 20))
        await _appointment(connection, one, "booked", at(DAY1, 10, 10))
        # 2: budget in 20 s, then silent at email: a reminder, no reply, expired there.
        two = await w.lead(
            "tiktok", at(DAY1, 11), attribution=spring_a, contact_after=40, started=True
        )
        c2 = await w.conversation(two, "whatsapp", "expired", at(DAY1, 11), "email")
        await w.message(c2, "bot", at(DAY1, 11, 0, 40), "budget")
        await w.message(c2, "prospect", at(DAY1, 11, 1, 0))
        await w.message(c2, "bot", at(DAY1, 11, 1, 0), "email")
        await w.nudge(c2, at(DAY1, 12, 1))
        # booked, then cancelled: not counted
        await _appointment(connection, two, "cancelled", at(DAY1, 11, 5))
        # 3: Google (ids only), texted after 10 minutes, never replied.
        await w.lead(
            "google",
            at(DAY2, 9),
            attribution={"campaign_id": "123", "adgroup_id": "9"},
            contact_after=600,
        )
        # 4: the hosted form, never contacted.
        await w.lead("form", at(DAY2, 12))
        # 5: silent at budget, a reminder an hour later, a reply after it; waits for a rep.
        five = await w.lead(
            "tiktok", at(DAY2, 13), attribution=spring_b, contact_after=2, started=True
        )
        c5 = await w.conversation(five, "web", "handed_off", at(DAY2, 13))
        await w.message(c5, "bot", at(DAY2, 13, 0, 2), "budget")
        await w.nudge(c5, at(DAY2, 14))
        await w.message(c5, "prospect", at(DAY2, 14, 30))
        # 6: budget in 8 s, completed unqualified; a rep took it over and closed it.
        six = await w.lead(
            "tiktok",
            at(DAY1, 15),
            attribution=spring_a,
            contact_after=8,
            started=True,
            completed=True,
            qualified=False,
        )
        c6 = await w.conversation(six, "telegram", "closed", at(DAY1, 15))
        await w.message(c6, "bot", at(DAY1, 15, 0, 8), "budget")
        await w.message(c6, "prospect", at(DAY1, 15, 0, 16))
        await connection.execute(
            insert(A).values(
                conversation_id=c6,
                lead_id=six,
                actor="rep 1 (Ana)",
                action="took_over",
                at=at(DAY1, 15, 10),
            )
        )
        # 7: a test lead: counted nowhere.
        seven = await w.lead(
            "tiktok",
            at(DAY1, 16),
            attribution=spring_a,
            contact_after=1,
            started=True,
            completed=True,
            qualified=True,
            is_test=True,
        )
        c7 = await w.conversation(seven, "telegram", "completed", at(DAY1, 16))
        await w.message(c7, "bot", at(DAY1, 16, 0, 1), "budget")
        await w.message(c7, "prospect", at(DAY1, 16, 0, 2))
        await connection.commit()
