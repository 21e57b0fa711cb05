"""A Telegram update, read into what the conversation understands: a message, a tapped button,
or nothing for leadbot (edits, channel posts, groups)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

from telegram import Bot, CallbackQuery, Message, Update, User
from telegram.constants import ChatType, MessageAttachmentType

from bot.inbound import ContactShared, ConversationStarted, Inbound, TextReceived

_DEEP_LINK_PAYLOAD = re.compile(r"[A-Za-z0-9_-]{1,64}")


class MalformedUpdateError(ValueError):
    """The body is not a Telegram update; the message says why."""


@dataclass(frozen=True, slots=True)
class Tap:
    """A tapped inline button. Its question is the one of the message it sits on."""

    query_id: str  # answered always, so the app stops spinning
    message_id: int | None  # None: a message Telegram no longer shows us
    value: str | None  # the option's value (callback data)


@dataclass(frozen=True, slots=True)
class Incoming:
    """What a prospect did in their private chat with the bot."""

    chat: str
    inbound: Inbound  # for a tap, filled in once its question is known
    language: str | None = None
    start: str | None = None  # /start's payload; "" for /start alone
    profile: dict[str, str] = field(default_factory=dict)
    tap: Tap | None = None


@dataclass(frozen=True, slots=True)
class Unanswered:
    """An update leadbot ignores; a callback query in it is still answered."""

    query_id: str | None = None


def parse_update(body: bytes, bot: Bot) -> Update:
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        raise MalformedUpdateError("the body is not valid JSON") from None
    if not isinstance(data, dict):
        raise MalformedUpdateError("an update is a JSON object")
    update_id = data.get("update_id")
    if not isinstance(update_id, int) or isinstance(update_id, bool) or update_id < 0:
        raise MalformedUpdateError("update_id is missing or not a whole number")
    try:
        update = Update.de_json(data, bot)
    except Exception as error:  # PTB's parser on untrusted input: whatever it trips on is a 400
        raise MalformedUpdateError(f"not a Telegram update ({type(error).__name__})") from None
    return update


def read_update(update: Update) -> Incoming | Unanswered:
    """What the update means for leadbot. PTB does not check the types of what it parses: the
    fields read here are checked, and a wrong one raises MalformedUpdateError."""
    if update.callback_query is not None:
        return _tap(update.callback_query)
    message = update.message  # edited messages, channel posts... are not turns
    if message is None or message.chat.type != ChatType.PRIVATE:
        return Unanswered()
    user = message.from_user
    if user is None or user.is_bot:
        return Unanswered()
    chat = _whole(message.chat.id, "message.chat.id")
    inbound, start = _content(message, user)
    if inbound is None:
        return Unanswered()
    return Incoming(str(chat), inbound, _language(user), start, _profile(user))


def _content(message: Message, user: User) -> tuple[Inbound | None, str | None]:
    """The inbound event and the /start payload, if any."""
    text = _text(message.text, "message.text")
    if text is not None:
        command, _, payload = text.strip().partition(" ")
        if command.split("@", 1)[0] == "/start":
            # Whatever the payload, the router opens the conversation; /start alone in a chat
            # that has one says "welcome back" and asks the pending question again. A deep
            # link's payload is 1-64 of A-Z a-z 0-9 _ -: anything else was typed by hand, and
            # counts as /start alone.
            payload = payload.strip()
            start = payload if _DEEP_LINK_PAYLOAD.fullmatch(payload) else ""
            return ConversationStarted(language=_language(user)), start
        return TextReceived(text), None
    if message.contact is not None:
        contact = message.contact
        phone = _text(contact.phone_number, "message.contact.phone_number") or ""
        owner = contact.user_id
        own = isinstance(owner, int) and owner == _whole(user.id, "message.from.id")
        return ContactShared(phone, own), None
    caption = _text(message.caption, "message.caption")
    if caption is not None:
        return TextReceived(caption), None
    if _has_attachment(message):
        # A sticker, photo, voice note...: the bot asks again, politely, for a typed answer.
        return TextReceived(""), None
    return None, None  # a service message (pinned, joined...): nothing to answer


def _has_attachment(message: Message) -> bool:
    # Not message.effective_attachment: PTB warns about successful_payment there.
    return any(
        message[kind] for kind in MessageAttachmentType if kind != MessageAttachmentType.CONTACT
    )


def _tap(query: CallbackQuery) -> Incoming | Unanswered:
    query_id = _text(query.id, "callback_query.id") or ""
    message = query.message
    user = query.from_user
    if message is not None and message.chat.type != ChatType.PRIVATE:
        return Unanswered(query_id)
    if user.is_bot:
        return Unanswered(query_id)
    chat = _whole(message.chat.id if message is not None else user.id, "callback_query chat")
    message_id = _whole(message.message_id, "message_id") if message is not None else None
    tap = Tap(query_id, message_id, _text(query.data, "callback_query.data"))
    return Incoming(
        str(chat),
        TextReceived(""),  # replaced by OptionPicked once the question is known
        _language(user),
        None,
        _profile(user),
        tap,
    )


def _language(user: User) -> str | None:
    return _text(user.language_code, "from.language_code")


def _profile(user: User) -> dict[str, str]:
    names = {
        "first_name": _text(user.first_name, "from.first_name"),
        "last_name": _text(user.last_name, "from.last_name"),
    }
    return {key: value for key, value in names.items() if value}


def _text(value: object, what: str) -> str | None:
    if value is not None and not isinstance(value, str):
        raise MalformedUpdateError(f"{what} must be text")
    return value


def _whole(value: object, what: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise MalformedUpdateError(f"{what} must be a whole number")
    return value
