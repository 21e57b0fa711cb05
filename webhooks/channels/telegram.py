"""POST /webhooks/telegram: verify the secret header, read the update, hand it to the router.

Telegram retries any update not answered 2xx, for up to a day: the answer is 200 only once the
turn is committed, and a repeated update (same bot and update_id) is a receipt already stored,
acknowledged and ignored. Buttons are answered even when stale, and taken away once tapped.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import AsyncIterator

from aiohttp import web
from telegram import Bot
from telegram.error import InvalidToken, TelegramError

from bot.binding import ChatMessage
from bot.errors import UnknownConversationError, UnknownScriptError
from bot.inbound import Inbound, OptionPicked
from bot.records import Receipt
from webhooks.channels.taps import question_of_tap
from webhooks.channels.telegram_bot import (
    SECRET_VARIABLE,
    TOKEN_VARIABLE,
    delivery_error,
    new_bot,
)
from webhooks.channels.telegram_inbound import (
    Incoming,
    MalformedUpdateError,
    Tap,
    Unanswered,
    parse_update,
    read_update,
)
from webhooks.channels.telegram_reps import receive_group_update
from webhooks.channels.telegram_reps_inbound import group_chat
from webhooks.http import json_error, read_json_body
from webhooks.keys import DATABASE, ROUTER, SETTINGS, TELEGRAM_BOT
from webhooks.settings import SettingsError

log = logging.getLogger(__name__)

CHANNEL = "telegram"
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"  # noqa: S105 (a header's name)
MAX_BODY = 256 * 1024  # an update is a few kilobytes; a 4,096-character text with entities fits


def setup(app: web.Application) -> None:
    app.router.add_post("/webhooks/telegram", receive_update)


async def bot_context(app: web.Application) -> AsyncIterator[None]:
    """The Bot for the app's life. A wrong token stops the start; Telegram being unreachable
    does not (sends are retried, and web forms and other channels keep working)."""
    bot = new_bot(app[SETTINGS].telegram)
    try:
        await bot.initialize()
    except InvalidToken:
        await bot.shutdown()
        raise SettingsError(
            f"telegram.token ({TOKEN_VARIABLE}): Telegram does not know this token"
        ) from None
    except TelegramError as error:
        log.warning(
            "Telegram is unreachable at start (%s); sends will retry", delivery_error(error).reason
        )
    app[TELEGRAM_BOT] = bot
    yield
    await bot.shutdown()


def _ok() -> web.Response:
    return web.json_response({"ok": True})


async def receive_update(request: web.Request) -> web.Response:
    app = request.app
    settings = app[SETTINGS].telegram
    if settings.token is None or TELEGRAM_BOT not in app:
        return _not_configured("telegram.token", TOKEN_VARIABLE)
    if settings.webhook_secret is None:
        return _not_configured("telegram.webhook_secret", SECRET_VARIABLE)
    # surrogateescape: aiohttp keeps undecodable header bytes as surrogates; never let them raise.
    given = request.headers.get(SECRET_HEADER, "").encode("utf-8", "surrogateescape")
    if not hmac.compare_digest(given, settings.webhook_secret.get_secret_value().encode()):
        return json_error(403, "forbidden", f"missing or wrong {SECRET_HEADER}")
    body = await read_json_body(request, max_bytes=MAX_BODY)
    bot = app[TELEGRAM_BOT]
    try:
        update = parse_update(body, bot)
        group = group_chat(update)
        if group is not None:  # the reps' group, or another group the bot was added to
            return await receive_group_update(request, update, group)
        incoming = read_update(update)
    except MalformedUpdateError as error:
        return json_error(400, "bad_update", str(error))
    if isinstance(incoming, Unanswered):
        if incoming.query_id is not None:
            await _answer(bot, incoming.query_id)
        return _ok()
    inbound: Inbound = incoming.inbound
    if incoming.tap is not None:
        await _answer(bot, incoming.tap.query_id)
        question = await _question_of(request, incoming.chat, incoming.tap)
        if question is None or incoming.tap.value is None:
            return _ok()  # a button from a message that asks nothing now: nothing to do
        inbound = OptionPicked(question, incoming.tap.value)
    receipt = Receipt(CHANNEL, f"{settings.bot_id}:{update.update_id}")
    try:
        result = await app[ROUTER].receive(_message(incoming, inbound, receipt))
    except (UnknownConversationError, UnknownScriptError):  # erased lead, or script removed
        log.info("telegram update %s names an erased lead; ignored", update.update_id)
        return _ok()
    if incoming.tap is not None and result.applied:
        await _close_keyboard(bot, incoming.chat, incoming.tap)
    return _ok()


def _not_configured(key: str, variable: str) -> web.Response:
    return json_error(
        404, "not_configured", f"Telegram is not enabled here: set {key} ({variable})"
    )


def _message(incoming: Incoming, inbound: Inbound, receipt: Receipt) -> ChatMessage:
    return ChatMessage(
        channel=CHANNEL,
        chat=incoming.chat,
        inbound=inbound,
        receipt=receipt,
        language=incoming.language,
        start=incoming.start,
        profile=incoming.profile,
    )


async def _question_of(request: web.Request, chat: str, tap: Tap) -> str | None:
    if tap.message_id is None:
        return None
    return await question_of_tap(request.app[DATABASE], CHANNEL, chat, str(tap.message_id))


async def _answer(bot: Bot, query_id: str) -> None:
    """Every callback query is answered, or the prospect's app shows a spinner on the button."""
    try:
        await bot.answer_callback_query(query_id)
    except TelegramError as error:
        log.warning("could not answer a Telegram button tap: %s", delivery_error(error).reason)


async def _close_keyboard(bot: Bot, chat: str, tap: Tap) -> None:
    """Take the buttons off the message once one was used: a second tap changes nothing."""
    try:
        await bot.edit_message_reply_markup(chat_id=int(chat), message_id=tap.message_id)
    except TelegramError as error:
        log.info("could not remove a Telegram keyboard: %s", delivery_error(error).reason)
