"""POST /webhooks/twilio (SMS and WhatsApp messages) and POST /webhooks/twilio/status (delivery
reports): verify Twilio's signature, read the parameters, hand them to the core.

Twilio retries nothing on its own but tries the fallback URL when the answer is not 2xx within
15 seconds: the answer is sent only once the turn is committed, and a repeated MessageSid is a
receipt already stored, acknowledged and ignored. Replies go out through the outbox and the REST
API, so the answer to a message is an empty TwiML <Response/>.
"""

from __future__ import annotations

import logging

from aiohttp import web
from twilio.twiml.messaging_response import MessagingResponse  # type: ignore[import-untyped]

from bot.binding import ChatMessage
from bot.errors import UnknownConversationError, UnknownScriptError
from bot.inbound import Inbound, OptionPicked, TextReceived
from bot.records import Receipt
from storage.transcripts import question_of_provider_message
from webhooks.channels.twilio_client import SID_VARIABLE, TOKEN_VARIABLE, client_context
from webhooks.channels.twilio_inbound import (
    IncomingMessage,
    MalformedWebhookError,
    Unanswerable,
    parse_message,
    parse_status,
    read_params,
)
from webhooks.channels.twilio_sender import STATUS_PATH
from webhooks.channels.twilio_signature import InvalidSignatureError, SignedRequest, read_signed
from webhooks.http import json_error
from webhooks.keys import CONVERSATIONS, DATABASE, ROUTER, SETTINGS

log = logging.getLogger(__name__)

MESSAGE_PATH = "/webhooks/twilio"

__all__ = ["MESSAGE_PATH", "STATUS_PATH", "client_context", "setup"]


def setup(app: web.Application) -> None:
    app.router.add_post(MESSAGE_PATH, receive_message)
    app.router.add_post(STATUS_PATH, receive_status)


async def receive_message(request: web.Request) -> web.StreamResponse:
    signed = await _verified(request)
    if isinstance(signed, web.Response):
        return signed
    try:
        incoming = parse_message(read_params(signed))
    except MalformedWebhookError as error:
        return json_error(400, "bad_webhook", str(error))
    if isinstance(incoming, Unanswerable):
        log.info("Twilio message %s not answered: %s", incoming.sid, incoming.reason)
        return _empty_twiml()
    message = ChatMessage(
        channel=incoming.channel,
        chat=incoming.sender,
        inbound=await _inbound(request, incoming),
        receipt=Receipt(incoming.channel, incoming.sid),
        profile=incoming.profile,
        phone=incoming.sender,
    )
    try:
        await request.app[ROUTER].receive(message)
    except (UnknownConversationError, UnknownScriptError):  # erased lead, or script removed
        log.info("Twilio message %s names an erased lead; ignored", incoming.sid)
    return _empty_twiml()


async def receive_status(request: web.Request) -> web.StreamResponse:
    signed = await _verified(request)
    if isinstance(signed, web.Response):
        return signed
    try:
        report = parse_status(read_params(signed))
    except MalformedWebhookError as error:
        return json_error(400, "bad_webhook", str(error))
    if report is not None:
        await request.app[CONVERSATIONS].record_delivery(
            report.channel, report.sid, report.status, report.error
        )
    return web.Response(status=204)


async def _verified(request: web.Request) -> SignedRequest | web.Response:
    """The signed request, or the answer to give when it is not Twilio's (or Twilio is off)."""
    settings = request.app[SETTINGS]
    twilio = settings.twilio
    if twilio.account_sid is None or twilio.auth_token is None:
        return json_error(
            403,
            "not_configured",
            "Twilio is not enabled here: set twilio.account_sid and twilio.auth_token "
            f"({SID_VARIABLE}, {TOKEN_VARIABLE})",
        )
    try:
        return await read_signed(request, twilio.auth_token.get_secret_value(), settings.base_url)
    except InvalidSignatureError as error:
        return json_error(403, "forbidden", str(error))


async def _inbound(request: web.Request, incoming: IncomingMessage) -> Inbound:
    """What the prospect did. A quick-reply button answers the question of the message it sat
    on; one whose message asks nothing now (or is unknown: a first-contact template's) reads as
    its title typed. Media alone gets the script's polite "could you type your answer?"."""
    if incoming.button_payload is not None:
        question = None
        if incoming.replied_to is not None:
            question = await question_of_provider_message(
                request.app[DATABASE], incoming.channel, incoming.sender, incoming.replied_to
            )
        if question is not None:
            return OptionPicked(question, incoming.button_payload)
        return TextReceived(incoming.button_text or incoming.button_payload)
    if incoming.media and not incoming.text.strip():
        return TextReceived("")
    return TextReceived(incoming.text)


def _empty_twiml() -> web.Response:
    return web.Response(text=str(MessagingResponse()), content_type="text/xml")
