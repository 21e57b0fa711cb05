"""The outbox's sender for chat messages: hands each to the adapter of its channel."""

from __future__ import annotations

from collections.abc import Mapping

from aiohttp import web

from bot.dispatcher import Sender
from bot.errors import DeliveryError
from bot.records import OutboxItem
from webhooks.webchat import HUB

# The setting that turns each channel's sending on, for the error when it is off.
ENABLED_BY = {
    "telegram": "telegram.token (LEADBOT_TELEGRAM__TOKEN)",
    "sms": "twilio.account_sid, twilio.auth_token and twilio.sms_number",
    "whatsapp": "twilio.account_sid, twilio.auth_token and twilio.whatsapp_number",
    "tiktok": "tiktok.business_id and tiktok.access_token",
}


class ChannelSender:
    """Implements bot.dispatcher.Sender for `send_text` and `first_contact` rows: each goes to
    the sender of its channel; the web chat is built in."""

    def __init__(self, app: web.Application, senders: Mapping[str, Sender]) -> None:
        self._app = app
        self._senders = dict(senders)

    async def send(self, item: OutboxItem) -> str | None:
        channel = str(item.payload.get("channel", ""))
        if channel == "web":
            # The web chat page reads the transcript itself; "sending" is telling it to look.
            self._app[HUB].notify(item.conversation_id)
            return f"web-{item.idempotency_key}"
        sender = self._senders.get(channel)
        if sender is None:
            setting = ENABLED_BY.get(channel)
            hint = f": set {setting}" if setting else ""
            raise DeliveryError(f"channel {channel!r} is not configured here{hint}", permanent=True)
        return await sender.send(item)
