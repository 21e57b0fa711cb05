"""Calendar links for booked appointments: `<public_url>/a/<token>.ics`, the token a signed
appointment id, and the iCalendar (RFC 5545) event the link serves.

The token is signed with a key of its own, derived from the lead-token secret: an appointment
token is never a valid lead token, nor the other way round, though both have the same shape.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import datetime, timedelta

from icalendar import Calendar, Event

from bot.calendars import calendar_of
from bot.compiled import pick_language
from bot.records import Appointment
from bot.spec import Script
from bot.tokens import TokenSigner

LINK_LIFETIME = timedelta(days=400)  # longer than any horizon: the link works past the visit
CANCELLED = "cancelled"


def appointment_signer(lead_signer: TokenSigner) -> TokenSigner:
    key = hmac.new(lead_signer.secret, b"leadbot appointment links", hashlib.sha256).digest()
    return TokenSigner(key, LINK_LIFETIME)


def appointment_link(
    public_url: str, lead_signer: TokenSigner, appointment_id: int, now: datetime
) -> str:
    """The link a confirmation carries; GET /a/<token>.ics serves `ics_text` for it."""
    token = appointment_signer(lead_signer).sign(appointment_id, now)
    return f"{public_url.rstrip('/')}/a/{token}.ics"


def appointment_from_token(lead_signer: TokenSigner, token: str, now: datetime) -> int:
    """The appointment id in a link's token (without ".ics"); raises bot.tokens.TokenError."""
    return appointment_signer(lead_signer).verify(token.removesuffix(".ics"), now)


def ics_text(appointment: Appointment, script: Script, language: str, now: datetime) -> str:
    """One VEVENT in UTC; a cancelled appointment is STATUS:CANCELLED with a later SEQUENCE,
    so a calendar that imported it takes it out."""
    place = ""
    try:
        calendar = calendar_of(script, appointment.calendar)
    except KeyError:  # the script no longer has the calendar: the times still hold
        calendar = None
    if calendar is not None:
        for location in calendar.locations:
            if location.id == appointment.location:
                name = pick_language(location.name, language, script.default_language)
                place = f"{name}, {location.address}" if location.address else name
    ics = Calendar()
    ics.add("prodid", "-//leadbot//appointments//EN")
    ics.add("version", "2.0")
    ics.add("method", "PUBLISH")
    event = Event()
    event.add("uid", f"appointment-{appointment.id}@leadbot")
    event.add("dtstamp", now)
    event.add("dtstart", appointment.starts_at)
    event.add("dtend", appointment.ends_at)
    event.add("summary", script.name)
    if place:
        event.add("location", place)
    cancelled = appointment.status == CANCELLED
    event.add("status", "CANCELLED" if cancelled else "CONFIRMED")
    event.add("sequence", 1 if cancelled else 0)
    ics.add_component(event)
    return str(ics.to_ical().decode())
