"""An update from a Telegram group, read into what a rep did there: tapped a card's button, or
wrote (text or a command) in a lead's thread. Fields are checked as in telegram_inbound."""

from __future__ import annotations

from dataclasses import dataclass

from telegram import Message, Update
from telegram.constants import ChatType

from webhooks.channels.telegram_inbound import MalformedUpdateError

GROUPS = frozenset({ChatType.GROUP, ChatType.SUPERGROUP})


@dataclass(frozen=True, slots=True)
class GroupTap:
    query_id: str  # answered always
    chat_id: int
    user_id: int
    message_id: int | None  # the message the button sits on (None: too old to be shown)
    data: str


@dataclass(frozen=True, slots=True)
class GroupPost:
    chat_id: int
    user_id: int
    message_id: int
    topic_id: int | None  # the forum topic it was written in
    answers: tuple[int, ...]  # the messages it replies to or sits under, nearest first
    text: str | None  # None: not text (a photo, a sticker...)
    command: str | None = None  # "handback" for "/handback@bot ...", None for plain text
    argument: str = ""


def group_chat(update: Update) -> int | None:
    """The group an update comes from, if it comes from a group."""
    query = update.callback_query
    message = query.message if query is not None else update.message
    if message is None:
        return None
    kind: object = message.chat.type  # PTB does not check types: it may be a list, say
    if not isinstance(kind, str) or kind not in GROUPS:
        return None
    return _whole(message.chat.id, "chat.id")


def read_group_update(update: Update, username: str | None) -> GroupTap | GroupPost | None:
    """What a person did in a group; None for what is not theirs to do (bots, service
    messages, edits, commands meant for another bot)."""
    query = update.callback_query
    if query is not None:
        if query.message is None:
            return None
        return GroupTap(
            query_id=_text(query.id, "callback_query.id") or "",
            chat_id=_whole(query.message.chat.id, "chat.id"),
            user_id=_whole(query.from_user.id, "from.id"),
            message_id=_whole(query.message.message_id, "message_id"),
            data=_text(query.data, "callback_query.data") or "",
        )
    message = update.message
    user = message.from_user if message is not None else None
    if message is None or user is None or user.is_bot:
        return None
    text = _text(message.text, "message.text")
    if text is None and not _has_content(message):
        return None  # a service message: someone joined, a topic was made...
    command, argument = _command(text or "", username)
    if command == "":
        return None  # a command for another bot
    return GroupPost(
        chat_id=_whole(message.chat.id, "chat.id"),
        user_id=_whole(user.id, "from.id"),
        message_id=_whole(message.message_id, "message_id"),
        topic_id=_topic(message),
        answers=_answers(message),
        text=text,
        command=command,
        argument=argument,
    )


def _command(text: str, username: str | None) -> tuple[str | None, str]:
    """("handback", "") for "/handback"; ("", "") for "/close@other_bot"; (None, "") else."""
    if not text.startswith("/"):
        return None, ""
    head, _, rest = text.partition(" ")
    name, _, addressee = head[1:].partition("@")
    if addressee and username is not None and addressee.lower() != username.lower():
        return "", ""
    return name.lower(), rest.strip()


def _topic(message: Message) -> int | None:
    if not message.is_topic_message or message.message_thread_id is None:
        return None
    return _whole(message.message_thread_id, "message_thread_id")


def _answers(message: Message) -> tuple[int, ...]:
    found: list[int] = []
    if message.reply_to_message is not None:
        found.append(_whole(message.reply_to_message.message_id, "reply_to_message.message_id"))
    if message.message_thread_id is not None:
        found.append(_whole(message.message_thread_id, "message_thread_id"))
    return tuple(dict.fromkeys(found))


def _has_content(message: Message) -> bool:
    return any(
        (
            message.photo,
            message.document,
            message.sticker,
            message.voice,
            message.video,
            message.video_note,
            message.audio,
            message.animation,
            message.contact,
            message.location,
            message.caption,
        )
    )


def _text(value: object, what: str) -> str | None:
    if value is not None and not isinstance(value, str):
        raise MalformedUpdateError(f"{what} must be text")
    return value


def _whole(value: object, what: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise MalformedUpdateError(f"{what} must be a whole number")
    return value
