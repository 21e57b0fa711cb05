"""Posts the outbox's `rep_card` and `rep_note` rows into the reps' Telegram group: a card in a
new forum topic of its lead (or as a message whose replies form the thread), a note into the
lead's thread. Each posted message is recorded, so that a rep's reply finds its conversation and
a row claimed again after a crash is not posted twice."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from telegram import (
    Bot,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    LinkPreviewOptions,
    Message,
    ReplyParameters,
)
from telegram.error import BadRequest, TelegramError

from bot.errors import DeliveryError
from bot.locks import KeyedLocks
from bot.records import OutboxItem
from storage.rep_threads import SqlRepThreads, Thread
from webhooks.channels.telegram_bot import delivery_error
from webhooks.channels.telegram_reps_card import TAKE_OVER
from webhooks.channels.telegram_reps_notify import REP_CARD

log = logging.getLogger(__name__)

NO_PREVIEW = LinkPreviewOptions(is_disabled=True)  # the console link needs no preview


class RepsGroupSender:
    """Implements bot.dispatcher.Sender for `rep_card` and `rep_note` rows."""

    def __init__(
        self,
        bot: Bot,
        threads: SqlRepThreads,
        *,
        topics: bool,
        clock: Callable[[], datetime],
    ) -> None:
        self._bot = bot
        self._threads = threads
        self._topics = topics
        self._clock = clock
        self._chats = KeyedLocks()

    async def send(self, item: OutboxItem) -> str:
        chat = _number(item.payload.get("chat"), "chat")
        # One post at a time into the group, in the order the rows were claimed: a lead's lines
        # keep their order, and two cards of one lead never open two topics.
        async with self._chats.hold(chat):
            already = await self._threads.posted(item.idempotency_key)
            if already is not None:
                return str(already)  # posted before its worker could record the outcome
            conversation = item.payload.get("conversation_id")
            if not isinstance(conversation, int):
                conversation = None
            if item.kind != REP_CARD:
                return await self._note(item, chat, conversation)
            if conversation is None:
                raise DeliveryError("a card without its conversation", permanent=True)
            return await self._card(item, chat, conversation)

    async def _card(self, item: OutboxItem, chat: int, conversation: int) -> str:
        payload = item.payload
        thread = await self._threads.thread(conversation, chat)
        if self._topics and (thread is None or thread.topic_id is None):
            thread = await self._open_topic(chat, conversation, payload, thread)
        markup = InlineKeyboardMarkup(
            [[InlineKeyboardButton("✋ Take over", callback_data=f"{TAKE_OVER}{conversation}")]]
        )
        topic = thread.topic_id if thread is not None else None
        # Without topics, a lead's later cards answer its first: one thread per lead.
        root = thread.root_message_id if thread is not None and topic is None else None
        sent = await self._post(chat, str(payload.get("text", "")), topic, root, markup)
        now = self._clock()
        await self._threads.record_message(
            chat, sent.message_id, conversation, item.idempotency_key, now
        )
        await self._threads.open_thread(
            conversation,
            chat,
            now,
            topic_id=topic,
            root_message_id=sent.message_id,
            mirrored_until=_whole(payload.get("seen_until")),
        )
        return str(sent.message_id)

    async def _open_topic(
        self, chat: int, conversation: int, payload: Mapping[str, Any], thread: Thread | None
    ) -> Thread | None:
        """A forum topic for the lead. A group without topics gets plain cards (and a log line
        saying why) rather than no card at all."""
        name = str(payload.get("topic_name") or f"Lead {conversation}")
        try:
            topic = await self._bot.create_forum_topic(chat_id=chat, name=name)
        except BadRequest as error:
            log.warning(
                "no forum topic for conversation %s (%s): is telegram.reps_topics right for "
                "this group, and may the bot manage topics? Posting the card without one",
                conversation,
                delivery_error(error).reason,
            )
            return thread
        except TelegramError as error:
            raise _group_error(error) from None
        return await self._threads.open_thread(
            conversation,
            chat,
            self._clock(),
            topic_id=topic.message_thread_id,
            mirrored_until=_whole(payload.get("seen_until")),
        )

    async def _note(self, item: OutboxItem, chat: int, conversation: int | None) -> str:
        payload = item.payload
        topic = _optional(payload.get("topic"))
        reply_to = _optional(payload.get("reply_to"))
        if conversation is not None and topic is None:
            thread = await self._threads.thread(conversation, chat)
            if thread is None or (thread.topic_id is None and thread.root_message_id is None):
                # Its card is on its way (rows of the group are not ordered): wait for it.
                raise DeliveryError("the lead's card is not posted yet")
            topic = thread.topic_id
            if reply_to is None and topic is None:
                reply_to = thread.root_message_id
        sent = await self._post(chat, str(payload.get("text", "")), topic, reply_to, None)
        if conversation is not None:
            await self._threads.record_message(
                chat, sent.message_id, conversation, item.idempotency_key, self._clock()
            )
        return str(sent.message_id)

    async def _post(
        self,
        chat: int,
        text: str,
        topic: int | None,
        reply_to: int | None,
        markup: InlineKeyboardMarkup | None,
    ) -> Message:
        reply = (
            ReplyParameters(reply_to, allow_sending_without_reply=True)
            if reply_to is not None
            else None
        )
        try:
            return await self._bot.send_message(
                chat_id=chat,
                text=text or "…",
                message_thread_id=topic,
                reply_parameters=reply,
                reply_markup=markup,
                link_preview_options=NO_PREVIEW,
            )
        except BadRequest as error:
            if topic is None:
                raise _group_error(error) from None
            # The topic was deleted or closed by someone: the group's General topic then.
            log.warning("could not post in topic %s: %s", topic, delivery_error(error).reason)
        except TelegramError as error:
            raise _group_error(error) from None
        try:
            return await self._bot.send_message(
                chat_id=chat, text=text or "…", reply_markup=markup, link_preview_options=NO_PREVIEW
            )
        except TelegramError as error:
            raise _group_error(error) from None


def _group_error(error: TelegramError) -> DeliveryError:
    """A failure in the group never means the prospect is unreachable: give up on the row
    (e.g. the bot was removed from the group), or retry it."""
    failure = delivery_error(error)
    if failure.unreachable:
        return DeliveryError(f"the reps' group refused: {failure.reason}", permanent=True)
    return failure


def _number(value: object, what: str) -> int:
    try:
        return int(str(value))
    except ValueError:
        raise DeliveryError(f"{what} {value!r} is not a Telegram id", permanent=True) from None


def _optional(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _whole(value: object) -> int:
    return _optional(value) or 0
