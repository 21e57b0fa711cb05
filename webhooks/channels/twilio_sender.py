"""Sends the bot's messages by SMS and WhatsApp through Twilio's Messages API.

SMS has no buttons: choices go under the text as numbered lines, and the prospect answers with
the number or the words. WhatsApp sends an approved template when the outbox row names one (first
contact, or a message outside the 24-hour window, as the dispatcher decided), a quick-reply
template when the question names one, and otherwise text with numbered lines. Long texts go in
parts; the choices ride on the last. Every message asks Twilio to report its delivery to
POST /webhooks/twilio/status.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from aiohttp import ClientError, web
from twilio.base.exceptions import TwilioException  # type: ignore[import-untyped]
from twilio.rest import Client  # type: ignore[import-untyped]

from bot.dispatcher import Sender
from bot.errors import DeliveryError
from bot.records import OutboxItem
from webhooks.channels.split import numbered, split_text
from webhooks.channels.twilio_client import TWILIO_CLIENT, delivery_error
from webhooks.channels.twilio_inbound import WHATSAPP_PREFIX
from webhooks.keys import SETTINGS
from webhooks.settings import Settings

STATUS_PATH = "/webhooks/twilio/status"
# A message's longest body: Twilio's for SMS (it splits into segments itself), WhatsApp's.
LIMITS = {"sms": 1600, "whatsapp": 4096}
QUICK_REPLY_BODY = 1024  # twilio/quick-reply: the text above the buttons
_E164 = re.compile(r"\+[1-9][0-9]{6,14}")


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One Messages API call: a body, or a content template and its variables."""

    body: str | None = None
    content_sid: str | None = None
    content_variables: Mapping[str, str] | None = None


class TwilioSender:
    """Delivers outbox rows of one channel ("sms" or "whatsapp") from the business's number
    for it; returns the SID of the last message sent (the one that asks)."""

    def __init__(
        self,
        client: Client,
        channel: str,
        number: str,
        *,
        timeout: float,
        status_callback: str | None = None,
    ) -> None:
        if channel not in LIMITS:
            raise ValueError(f"Twilio sends sms or whatsapp, not {channel!r}")
        self._client = client
        self._channel = channel
        self._from = _address(channel, number)
        self._timeout = timeout
        self._status_callback = status_callback

    async def send(self, item: OutboxItem) -> str:
        payload = item.payload
        chat = str(payload.get("chat") or "")
        if not _E164.fullmatch(chat):
            raise DeliveryError(
                f"{self._channel} chat {chat[:4]!r}... is not a phone number", permanent=True
            )
        to = _address(self._channel, chat)
        sid = ""
        for message in render(self._channel, payload):
            sid = await self._create(to, message)
        return sid

    async def _create(self, to: str, message: Outgoing) -> str:
        arguments: dict[str, Any] = {"to": to, "from_": self._from}
        if self._status_callback is not None:
            arguments["status_callback"] = self._status_callback
        if message.content_sid is not None:
            arguments["content_sid"] = message.content_sid
            if message.content_variables:
                arguments["content_variables"] = json.dumps(dict(message.content_variables))
        else:
            arguments["body"] = message.body
        try:
            # twilio's async HTTP client sets no timeout on its requests: this is the bound.
            async with asyncio.timeout(self._timeout):
                created = await self._client.messages.create_async(**arguments)
        except (TwilioException, ClientError, TimeoutError) as error:
            raise delivery_error(error) from None
        sid = getattr(created, "sid", None)
        if not isinstance(sid, str) or not sid:
            raise DeliveryError("Twilio accepted the message but gave no SID")
        return sid


def render(channel: str, payload: Mapping[str, Any]) -> list[Outgoing]:
    """The API calls that deliver one outbox row, in order."""
    text = str(payload.get("text") or "")
    options = _options(payload.get("options"))
    if channel == "whatsapp":
        template = _content_sid(payload.get("content_sid"))
        if template is not None:  # an approved template says it all: no body
            return [Outgoing(content_sid=template, content_variables=_variables(payload))]
        buttons = _content_sid(payload.get("buttons_template"))
        if buttons is not None and options and text.strip():
            return _with_buttons(text, buttons)
    body = numbered(text, options)
    if not body.strip():
        raise DeliveryError("nothing to send: the message has no text", permanent=True)
    return [Outgoing(body=part) for part in split_text(body, LIMITS[channel])]


def _with_buttons(text: str, template: str) -> list[Outgoing]:
    """The text's last line above the buttons, what comes before it as text. Twilio refuses a
    variable holding a newline, a tab or five spaces in a row (21656), and a quick reply's
    text holds 1,024 characters: a longer line comes in parts too."""
    head, _, last = text.strip().rpartition("\n")
    *more, asking = split_text(" ".join(last.split()), QUICK_REPLY_BODY)
    before = split_text(head, LIMITS["whatsapp"]) if head.strip() else []
    parts = [Outgoing(body=part) for part in (*before, *more)]
    return [*parts, Outgoing(content_sid=template, content_variables={"1": asking})]


def _options(value: object) -> list[str]:
    if not isinstance(value, list):
        return []
    return [
        str(option.get("label") or option.get("value") or "")
        for option in value
        if isinstance(option, dict)
    ]


def _content_sid(value: object) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str) or not re.fullmatch(r"HX[0-9a-fA-F]{32}", value):
        raise DeliveryError(f"{str(value)[:40]!r} is not a content SID (HX...)", permanent=True)
    return value


def _variables(payload: Mapping[str, Any]) -> dict[str, str] | None:
    value = payload.get("content_variables")
    if not value:
        return None
    if not isinstance(value, dict):
        raise DeliveryError("content_variables must be a mapping", permanent=True)
    return {str(key): str(item) for key, item in value.items()}


def _address(channel: str, number: str) -> str:
    return f"{WHATSAPP_PREFIX}{number}" if channel == "whatsapp" else number


def status_callback_url(settings: Settings) -> str | None:
    """Where Twilio reports deliveries: the public URL, unless it is this machine's own
    (Twilio cannot call it, and may refuse a callback URL without a real host name)."""
    host = urlsplit(settings.base_url).hostname or ""
    try:
        local = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        local = False
    return None if local else settings.base_url + STATUS_PATH


def senders(app: web.Application) -> dict[str, Sender]:
    """A sender for each channel whose number is set; none when Twilio is not configured."""
    client = app.get(TWILIO_CLIENT)
    if client is None:
        return {}
    settings = app[SETTINGS]
    twilio = settings.twilio
    numbers = {"sms": twilio.sms_number, "whatsapp": twilio.whatsapp_number}
    callback = status_callback_url(settings)
    return {
        channel: TwilioSender(
            client, channel, number, timeout=twilio.timeout, status_callback=callback
        )
        for channel, number in numbers.items()
        if number is not None
    }
