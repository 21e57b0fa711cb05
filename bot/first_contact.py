"""Speed to lead: the bot's first message to a lead that left a phone number and consent.

The message is an outbox row of kind `first_contact`, written in the same transaction as the
lead, so it goes out within a second of the form and is never lost. It is not part of a
conversation: the prospect's reply opens one (the router finds the lead by the number).
Nobody is written to first during quiet hours in their time zone: the row is due at the end of
them instead.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import phonenumbers
from phonenumbers import timezone as phone_timezones

from bot.compiled import CompiledScript
from bot.records import NewLead

FIRST_CONTACT = "first_contact"  # the outbox kind
_STEP = timedelta(minutes=15)
_HORIZON = timedelta(days=2)


@dataclass(frozen=True, slots=True)
class QuietHours:
    """Local times between which nobody is written to first; start after end wraps midnight."""

    start: time = time(21, 0)
    end: time = time(8, 0)

    def holds(self, local: datetime) -> bool:
        moment = local.time()
        if self.start == self.end:
            return False
        if self.start < self.end:
            return self.start <= moment < self.end
        return moment >= self.start or moment < self.end


@dataclass(frozen=True, slots=True)
class FirstContactPolicy:
    quiet_hours: QuietHours = QuietHours()
    timezone: str | None = None  # when the number does not tell; None: the script's
    # The channels this server can send on: a script asking for first contact on another one
    # (say, the example scripts on a server without Twilio) does not write first.
    channels: frozenset[str] = frozenset({"sms", "whatsapp"})

    def zones_for(self, phone: str, script_timezone: str) -> list[ZoneInfo]:
        """The time zones the number may be in (a country can span several); else one."""
        fallback = ZoneInfo(self.timezone or script_timezone)
        try:
            names = phone_timezones.time_zones_for_number(phonenumbers.parse(phone))
        except phonenumbers.NumberParseException:
            return [fallback]
        zones = [ZoneInfo(name) for name in names if name != "Etc/Unknown"]
        return zones or [fallback]

    def due_at(self, now: datetime, zones: Sequence[ZoneInfo]) -> datetime:
        """`now`, or the first quarter hour outside quiet hours in every zone the number may
        be in (the careful reading when a country spans several zones)."""
        candidate = now
        while candidate - now <= _HORIZON:
            if not any(self.quiet_hours.holds(candidate.astimezone(zone)) for zone in zones):
                return candidate
            # Step to the next quarter hour, so the row is due at a round time.
            candidate = (candidate + _STEP).replace(
                minute=(candidate + _STEP).minute // 15 * 15, second=0, microsecond=0
            )
        return self.due_at(now, zones[:1])  # the zones share no daytime: use the first


def first_contact_payload(
    script: CompiledScript, lead: NewLead, lead_id: int, channels: frozenset[str]
) -> dict[str, Any] | None:
    """What to send first to this lead, or None when the script does not write first (or not
    on a channel in `channels`) or the lead did not leave a number and consent."""
    plan = script.spec.first_contact
    if plan is None or plan.channel not in channels:
        return None
    if lead.phone is None or not lead.consent_text:
        return None
    language = script.language_for(lead.language)
    context = {"lead": dict(lead.fields)}
    text = script.render(plan.text, language, context) if plan.text is not None else ""
    return {
        "channel": plan.channel,
        "chat": lead.phone,
        "text": text,
        "content_sid": plan.template,
        "content_variables": {
            name: script.render(value, language, context) for name, value in plan.variables.items()
        }
        if plan.template
        else None,
        "options": [],
        "language": language,
        "lead_id": lead_id,
    }
