"""Leads: stored once per (source, external id), then filled in as the conversation goes."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, String, Update, bindparam, func, select, update
from sqlalchemy.dialects.postgresql import JSONB

from bot.errors import ReferenceTakenError
from bot.privacy import CONSENT_CHAT, consent_version, consent_via
from bot.records import Lead, NewLead
from storage.prepared import execute
from storage.sql import fitting, insert_ignoring_conflict, insert_returning_id
from storage.tables import ConsentRow, LeadRow

T = LeadRow.__table__  # type: ignore[attr-defined]
CONSENTS = ConsentRow.__table__  # type: ignore[attr-defined]


def _lead(row: Any) -> Lead:
    return Lead(
        id=row.id,
        reference=row.reference,
        source=row.source,
        external_id=row.external_id,
        script_id=row.script_id,
        fields=row.fields or {},
        language=row.language,
        answers=row.answers or {},
        outcome=row.outcome,
        score=row.score,
    )


# An erased lead is gone for the conversation: links and chats that name it find nothing.
_GET = select(T).where(T.c.id == bindparam("b_id"), T.c.erased_at.is_(None))
_PROGRESS: dict[tuple[str, bool, bool], Update] = {}


def _progress(dialect: str, *, answers: bool, started: bool) -> Update:
    """A turn's UPDATE of its lead, built once per shape (see storage/conversations.py); the
    plain columns come as parameters. Never onto an erased lead (storage/privacy.py deletes its
    conversations first anyway)."""
    key = (dialect, answers, started)
    statement = _PROGRESS.get(key)
    if statement is None:
        statement = update(T).where(T.c.id == bindparam("b_id"), T.c.erased_at.is_(None))
        if answers:  # the stored answers with the turn's merged in, by the database
            if dialect == "postgresql":
                merged = T.c.answers.op("||")(bindparam("b_answers", type_=JSONB))
            else:
                merged = func.json_patch(T.c.answers, bindparam("b_answers", type_=String))
            statement = statement.values(answers=merged)
        if started:
            now = bindparam("b_now", type_=T.c.first_contact_at.type)
            statement = statement.values(
                conversation_started_at=func.coalesce(T.c.conversation_started_at, now),
                first_contact_at=func.coalesce(T.c.first_contact_at, now),
            )
        _PROGRESS[key] = statement
    return statement


class SqlLeadRepository:
    def __init__(self, connection: Connection) -> None:
        self._connection = connection

    def add(self, lead: NewLead, reference: str, now: datetime) -> tuple[Lead, bool]:
        external_id = fitting(lead.external_id, 128)
        fields = dict(lead.fields)
        values = {
            "source": lead.source,
            "external_id": external_id,
            "reference": reference,
            "script_id": lead.script_id,
            "is_test": lead.is_test,
            "fields": fields,
            "raw": dict(lead.raw),
            "attribution": dict(lead.attribution),
            "phone": lead.phone,
            "email": lead.email,
            "language": lead.language,
            "consent_text": lead.consent_text,
            "consent_at": lead.submitted_at if lead.consent_text else None,
            "consent_version": consent_version(lead.consent_text) if lead.consent_text else None,
            "consent_via": consent_via(lead.source) if lead.consent_text else None,
            "answers": {},
            "reasons": [],
            "submitted_at": lead.submitted_at,
            "updated_at": now,
        }
        new_id = insert_returning_id(self._connection, T, values)
        if new_id is not None:
            if lead.consent_text:
                self._record_consent(
                    new_id, lead.consent_text, consent_via(lead.source), lead.submitted_at
                )
            stored = Lead(
                id=new_id,
                reference=reference,
                source=lead.source,
                external_id=external_id,
                script_id=lead.script_id,
                fields=fields,
                language=lead.language,
                answers={},
                outcome=None,
                score=None,
            )
            return stored, True
        query = select(T).where(T.c.source == lead.source, T.c.external_id == external_id)
        row = self._connection.execute(query).first()
        if row is None:  # nothing inserted, and not because the lead exists: the code is taken
            raise ReferenceTakenError(reference)
        return _lead(row), False

    def _record_consent(self, lead_id: int, text: str, via: str, at: datetime) -> None:
        values = {
            "lead_id": lead_id,
            "text": text,
            "version": consent_version(text),
            "via": via,
            "given_at": at,
        }
        # The cached statement: most leads come with a consent, and intake is the hot path.
        insert_ignoring_conflict(self._connection, CONSENTS, values)

    def by_reference(self, reference: str) -> Lead | None:
        # An erased lead's reference is lower case: a code typed in a chat never finds it.
        query = select(T).where(T.c.reference == reference.upper())
        row = self._connection.execute(query).first()
        return _lead(row) if row is not None else None

    def latest_with_phone(self, phone: str, since: datetime) -> Lead | None:
        query = (
            select(T)
            .where(T.c.phone == phone, T.c.submitted_at >= since)  # erased: no phone
            .order_by(T.c.submitted_at.desc(), T.c.id.desc())
            .limit(1)
        )
        row = self._connection.execute(query).first()
        return _lead(row) if row is not None else None

    def mark_contacted(self, lead_id: int, now: datetime) -> None:
        self._connection.execute(
            update(T)
            .where(T.c.id == lead_id)
            .values(first_contact_at=func.coalesce(T.c.first_contact_at, now), updated_at=now)
        )

    def chatting_among(self, lead_ids: Sequence[int]) -> set[int]:
        query = select(T.c.id).where(
            T.c.id.in_(list(lead_ids)), T.c.conversation_started_at.is_not(None)
        )
        return set(self._connection.execute(query).scalars())

    def get(self, lead_id: int) -> Lead | None:
        row = execute(self._connection, _GET, {"b_id": lead_id}).first()
        return _lead(row) if row is not None else None

    def update_progress(
        self,
        lead_id: int,
        *,
        answers: Mapping[str, Any],
        now: datetime,
        consent: tuple[str, datetime] | None = None,
        outcome: tuple[str, int, Sequence[str], bool | None] | None = None,
        started: bool = False,
    ) -> None:
        dialect = self._connection.dialect.name
        changes: dict[str, Any] = {"updated_at": now, "b_id": lead_id}
        if answers:
            changes["b_answers"] = (
                dict(answers)
                if dialect == "postgresql"
                else json.dumps(dict(answers), ensure_ascii=False)
            )
        if consent is not None:
            text, given_at = consent
            changes.update(
                consent_text=text,
                consent_at=given_at,
                consent_version=consent_version(text),
                consent_via=CONSENT_CHAT,  # the service records only the chat's consent questions
            )
            self._record_consent(lead_id, text, CONSENT_CHAT, given_at)
        if outcome is not None:
            name, score, reasons, qualified = outcome
            changes.update(
                outcome=name,
                score=score,
                reasons=list(reasons),
                qualified=qualified,
                completed_at=now,
            )
        if started:
            changes["b_now"] = now
        statement = _progress(dialect, answers=bool(answers), started=started)
        execute(self._connection, statement, changes)
