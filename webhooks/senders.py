"""The outbox's sender for chat messages: hands each to the adapter of its channel."""

from __future__ import annotations

from aiohttp import web

from bot.errors import DeliveryError
from bot.records import OutboxItem
from webhooks.webchat import HUB


class ChannelSender:
    """Implements bot.dispatcher.Sender for `send_text` rows; channels are added as they are
    built (web chat now; Telegram, Twilio and TikTok by their own adapters)."""

    def __init__(self, app: web.Application) -> None:
        self._app = app

    async def send(self, item: OutboxItem) -> str | None:
        channel = str(item.payload.get("channel", ""))
        if channel == "web":
            # The web chat page reads the transcript itself; "sending" is telling it to look.
            self._app[HUB].notify(item.conversation_id)
            return f"web-{item.idempotency_key}"
        raise DeliveryError(f"channel {channel!r} is not configured here", permanent=True)
