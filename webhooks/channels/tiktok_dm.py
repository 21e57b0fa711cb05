"""POST /webhooks/tiktok: TikTok Direct Message events, verified, read, handed to the router.

TikTok retries an event not answered 2xx for up to 72 hours: the answer is 200 only once the
turn is committed, and a repeated message id is a receipt already stored, acknowledged and
ignored. Echoes of leadbot's own sends, read receipts and TikTok's test ping are acknowledged
and left alone. Replies go out through the outbox and the Business Messaging API.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from aiohttp import web

from bot.binding import ChatMessage
from bot.errors import UnknownConversationError, UnknownScriptError
from bot.inbound import ConversationStarted, Inbound, OptionPicked, TextReceived
from bot.records import Receipt
from webhooks.channels.taps import question_of_tap
from webhooks.channels.tiktok_dm_client import client_context
from webhooks.channels.tiktok_dm_inbound import (
    Arrival,
    Ignored,
    Incoming,
    MalformedEventError,
    parse_event,
)
from webhooks.channels.tiktok_dm_signature import InvalidSignatureError, verify_signature
from webhooks.http import json_error
from webhooks.keys import DATABASE, ROUTER, SETTINGS

log = logging.getLogger(__name__)

CHANNEL = "tiktok"
PATH = "/webhooks/tiktok"
SECRET_VARIABLE = "LEADBOT_TIKTOK__APP_SECRET"  # noqa: S105 (a variable's name)
SIGNATURE_HEADER = "TikTok-Signature"
# An event is a few kilobytes; 6,000 characters of text, escaped twice (the content is JSON
# inside a JSON string), still fit well within this.
MAX_BODY = 256 * 1024

__all__ = ["PATH", "client_context", "setup"]


def setup(app: web.Application) -> None:
    app.router.add_post(PATH, receive_event)


async def receive_event(request: web.Request) -> web.Response:
    settings = request.app[SETTINGS].tiktok
    if settings.app_secret is None:
        return json_error(
            404,
            "not_configured",
            "TikTok Direct Messages are not enabled here: set tiktok.app_secret "
            f"({SECRET_VARIABLE})",
        )
    if not request.headers.get(SIGNATURE_HEADER, "").strip():
        return json_error(401, "bad_signature", f"missing {SIGNATURE_HEADER} header")
    # The body is checked for size only: the signature, not a Content-Type, says it is TikTok's.
    if request.content_length is not None and request.content_length > MAX_BODY:
        raise web.HTTPRequestEntityTooLarge(max_size=MAX_BODY, actual_size=request.content_length)
    body = await request.read()
    if len(body) > MAX_BODY:
        raise web.HTTPRequestEntityTooLarge(max_size=MAX_BODY, actual_size=len(body))
    secret = settings.app_secret.get_secret_value()
    try:
        verify_signature(body, request.headers, secret, datetime.now(UTC))
    except InvalidSignatureError as error:
        return json_error(401, "bad_signature", str(error))
    try:
        event = parse_event(body, settings.business_id)
    except MalformedEventError as error:
        return json_error(400, "bad_event", str(error))
    if isinstance(event, Ignored):
        log.debug("TikTok event ignored: %s", event.reason)
        return _ok()
    message = await _message(request, event)
    try:
        await request.app[ROUTER].receive(message)
    except (UnknownConversationError, UnknownScriptError):  # erased lead, or script removed
        log.info("TikTok event %s names an erased lead; ignored", message.receipt.provider_id)
    return _ok()


async def _message(request: web.Request, event: Arrival | Incoming) -> ChatMessage:
    if isinstance(event, Arrival):
        return ChatMessage(
            channel=CHANNEL,
            chat=event.conversation_id,
            inbound=ConversationStarted(),
            receipt=Receipt(CHANNEL, event.receipt),
            start=event.ref,
            profile=event.profile,
        )
    return ChatMessage(
        channel=CHANNEL,
        chat=event.conversation_id,
        inbound=await _inbound(request, event),
        receipt=Receipt(CHANNEL, event.message_id),
        profile=event.profile,
    )


async def _inbound(request: web.Request, event: Incoming) -> Inbound:
    """What the prospect did. A tapped button answers the question of the card it sat on; one
    whose card asks nothing now (an old card, or another conversation's) reads as its title
    typed. Media alone gets the script's polite "could you type your answer?"."""
    if event.reply_to is not None and event.button is not None:
        question = await question_of_tap(
            request.app[DATABASE], CHANNEL, event.conversation_id, event.reply_to
        )
        if question is not None:
            return OptionPicked(question, event.button)
    return TextReceived(event.text)


def _ok() -> web.Response:
    return web.json_response({"ok": True})
