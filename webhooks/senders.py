"""The outbox's sender for chat messages: hands each to the adapter of its channel."""

from __future__ import annotations

from aiohttp import web

from bot.errors import DeliveryError
from bot.records import OutboxItem
from webhooks.channels.telegram_bot import TOKEN_VARIABLE
from webhooks.channels.telegram_sender import TelegramSender
from webhooks.webchat import HUB


class ChannelSender:
    """Implements bot.dispatcher.Sender for `send_text` rows; channels are added as they are
    built (web chat and Telegram now; Twilio and TikTok by their own adapters)."""

    def __init__(self, app: web.Application, *, telegram: TelegramSender | None = None) -> None:
        self._app = app
        self._telegram = telegram

    async def send(self, item: OutboxItem) -> str | None:
        channel = str(item.payload.get("channel", ""))
        if channel == "web":
            # The web chat page reads the transcript itself; "sending" is telling it to look.
            self._app[HUB].notify(item.conversation_id)
            return f"web-{item.idempotency_key}"
        if channel == "telegram":
            if self._telegram is None:
                raise DeliveryError(
                    f"Telegram is not configured here: set {TOKEN_VARIABLE}", permanent=True
                )
            return await self._telegram.send(item)
        raise DeliveryError(f"channel {channel!r} is not configured here", permanent=True)
