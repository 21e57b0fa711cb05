"""Sends the bot's messages to Telegram: options as inline buttons, phone questions with a
"share my number" button, long texts in parts."""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from typing import Any

from telegram import (
    Bot,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    KeyboardButton,
    ReplyKeyboardMarkup,
    ReplyKeyboardRemove,
)
from telegram.constants import InlineKeyboardButtonLimit, MessageLimit
from telegram.error import EndPointNotFound, InvalidToken, TelegramError
from telegram.warnings import PTBUserWarning

from bot.effects import InputHint
from bot.errors import DeliveryError
from bot.records import OutboxItem
from webhooks.channels.split import split_text, utf16_length
from webhooks.channels.telegram_bot import delivery_error

ReplyMarkup = InlineKeyboardMarkup | ReplyKeyboardMarkup | ReplyKeyboardRemove
SHARE_NUMBER = {
    "en": "📱 Share my number",
    "es": "📱 Compartir mi número",
    "fr": "📱 Partager mon numéro",
    "de": "📱 Meine Nummer teilen",
    "pt": "📱 Partilhar o meu número",
}
MAX_TEXT = int(MessageLimit.MAX_TEXT_LENGTH)  # 4,096
MAX_CALLBACK_DATA = int(InlineKeyboardButtonLimit.MAX_CALLBACK_DATA)  # 64 bytes
# PTB's nudge when do_api_request calls an endpoint Bot has a method for (see send below).
SEND_MESSAGE_NUDGE = r"Please use 'Bot\.sendMessage'"


class TelegramSender:
    """Delivers `send_text` outbox rows of the "telegram" channel; returns the message id."""

    def __init__(self, bot: Bot) -> None:
        self._bot = bot
        warnings.filterwarnings("ignore", SEND_MESSAGE_NUDGE, PTBUserWarning)

    async def send(self, item: OutboxItem) -> str:
        payload = item.payload
        chat = _chat_id(payload.get("chat"))
        parts = split_text(str(payload.get("text") or ""), MAX_TEXT, utf16_length)
        markup = reply_markup(
            payload.get("options") or [], payload.get("hint"), str(payload.get("language") or "en")
        )
        message_id = 0
        try:
            for number, part in enumerate(parts, start=1):
                last = number == len(parts)
                # The keyboard goes on the last part: the one that asks.
                message_id = await self._send_message(chat, part, markup if last else None)
        except TelegramError as error:
            raise delivery_error(error) from None
        return str(message_id)

    async def _send_message(self, chat: int, text: str, markup: ReplyMarkup | None) -> int:
        """sendMessage, through the same request and serialization as `Bot.send_message`, and
        the same errors but for a rejected token (below), returning the new message's id.
        `send_message` builds a whole `Message` from Telegram's answer, of which leadbot keeps
        the id: under load that was 13% of the server's CPU (bench/README.md), for nothing.
        `do_api_request` returns the answer as it came; PTB warns that sendMessage has a method
        of its own, hence the filter in __init__."""
        fields = {"chat_id": chat, "text": text, "reply_markup": markup}
        try:
            answer = await self._bot.do_api_request("sendMessage", api_kwargs=fields)
        except EndPointNotFound:
            # do_api_request's name for InvalidToken once the bot is initialized: Telegram's
            # 401 or 404, which for sendMessage can only mean the token was rejected.
            raise delivery_error(InvalidToken()) from None
        message_id = answer.get("message_id") if isinstance(answer, dict) else None
        if not isinstance(message_id, int):  # sent, but not recorded: sending again would repeat
            raise DeliveryError(
                "Telegram answered sendMessage without a message id", permanent=True
            )
        return message_id


def reply_markup(
    options: Sequence[Mapping[str, Any]], hint: object, language: str = "en"
) -> ReplyMarkup:
    """Buttons for the options, one a row; else "share my number" for a phone question;
    else nothing, and a "share my number" keyboard left from before is taken away."""
    if options:
        buttons = []
        for option in options:
            value = str(option["value"])
            if len(value.encode()) > MAX_CALLBACK_DATA:
                # Scripts keep values within 48 bytes; a longer one would fail the whole send.
                raise DeliveryError(f"option value {value[:20]!r}... is too long", permanent=True)
            buttons.append([InlineKeyboardButton(str(option["label"]), callback_data=value)])
        return InlineKeyboardMarkup(buttons)
    if hint == InputHint.PHONE.value:
        label = SHARE_NUMBER.get(language.split("-", 1)[0], SHARE_NUMBER["en"])
        button = KeyboardButton(label, request_contact=True)
        return ReplyKeyboardMarkup([[button]], resize_keyboard=True, one_time_keyboard=True)
    return ReplyKeyboardRemove()


def _chat_id(chat: object) -> int:
    try:
        return int(str(chat))
    except ValueError:
        raise DeliveryError(f"{chat!r} is not a Telegram chat id", permanent=True) from None
