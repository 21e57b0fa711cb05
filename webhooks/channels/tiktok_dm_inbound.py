"""A verified TikTok Direct Message webhook, read into what leadbot understands: a prospect
arriving from an ad or a tiktok.me link (`im_referral_msg`), a prospect's message
(`im_receive_msg`), or an event leadbot acknowledges and ignores.

The envelope is `{event, client_key, user_openid, create_time, content}`, `content` being a
JSON *string*. TikTok adds fields without notice: unknown ones are ignored, and every field
read here is checked, so a surprise becomes a 400 naming the field, never a 500. Ids are read
as text whether TikTok writes them as strings or numbers (19-digit ids do not fit a float).

A tap on a QA_BUTTON_CARD button arrives as an ordinary text message whose body is the button's
title, with `reply_source_payload: {reply_source_msg_id, reply_source_unique_id}`: the card's
message id and the id leadbot gave the button (the option's value).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from webhooks.intake.common import IntakeError
from webhooks.intake.payload import load_json

# Events that carry something for a conversation; everything else is acknowledged.
REFERRAL = "im_referral_msg"
RECEIVE = "im_receive_msg"
# An id or a name: printable, no spaces, within what the database columns hold.
_ID = re.compile(r"[\x21-\x7e]{1,128}")
_EVENT = re.compile(r"[A-Za-z0-9_.-]{1,64}")
# What a tiktok.me link's `ref` may hold (shared/reference/links.md): a lead token or a tag.
_REF = re.compile(r"[A-Za-z0-9_=-]{1,128}")
_USERNAME = re.compile(r"[A-Za-z0-9_.]{1,64}")
NOT_MESSAGES = frozenset({"reaction"})  # a reaction to a message says nothing to answer


class MalformedEventError(ValueError):
    """Signed, but not an event leadbot can read; the message says why."""


@dataclass(frozen=True, slots=True)
class Ignored:
    """Acknowledged and left alone: an echo, a read receipt, a ping, another account's."""

    reason: str


@dataclass(frozen=True, slots=True)
class Arrival:
    """A prospect opened the conversation from an ad or a tiktok.me link."""

    conversation_id: str
    receipt: str  # the event carries no message id: a digest of its content stands in
    ref: str  # the link's ref (a lead token or a campaign tag); "" from an ad, or unusable
    username: str | None = None

    @property
    def profile(self) -> dict[str, str]:
        return _profile(self.username)


@dataclass(frozen=True, slots=True)
class Incoming:
    """A prospect's message: text, a tapped button, or media (text "")."""

    conversation_id: str
    message_id: str
    text: str
    media: bool = False
    reply_to: str | None = None  # a button tap: the message id of the card it sat on
    button: str | None = None  # ... and the button's id (the option's value)
    username: str | None = None

    @property
    def profile(self) -> dict[str, str]:
        return _profile(self.username)


Event = Ignored | Arrival | Incoming


def parse_event(body: bytes, business_id: str | None = None) -> Event:
    """What one webhook delivery means. `business_id` is the account leadbot answers for
    (tiktok.business_id); without it, the envelope's own account (`user_openid`) is taken."""
    envelope = _object(_load(body, "the body"), "the body")
    event = _required_text(envelope, "event", "")
    if not _EVENT.fullmatch(event):
        raise MalformedEventError("event is not an event name")
    if event not in (REFERRAL, RECEIVE):
        return Ignored(f"{event} events need no answer")
    account = _required_text(envelope, "user_openid", "")
    if not _ID.fullmatch(account):
        raise MalformedEventError("user_openid is not an id")
    _optional_text(envelope, "client_key", "")
    created = _optional_text(envelope, "create_time", "")
    if created is not None and not created.isdigit():
        raise MalformedEventError("create_time must be a whole number of seconds")
    if business_id and account != business_id:
        # One app's callback serves every account that authorised it.
        return Ignored("the event is for another business account")
    raw = envelope.get("content")
    if raw is None:
        raise MalformedEventError("content is missing")
    if isinstance(raw, str):
        content = _object(_load(raw.encode("utf-8", "surrogatepass"), "content"), "content")
    else:
        content = _object(raw, "content")  # an object rather than its JSON text: read it too
    conversation = _id(content, "conversation_id")
    sender = _object(content.get("from_user"), "content.from_user")
    if _id(sender, "id", "content.from_user.") == (business_id or account):
        return Ignored("the business's own message")
    username = _username(content)
    if event == REFERRAL:
        return Arrival(conversation, _referral_receipt(raw), _ref(content), username)
    return _message(content, conversation, username)


