"""The versioned JSON body CRM receivers get (docs/crm.md documents it field by field)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from bot.crm_records import BODY_VERSION, LeadView
from bot.effects import BookAppointment, CancelAppointment


def _time(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value is not None else None


def lead_json(lead: LeadView) -> dict[str, Any]:
    """The body's `lead`; GET /api/v1/leads lists leads in this shape too."""
    consent = (
        {"text": lead.consent_text, "at": _time(lead.consent_at)}
        if lead.consent_text is not None
        else None
    )
    return {
        "id": lead.id,
        "reference": lead.reference,
        "source": lead.source,
        "external_id": lead.external_id,
        "script": lead.script_id,
        "is_test": lead.is_test,
        "submitted_at": _time(lead.submitted_at),
        "fields": dict(lead.fields),
        "phone": lead.phone,
        "email": lead.email,
        "language": lead.language,
        "attribution": dict(lead.attribution),
        "answers": dict(lead.answers),
        "score": lead.score,
        "reasons": list(lead.reasons),
        "outcome": lead.outcome,
        "qualified": lead.qualified,
        "consent": consent,
        "conversation_started_at": _time(lead.conversation_started_at),
        "completed_at": _time(lead.completed_at),
    }


def conversation_json(
    conversation_id: int, channel: str, status: str, handoff_reason: str | None = None
) -> dict[str, Any]:
    """The body's `conversation` (null for lead.created: there is none yet)."""
    return {
        "id": conversation_id,
        "channel": channel,
        "status": status,
        "handoff_reason": handoff_reason,
    }


def appointment_json(effect: BookAppointment | CancelAppointment) -> dict[str, Any]:
    """The body's `appointment`, on appointment.booked and appointment.cancelled only."""
    return {
        "id": effect.appointment_id,
        "calendar": effect.calendar,
        "location": effect.location,
        "starts_at": _time(effect.starts_at),
        "ends_at": _time(effect.ends_at),
        "status": "booked" if isinstance(effect, BookAppointment) else "cancelled",
        "by": effect.by,
    }


def event_body(
    event: str,
    lead: LeadView,
    occurred_at: datetime,
    conversation: Mapping[str, Any] | None,
    appointment: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """What is stored with the event: the body but its sequence and delivery id."""
    body = {
        "version": BODY_VERSION,
        "event": event,
        "occurred_at": _time(occurred_at),
        "lead": lead_json(lead),
        "conversation": dict(conversation) if conversation is not None else None,
    }
    if appointment is not None:
        body["appointment"] = dict(appointment)
    return body


def wire_body(stored: Mapping[str, Any], delivery_id: str, sequence: int) -> bytes:
    """The exact bytes sent (and signed): the stored body with this delivery's ids, keys in
    the documented order."""
    body = {
        "version": stored.get("version", BODY_VERSION),
        "event": stored.get("event"),
        "delivery_id": delivery_id,
        "sequence": sequence,
        "occurred_at": stored.get("occurred_at"),
        "lead": stored.get("lead"),
        "conversation": stored.get("conversation"),
    }
    if "appointment" in stored:  # appointment events only: other bodies stay as they were
        body["appointment"] = stored["appointment"]
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
