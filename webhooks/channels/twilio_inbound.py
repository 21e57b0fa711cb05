"""A verified Twilio webhook, read into what leadbot understands: a prospect's message on SMS or
WhatsApp, or a delivery report on a message leadbot sent.

Twilio adds parameters without notice: unknown ones are ignored, and every one read here is
checked, so a surprise becomes a 400 naming the field, never a 500.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import parse_qsl

from multidict import MultiDict

from webhooks.channels.twilio_signature import FORM, SignedRequest

_SID = re.compile(r"[A-Z]{2}[0-9a-fA-F]{32}")
_E164 = re.compile(r"\+[1-9][0-9]{6,14}")
_DIGITS = re.compile(r"[0-9]{1,6}")
_STATUS = re.compile(r"[a-z_]{1,32}")
WHATSAPP_PREFIX = "whatsapp:"
MAX_PROFILE_NAME = 100
# Message statuses Twilio reports (twilio.com/docs/messaging/api/message-resource).
STATUSES = frozenset(
    {
        "accepted",
        "scheduled",
        "canceled",
        "queued",
        "sending",
        "sent",
        "failed",
        "delivered",
        "undelivered",
        "receiving",
        "received",
        "read",
        "partially_delivered",
    }
)
# What the commonest delivery errors mean, for reps reading a failed line.
ERRORS = {
    "21610": "the recipient replied STOP to this number",
    "30003": "the handset is unreachable",
    "30004": "the message was blocked",
    "30005": "unknown destination handset",
    "30006": "a landline or unreachable carrier",
    "30007": "filtered by the carrier",
    "30008": "unknown error",
    "63014": "the recipient blocked the business or opted out",
    "63016": "outside the WhatsApp 24-hour window: only a template may be sent",
    "63024": "not a WhatsApp user",
}


class MalformedWebhookError(ValueError):
    """Signed, but not a message or report leadbot can read; the message says why."""


@dataclass(frozen=True, slots=True)
class IncomingMessage:
    """What a prospect wrote to the business's SMS number or WhatsApp sender."""

    sid: str  # MessageSid: the receipt
    channel: str  # "sms" or "whatsapp"
    sender: str  # E.164, without "whatsapp:"
    text: str
    media: int = 0  # how many attachments (photos, voice notes...)
    button_payload: str | None = None  # WhatsApp quick reply: the button's id
    button_text: str | None = None  # ... and its title
    replied_to: str | None = None  # WhatsApp: the MessageSid of the message replied to
    profile_name: str | None = None  # WhatsApp: the name the prospect shows

    @property
    def profile(self) -> dict[str, str]:
        """What the channel tells about the prospect, as lead fields (the router adds the
        phone number itself)."""
        fields: dict[str, str] = {}
        name = " ".join((self.profile_name or "").split())[:MAX_PROFILE_NAME]
        if name:
            fields["name"] = name
            first = name.split(" ", 1)[0]
            if any(character.isalpha() for character in first):
                fields["first_name"] = first
        return fields


@dataclass(frozen=True, slots=True)
class Unanswerable:
    """A message leadbot cannot answer (from a short code, a Messenger or RCS address...)."""

    sid: str
    reason: str


@dataclass(frozen=True, slots=True)
class StatusReport:
    sid: str
    channel: str
    status: str
    error: str | None  # "<ErrorCode> <what it means>", or None


def read_params(signed: SignedRequest) -> Mapping[str, object]:
    """The parameters of a signed body, by name (the first of a repeated one)."""
    text = signed.body.decode("utf-8")
    if signed.content_type == FORM:
        return MultiDict(parse_qsl(text, keep_blank_values=True))
    try:
        data = json.loads(text)
    except (ValueError, RecursionError):
        raise MalformedWebhookError("the body is not valid JSON") from None
    if not isinstance(data, dict):
        raise MalformedWebhookError("the body must be a JSON object of Twilio's parameters")
    return data


def parse_message(params: Mapping[str, object]) -> IncomingMessage | Unanswerable:
    sid = _sid(params)
    sender = _text(params, "From")
    if sender is None:
        raise MalformedWebhookError("From is missing")
    channel, number = _address(sender)
    if channel is None:
        return Unanswerable(sid, "a sender on a channel leadbot does not serve")
    if not _E164.fullmatch(number):
        return Unanswerable(sid, f"an {channel} sender that is not a phone number")
    recipient = _text(params, "To")
    if recipient is not None and _address(recipient)[0] != channel:
        raise MalformedWebhookError("From and To are on different channels")
    media = _text(params, "NumMedia") or "0"
    if not _DIGITS.fullmatch(media):
        raise MalformedWebhookError("NumMedia must be a whole number")
    replied_to = _text(params, "OriginalRepliedMessageSid")
    if replied_to is not None and not _SID.fullmatch(replied_to):
        replied_to = None  # a reply to something leadbot cannot have sent
    whatsapp = channel == "whatsapp"
    return IncomingMessage(
        sid=sid,
        channel=channel,
        sender=number,
        text=_text(params, "Body") or "",
        media=int(media),
        button_payload=(_text(params, "ButtonPayload") or None) if whatsapp else None,
        button_text=(_text(params, "ButtonText") or None) if whatsapp else None,
        replied_to=replied_to if whatsapp else None,
        profile_name=_text(params, "ProfileName") if whatsapp else None,
    )


def parse_status(params: Mapping[str, object]) -> StatusReport | None:
    """A delivery report; None for a status leadbot does not track (a newer one)."""
    sid = _sid(params)
    status = _text(params, "MessageStatus") or _text(params, "SmsStatus")
    if status is None:
        raise MalformedWebhookError("MessageStatus is missing")
    if not _STATUS.fullmatch(status):
        raise MalformedWebhookError("MessageStatus is not a status")
    if status not in STATUSES:
        return None
    code = _text(params, "ErrorCode") or ""
    if code and not _DIGITS.fullmatch(code):
        raise MalformedWebhookError("ErrorCode must be a number")
    error = None
    if code and code != "0":
        meaning = ERRORS.get(code) or " ".join((_text(params, "ErrorMessage") or "").split())
        error = f"{code} {meaning[:200]}".strip()
    address = _text(params, "To") or _text(params, "From") or ""
    channel = "whatsapp" if address.startswith(WHATSAPP_PREFIX) else "sms"
    return StatusReport(sid, channel, status, error)


def _sid(params: Mapping[str, object]) -> str:
    sid = _text(params, "MessageSid")
    if sid is None:
        raise MalformedWebhookError("MessageSid is missing")
    if not _SID.fullmatch(sid):
        raise MalformedWebhookError("MessageSid is not a Twilio message SID")
    return sid


def _address(value: str) -> tuple[str | None, str]:
    """("whatsapp", "+E164") for "whatsapp:+E164"; ("sms", number) for a bare number."""
    if value.startswith(WHATSAPP_PREFIX):
        return "whatsapp", value.removeprefix(WHATSAPP_PREFIX)
    if ":" in value:
        return None, value  # messenger:..., rcs:...
    return "sms", value


def _text(params: Mapping[str, object], name: str) -> str | None:
    value = params.get(name)
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)  # JSON webhooks may write counts and codes as numbers
    if not isinstance(value, str):
        raise MalformedWebhookError(f"{name} must be text")
    return value