def _message(content: dict[str, object], conversation: str, username: str | None) -> Event:
    message_id = _id(content, "message_id")
    kind = _required_text(content, "type", "content.").lower()
    if kind in NOT_MESSAGES:
        return Ignored(f"a {kind} is not a message")
    reply_to, button = _reply_source(content)
    if kind != "text":
        # Images, videos, stickers, shared posts...: the script asks again for a typed answer.
        return Incoming(conversation, message_id, "", True, None, None, username)
    text = _object(content.get("text"), "content.text")
    body = _required_text(text, "body", "content.text.")
    return Incoming(conversation, message_id, body, False, reply_to, button, username)


def _reply_source(content: dict[str, object]) -> tuple[str | None, str | None]:
    """(card message id, button id) of a tapped button, or (None, None)."""
    value = content.get("reply_source_payload")
    if value is None:
        return None, None
    payload = _object(value, "content.reply_source_payload")
    path = "content.reply_source_payload."
    message = _optional_text(payload, "reply_source_msg_id", path)
    button = _optional_text(payload, "reply_source_unique_id", path)
    if not message or not button or not _ID.fullmatch(message) or len(button) > 128:
        return None, None  # not one of leadbot's buttons: read the message as typed text
    return message, button


def _ref(content: dict[str, object]) -> str:
    """The tiktok.me link's ref; "" for an ad (which names no lead) or a ref that cannot be
    one of leadbot's (anything else was made by hand and binds nothing)."""
    referral = _object(content.get("referral"), "content.referral")
    _optional_text(referral, "source", "content.referral.")
    link = referral.get("short_link")
    if link is None:
        return ""
    ref = _optional_text(_object(link, "content.referral.short_link"), "ref", "")
    return ref if ref is not None and _REF.fullmatch(ref) else ""


def _referral_receipt(raw: object) -> str:
    # TikTok redelivers the same content: its digest recognises a repeat.
    text = raw if isinstance(raw, str) else repr(raw)
    digest = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()
    return f"referral:{digest[:40]}"


def _username(content: dict[str, object]) -> str | None:
    name = _optional_text(content, "from", "content.")
    return name if name is not None and _USERNAME.fullmatch(name) else None


def _profile(username: str | None) -> dict[str, str]:
    return {"tiktok_username": username} if username else {}


def _load(body: bytes, what: str) -> object:
    try:
        return load_json(body)
    except IntakeError as error:
        raise MalformedEventError(f"{what}: {error.message}") from None


def _object(value: object, what: str) -> dict[str, object]:
    if value is None:
        raise MalformedEventError(f"{what} is missing")
    if not isinstance(value, dict):
        raise MalformedEventError(f"{what} must be an object")
    return value


def _optional_text(data: dict[str, object], key: str, path: str) -> str | None:
    value = data.get(key)
    if value is None:
        return None
    if not isinstance(value, str):  # numbers are already their literal text
        raise MalformedEventError(f"{path}{key} must be text")
    return value


def _required_text(data: dict[str, object], key: str, path: str) -> str:
    value = _optional_text(data, key, path)
    if value is None:
        raise MalformedEventError(f"{path}{key} is missing")
    return value


def _id(data: dict[str, object], key: str, path: str = "content.") -> str:
    value = _required_text(data, key, path)
    if not _ID.fullmatch(value):
        raise MalformedEventError(f"{path}{key} is not an id")
    return value
