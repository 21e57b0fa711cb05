"""A rep's actions on a conversation: take over, send a message, hand back, close with an
outcome, add a note. A form gets 303 back to the conversation, or the page again with the
problem on top; a script asking for JSON gets JSON. A refused action has changed nothing."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from bot import desk
from bot.errors import UnknownConversationError
from bot.textsafe import storable
from storage import console_queries as queries
from webhooks.console.auth import current_rep, login_required, refuse, wants_json
from webhooks.console.conversation import render
from webhooks.console.live import conversation_id_of
from webhooks.console.present import state_json
from webhooks.http import json_error
from webhooks.intake.common import IntakeError
from webhooks.intake.payload import load_json
from webhooks.keys import CONVERSATIONS, DATABASE

log = logging.getLogger("leadbot.console")
MAX_BODY = 32 * 1024
_FORMS = frozenset({"application/x-www-form-urlencoded", "multipart/form-data"})


class BadInputError(Exception):
    """The request's fields are missing or wrong; the message says which."""


async def _fields(request: web.Request) -> dict[str, Any]:
    """The fields of a form or of a JSON object."""
    if request.content_type == "application/json":
        if request.content_length is not None and request.content_length > MAX_BODY:
            raise BadInputError(f"the body is larger than {MAX_BODY} bytes")
        try:
            data = load_json(await request.read())
        except IntakeError as error:
            raise BadInputError(error.message) from None
        if not isinstance(data, dict):
            raise BadInputError("send a JSON object")
        return data
    if request.content_type in _FORMS:
        return dict(await request.post())
    return {}


def _text(fields: dict[str, Any], name: str, what: str, limit: int) -> str:
    value = fields.get(name)
    if value is not None and not isinstance(value, str):
        raise BadInputError(f"{name} must be a string")
    text = storable(value).strip() if value is not None else ""
    if not text:
        raise BadInputError(f"{what} is empty: write something first")
    if len(text) > limit:
        raise BadInputError(f"{what} is too long: at most {limit} characters")
    return text


def _answers_json(request: web.Request) -> bool:
    """A script that sent JSON, or asked for it, reads JSON; a form gets pages."""
    return wants_json(request) or request.content_type == "application/json"


def _take_over(fields: dict[str, Any]) -> desk.Action:
    return desk.TakeOver()


def _write(fields: dict[str, Any]) -> desk.Action:
    return desk.Write(_text(fields, "text", "the message", desk.MAX_REP_TEXT))


def _hand_back(fields: dict[str, Any]) -> desk.Action:
    return desk.HandBack()


def _close(fields: dict[str, Any]) -> desk.Action:
    outcome = _text(fields, "outcome", "the outcome", desk.MAX_OUTCOME)
    return desk.Close(outcome)


def _note(fields: dict[str, Any]) -> desk.Action:
    return desk.Note(_text(fields, "text", "the note", desk.MAX_REP_TEXT))


Parse = Callable[[dict[str, Any]], desk.Action]
# Where each action sends the browser afterwards: the message box again after writing.
_ANCHORS = {"write": "#compose"}


def _action(name: str, parse: Parse) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    @login_required
    async def handler(request: web.Request) -> web.StreamResponse:
        conversation_id = conversation_id_of(request)
        if conversation_id is None:
            return refuse(request, 404, "not_found", "no such conversation")
        database = request.app[DATABASE]
        if await queries.conversation_mark(database, conversation_id) is None:
            return refuse(request, 404, "not_found", f"no conversation {conversation_id}")
        who = await current_rep(request)
        if who is None:  # login_required let in a rep: the console takes no API keys
            return refuse(request, 403, "forbidden", "log in as a rep")
        try:
            action = parse(await _fields(request))
        except BadInputError as error:
            return await _failed(request, conversation_id, 400, "bad_request", str(error))
        rep = desk.Rep(who.id, who.name)
        try:
            await request.app[CONVERSATIONS].act(conversation_id, rep, action)
        except desk.HeldByAnotherError as error:
            return await _failed(
                request, conversation_id, 409, "held_by_another", str(error), holder=error.holder
            )
        except desk.NotHoldingError:
            message = "take the conversation over first"
            return await _failed(request, conversation_id, 409, "not_holding", message)
        except desk.ActionRefusedError as error:
            return await _failed(request, conversation_id, 409, "refused", str(error))
        except UnknownConversationError:  # erased a moment ago
            return refuse(request, 404, "not_found", f"no conversation {conversation_id}")
        log.info(
            "console: rep action",
            extra={"rep_id": rep.id, "conversation_id": conversation_id, "action": name},
        )
        if _answers_json(request):
            mark = await queries.conversation_mark(database, conversation_id)
            state = (
                state_json(
                    version=mark.version,
                    status=mark.status,
                    held_by=mark.held_by,
                    held_by_name=mark.held_by_name,
                )
                if mark is not None
                else {}
            )
            body = {"ok": True, "action": name, "conversation": {"id": conversation_id, **state}}
            return web.json_response(body, headers={"Cache-Control": "no-store"})
        raise web.HTTPSeeOther(f"/console/conversations/{conversation_id}{_ANCHORS.get(name, '')}")

    handler.__name__ = handler.__qualname__ = name.replace("-", "_")
    return handler


async def _failed(
    request: web.Request,
    conversation_id: int,
    status: int,
    code: str,
    message: str,
    **extra: object,
) -> web.StreamResponse:
    if _answers_json(request):
        return json_error(status, code, message, **extra)
    alert = message[0].upper() + message[1:] + ("" if message.endswith(".") else ".")
    return await render(request, conversation_id, status=status, alert=alert)


take_over = _action("take_over", _take_over)
write = _action("write", _write)
hand_back = _action("hand_back", _hand_back)
close = _action("close", _close)
note = _action("note", _note)
