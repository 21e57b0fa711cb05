"""How the console shows things: states and channels in words, durations, the lead card's
rows, and the JSON the console's scripts read."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bot.catalog import ScriptCatalog
from bot.compiled import CompiledScript, pick_language
from bot.errors import UnknownScriptError
from bot.spec import ChoiceQuestion, LeadFieldSpec
from storage.console_inbox import InboxRow
from storage.console_queries import AuditEntry, ConsoleLine, ConversationDetail

# The inbox's tabs: (query value, label, statuses). "All" shows every state, ended ones too.
TABS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("waiting", "Waiting for a rep", ("handed_off",)),
    ("bot", "With the bot", ("active", "new")),
    ("rep", "With a rep", ("with_rep",)),
    ("completed", "Completed", ("completed",)),
    ("closed", "Closed", ("closed",)),
)
STATUS_LABELS = {
    "new": "Starting",
    "active": "With the bot",
    "handed_off": "Waiting for a rep",
    "with_rep": "With a rep",
    "completed": "Completed",
    "closed": "Closed",
    "opted_out": "Opted out",
    "expired": "Expired",
    "unreachable": "Unreachable",
}
CHANNEL_LABELS = {
    "web": "Web chat",
    "telegram": "Telegram",
    "sms": "SMS",
    "whatsapp": "WhatsApp",
    "tiktok": "TikTok",
}
AUTHOR_LABELS = {"prospect": "Prospect", "bot": "Bot", "rep": "Rep", "system": "", "note": "Note"}
ACTION_LABELS = {
    "took_over": "took over",
    "wrote": "wrote",
    "handed_back": "handed back to the bot",
    "closed": "closed",
    "noted": "added a note",
    "handoff_requested": "asked for a rep",
    "appointment_moved": "moved the appointment",
    "appointment_cancelled": "cancelled the appointment",
}
DELIVERY_LABELS = {
    "queued": "queued",
    "accepted": "queued",
    "sending": "sending",
    "sent": "sent",
    "delivered": "delivered",
    "read": "read",
    "failed": "failed",
    "undelivered": "not delivered",
    "held": "held",
    "skipped": "not sent",
}
# Offered when closing, beside the script's own outcomes; any short text will do.
CLOSING_OUTCOMES = ("sold", "meeting_booked", "not_interested", "unreachable", "duplicate", "spam")


def status_label(status: str) -> str:
    return STATUS_LABELS.get(status, status.replace("_", " ").capitalize())


def channel_label(channel: str) -> str:
    return CHANNEL_LABELS.get(channel, channel)


def waited(seconds: float) -> str:
    """A duration the way a person says it: "40 s", "12 min", "3 h 5 min", "2 days"."""
    seconds = max(0, int(seconds))
    if seconds < 60:
        return f"{seconds} s"
    minutes = seconds // 60
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    return f"{hours // 24} days"


def ago(moment: datetime | None, now: datetime) -> str:
    if moment is None:
        return ""
    seconds = (now - moment).total_seconds()
    return "just now" if seconds < 30 else f"{waited(seconds)} ago"


def utc(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC") if moment is not None else ""


def iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


def display_name(fields: Mapping[str, Any], reference: str) -> str:
    """The prospect's name from the form, else their lead's reference code."""
    full = " ".join(
        str(fields[key]).strip() for key in ("first_name", "last_name") if fields.get(key)
    )
    for candidate in (full, fields.get("full_name"), fields.get("name")):
        if isinstance(candidate, str) and candidate.strip():
            return candidate.strip()[:120]
    return f"Lead {reference}"


def humanised(identifier: str) -> str:
    return identifier.replace("_", " ").strip().capitalize()


def value_text(value: Any) -> str:
    if value is True:
        return "yes"
    if value is False:
        return "no"
    if value is None:
        return ""
    if isinstance(value, list):
        return ", ".join(value_text(item) for item in value)
    if isinstance(value, dict):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


@dataclass(frozen=True, slots=True)
class CardRow:
    label: str
    value: str


def script_of(catalog: ScriptCatalog, script_id: str) -> CompiledScript | None:
    """The script's current version, for labels (an older version's labels differ little)."""
    with contextlib.suppress(UnknownScriptError):
        return catalog.current(script_id).script
    return None


def field_rows(fields: Mapping[str, Any], script: CompiledScript | None) -> list[CardRow]:
    labels: dict[str, str] = {}
    if script is not None:
        for spec in script.spec.lead_fields:
            if isinstance(spec, LeadFieldSpec) and spec.label is not None:
                labels[spec.name] = pick_language(spec.label, "en", script.spec.default_language)
    return [
        CardRow(labels.get(name) or humanised(name), value_text(value))
        for name, value in fields.items()
    ]


def answer_rows(
    answers: Mapping[str, Any], script: CompiledScript | None, language: str | None
) -> list[CardRow]:
    """Answers in the script's order, a choice shown by its option's label."""
    order = list(script.order) if script is not None else []
    ranked = sorted(answers, key=lambda key: order.index(key) if key in order else len(order))
    rows = []
    for key in ranked:
        value = answers[key]
        question = script.questions.get(key) if script is not None else None
        if isinstance(question, ChoiceQuestion) and script is not None:
            labels = {
                option.value: pick_language(
                    option.label, language or "en", script.spec.default_language
                )
                for option in question.options
            }
            chosen = value if isinstance(value, list) else [value]
            text = ", ".join(labels.get(str(item), value_text(item)) for item in chosen)
        else:
            text = value_text(value)
        rows.append(CardRow(humanised(key), text))
    return rows


def outcome_choices(script: CompiledScript | None) -> list[str]:
    own = [outcome.id for outcome in script.spec.outcomes] if script is not None else []
    return [*own, *(item for item in CLOSING_OUTCOMES if item not in own)]


# -- JSON for the console's scripts ----------------------------------------------------------


def line_json(line: ConsoleLine) -> dict[str, Any]:
    return {
        "id": line.id,
        "author": line.author,
        "text": line.text,
        "status": line.status,
        "status_label": DELIVERY_LABELS.get(line.status, ""),
        "error": line.error,
        "at": line.created_at.isoformat(),
        "time": line.created_at.strftime("%H:%M"),
    }


def audit_json(entry: AuditEntry) -> dict[str, Any]:
    return {
        "id": entry.id,
        "actor": entry.actor,
        "action": entry.action,
        "action_label": ACTION_LABELS.get(entry.action, entry.action.replace("_", " ")),
        "detail": entry.detail,
        "at": entry.at.isoformat(),
        "time": utc(entry.at),
    }


def state_json(
    *, version: int, status: str, held_by: int | None, held_by_name: str | None
) -> dict[str, Any]:
    return {
        "version": version,
        "status": status,
        "status_label": status_label(status),
        "held_by": held_by,
        "held_by_name": held_by_name,
    }


def conversation_json(
    detail: ConversationDetail,
    lines: Sequence[ConsoleLine],
    audit: Sequence[AuditEntry],
) -> dict[str, Any]:
    lead = detail.lead
    return {
        "conversation": {
            "id": detail.id,
            "channel": detail.channel,
            **state_json(
                version=detail.version,
                status=detail.status,
                held_by=detail.held_by,
                held_by_name=detail.held_by_name,
            ),
            "created_at": iso(detail.created_at),
            "updated_at": iso(detail.updated_at),
            "last_inbound_at": iso(detail.last_inbound_at),
        },
        "lead": {
            "id": lead.id,
            "reference": lead.reference,
            "source": lead.source,
            "script": lead.script_id,
            "fields": dict(lead.fields),
            "answers": dict(lead.answers),
            "score": lead.score,
            "reasons": list(lead.reasons),
            "outcome": lead.outcome,
            "qualified": lead.qualified,
            "attribution": dict(lead.attribution),
            "consent_text": lead.consent_text,
            "consent_at": iso(lead.consent_at),
            "submitted_at": iso(lead.submitted_at),
        },
        "transcript": [line_json(line) for line in lines],
        "audit": [audit_json(entry) for entry in audit],
    }


def inbox_json(row: InboxRow, now: datetime) -> dict[str, Any]:
    return {
        "id": row.id,
        "name": display_name(row.fields, row.reference),
        "reference": row.reference,
        "channel": row.channel,
        "status": row.status,
        "status_label": status_label(row.status),
        "held_by_name": row.held_by_name,
        "updated_at": iso(row.updated_at),
        "waiting_seconds": int((now - row.waiting_since).total_seconds())
        if row.waiting_since is not None
        else None,
        "last_text": row.last_text,
    }
