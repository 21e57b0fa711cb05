"""Sends the bot's messages as TikTok Direct Messages through the Business Messaging API.

A question with one to three choices goes as a QA_BUTTON_CARD: the question as the card's title
(at most 40 characters) and a REPLY button per choice, whose id is the option's value, so a tap
comes back as that value. When the question does not fit a card (a longer line, longer labels,
several answers wanted) the choices go under the text as numbered lines, answered by number or
by words. Texts longer than TikTok's 6,000 characters go in parts; the choices ride on the last.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from bot.dispatcher import Sender
from bot.effects import InputHint
from bot.errors import DeliveryError
from bot.records import OutboxItem
from webhooks.channels.split import numbered, split_text, utf16_length
from webhooks.channels.tiktok_dm_client import TIKTOK_CLIENT, TikTokClient

CHANNEL = "tiktok"
# TikTok's limits (Business Messaging API, /business/message/send/), counted as JavaScript
# counts characters, which is never fewer than Python's.
MAX_TEXT = 6000
MAX_TITLE = 40  # the card's question
MAX_BUTTON_TITLE = 20  # each button's text on a QA_BUTTON_CARD
MAX_BUTTON_ID = 40
MAX_BUTTONS = 3
MAX_CHAT = 128


@dataclass(frozen=True, slots=True)
class Choice:
    value: str
    label: str


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One /business/message/send/ call: a text, or a button card."""

    text: str | None = None
    title: str | None = None
    buttons: tuple[Choice, ...] = ()

    def body(self, conversation: str) -> dict[str, Any]:
        message: dict[str, Any] = {"recipient_type": "CONVERSATION", "recipient": conversation}
        if self.title is None:
            return {**message, "message_type": "TEXT", "text": {"body": self.text}}
        buttons = [{"type": "REPLY", "title": b.label, "id": b.value} for b in self.buttons]
        template = {"type": "QA_BUTTON_CARD", "title": self.title, "buttons": buttons}
        return {**message, "message_type": "TEMPLATE", "template": template}


class TikTokSender:
    """Delivers outbox rows of the "tiktok" channel; returns TikTok's id for the last message
    sent (the one that asks, which a button tap refers back to)."""

    def __init__(self, client: TikTokClient) -> None:
        self._client = client

    async def send(self, item: OutboxItem) -> str | None:
        chat = str(item.payload.get("chat") or "")
        if not chat or len(chat) > MAX_CHAT or not chat.isprintable():
            raise DeliveryError(f"{chat[:20]!r} is not a TikTok conversation id", permanent=True)
        message_id: str | None = None
        for message in render(item.payload):
            message_id = await self._client.send(message.body(chat))
        return message_id


def render(payload: Mapping[str, Any]) -> list[Outgoing]:
    """The API calls that deliver one outbox row, in order."""
    text = str(payload.get("text") or "").strip()
    choices = _choices(payload.get("options"))
    card = _card(text, choices, payload.get("hint"))
    if card is not None:
        return card
    body = numbered(text, [choice.label for choice in choices])
    if not body.strip():
        raise DeliveryError("nothing to send: the message has no text", permanent=True)
    return [Outgoing(text=part) for part in split_text(body, MAX_TEXT, utf16_length)]


def _card(text: str, choices: Sequence[Choice], hint: object) -> list[Outgoing] | None:
    """The text's last line as a button card's title, what comes before it as text; None when
    the question does not fit one."""
    if not 1 <= len(choices) <= MAX_BUTTONS or hint == InputHint.MULTIPLE_CHOICE.value:
        return None  # a card's tap sends one answer; "1, 3" has to be typed
    head, _, question = text.rpartition("\n")
    question = " ".join(question.split())
    if not question or utf16_length(question) > MAX_TITLE:
        return None
    for choice in choices:
        if not 0 < utf16_length(choice.label) <= MAX_BUTTON_TITLE:
            return None
        if not 0 < utf16_length(choice.value) <= MAX_BUTTON_ID:
            return None
    before = split_text(head, MAX_TEXT, utf16_length) if head.strip() else []
    return [
        *(Outgoing(text=part) for part in before),
        Outgoing(title=question, buttons=tuple(choices)),
    ]


def _choices(value: object) -> list[Choice]:
    if not isinstance(value, list):
        return []
    choices = []
    for option in value:
        if isinstance(option, dict):
            label = " ".join(str(option.get("label") or option.get("value") or "").split())
            choices.append(Choice(str(option.get("value") or ""), label))
    return choices


def senders(app: web.Application) -> dict[str, Sender]:
    """The "tiktok" sender when sending is configured (tiktok.business_id and access_token)."""
    client = app.get(TIKTOK_CLIENT)
    return {CHANNEL: TikTokSender(client)} if client is not None else {}
