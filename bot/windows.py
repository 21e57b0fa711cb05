"""Messaging windows: when a business may write free text to a prospect on each channel.

WhatsApp allows free-form messages for 24 hours after the prospect's last message, then only
approved templates. TikTok allows replies for 48 hours after the prospect's last message, about
ten of them, the count starting again whenever the prospect writes. SMS, Telegram and the web
chat have no window. The dispatcher asks `verdict` before every send.

A message that cannot go out now is held (reps see it, with why), except a reminder: a nudge
that comes too late is worth nothing later, so outside the window it goes as the channel's
window template when there is one (its first message only) or is skipped.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from bot.effects import ReminderPart
from bot.records import Window


@dataclass(frozen=True, slots=True)
class WindowRule:
    length: timedelta
    budget: int | None = None  # messages per window, None: no count
    name: str = ""


RULES: Mapping[str, WindowRule] = {
    "whatsapp": WindowRule(timedelta(hours=24), None, "WhatsApp's 24-hour window"),
    "tiktok": WindowRule(timedelta(hours=48), 10, "TikTok's 48-hour window"),
}


@dataclass(frozen=True, slots=True)
class Send:
    payload: Mapping[str, Any]  # what to send: the item's own, or a template in its place


@dataclass(frozen=True, slots=True)
class Hold:
    reason: str


@dataclass(frozen=True, slots=True)
class Skip:
    """Not sent, ever: a reminder outside the window (the reason goes on its transcript line)."""

    reason: str


def verdict(
    channel: str,
    payload: Mapping[str, Any],
    window: Window | None,
    now: datetime,
    template: str | None = None,
) -> Send | Hold | Skip:
    """Whether a message may go out now, as it is or as the channel's window template."""
    rule = RULES.get(channel)
    if rule is None or payload.get("content_sid"):
        return Send(payload)  # no window on this channel, or already an approved template
    reminder = payload.get("reminder")
    last = window.last_inbound_at if window is not None else None
    if last is None or now - last > rule.length:
        since = (
            "the prospect has not written yet"
            if last is None
            else f"last wrote {last:%Y-%m-%d %H:%M} UTC"
        )
        if reminder and (template is None or reminder != ReminderPart.NUDGE):
            # One template per reminder is nudge enough: the question waits for their reply.
            sent = "; the window template went instead" if template is not None else ""
            return Skip(f"reminder not sent: outside {rule.name} ({since}){sent}")
        if template is not None:
            # Approved templates may be sent outside the window; the prospect's reply reopens it.
            return Send({**payload, "content_sid": template, "content_variables": {}})
        return Hold(f"outside {rule.name} ({since}); no window template is configured")
    if rule.budget is not None and window is not None and window.sent_since_inbound >= rule.budget:
        limit = f"{rule.name} allows about {rule.budget} messages until the prospect writes again"
        return Skip(f"reminder not sent: {limit}") if reminder else Hold(limit)
    return Send(payload)
