"""The python-telegram-bot `Bot` leadbot talks through, and its errors in leadbot's terms.

PTB is used for transport only: every vendor error is converted here, once, into a
`DeliveryError`; conversation state stays in leadbot's database.
"""

from __future__ import annotations

import re
import warnings
from datetime import timedelta

from telegram import Bot
from telegram.error import (
    BadRequest,
    ChatMigrated,
    Forbidden,
    InvalidToken,
    NetworkError,
    RetryAfter,
    TelegramError,
    TimedOut,
)
from telegram.warnings import PTBDeprecationWarning

from bot.errors import DeliveryError
from webhooks.channels.telegram_http import AiohttpRequest
from webhooks.settings import TelegramSettings

# Names of environment variables, for messages that say what to set.
TOKEN_VARIABLE = "LEADBOT_TELEGRAM__TOKEN"  # noqa: S105
SECRET_VARIABLE = "LEADBOT_TELEGRAM__WEBHOOK_SECRET"  # noqa: S105
RETRY_AFTER_WARNING = r".*`retry_after` will be of type"
_TOKEN_IN_TEXT = re.compile(r"[0-9]{3,}:[A-Za-z0-9_-]{4,}")


def new_bot(settings: TelegramSettings) -> Bot:
    """A Bot on the configured API root, with a timeout on every call (not yet initialized)."""
    if settings.token is None:
        raise ValueError(f"telegram.token ({TOKEN_VARIABLE}) is not set")
    # PTB 22 warns, on every RetryAfter it builds, that the int becomes a timedelta in 23;
    # retry_after_seconds takes either.
    warnings.filterwarnings("ignore", RETRY_AFTER_WARNING, PTBDeprecationWarning)
    root = str(settings.api_url).rstrip("/")
    request = AiohttpRequest(timeout=settings.timeout)
    return Bot(
        settings.token.get_secret_value(),
        base_url=f"{root}/bot",
        base_file_url=f"{root}/file/bot",
        request=request,
    )


def retry_after_seconds(error: RetryAfter) -> float:
    with warnings.catch_warnings():  # PTB 22 warns that the int becomes a timedelta in 23
        warnings.simplefilter("ignore", PTBDeprecationWarning)
        value = error.retry_after
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


def delivery_error(error: TelegramError) -> DeliveryError:
    """What a failed Bot API call means for the outbox row. Messages never carry the token
    (PTB's InvalidToken text can)."""
    text = _TOKEN_IN_TEXT.sub("<token>", error.message)
    match error:
        case RetryAfter():
            seconds = retry_after_seconds(error)
            return DeliveryError(
                f"Telegram flood control: retry after {seconds:g} s", retry_after=seconds
            )
        case Forbidden():
            return DeliveryError(f"Telegram refused: {text}", unreachable=True)
        case InvalidToken():
            return DeliveryError(
                f"Telegram rejected the bot token: check {TOKEN_VARIABLE}", permanent=True
            )
        case ChatMigrated():
            return DeliveryError(
                f"the chat moved to {error.new_chat_id} (a group became a supergroup)",
                permanent=True,
            )
        case BadRequest():  # before NetworkError: PTB derives BadRequest from it
            return DeliveryError(f"Telegram refused the message: {text}", permanent=True)
        case TimedOut():
            return DeliveryError("Telegram did not answer in time")
        case NetworkError():
            return DeliveryError(f"Telegram is unavailable: {text}")
        case _:
            return DeliveryError(f"Telegram error: {text}")
