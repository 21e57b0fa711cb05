"""Posts the outbox's `rep_card` and `rep_note` rows into the reps' Telegram group: a card in a
new forum topic of its lead (or as a message whose replies form the thread), a note into the
lead's thread. A card says what is true when it is posted (who holds the lead, its answers), so
it is composed here, not when queued. Each posted message is recorded, so that a rep's reply
finds its conversation and a row claimed again after a crash is not posted twice."""

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

from bot.catalog import ScriptCatalog
from bot.compiled import CompiledScript
from bot.errors import DeliveryError, UnknownScriptError
from bot.locks import KeyedLocks
from bot.records import OutboxItem
from storage.rep_threads import CardFacts, SqlRepThreads, Thread
from webhooks.channels.telegram_bot import delivery_error
from webhooks.channels.telegram_reps_card import (
    TAKE_OVER,
    CardEvent,
    compose_card,
    lead_name,
    line_text,
    topic_name,
)
from webhooks.channels.telegram_reps_watch import REP_CARD

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
        catalog: ScriptCatalog,
        base_url: str,
    ) -> None:
        self._bot = bot
        self._threads = threads
        self._topics = topics
        self._clock = clock
        self._catalog = catalog
        self._base_url = base_url
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
            if item.kind == REP_CARD:
                if conversation is None:
                    raise DeliveryError("a card without its conversation", permanent=True)
                return await self._card(item, chat, conversation, _event(item.payload))
            if conversation is not None and item.payload.get("card_if_new"):
                # e.g. a rep took over from the console a lead the group has not seen yet
                thread = await self._threads.thread(conversation, chat)
                if thread is None or (thread.topic_id is None and thread.root_message_id is None):
                    headline = str(item.payload.get("text") or "")
                    return await self._card(item, chat, conversation, CardEvent(), headline)
            return await self._note(item, chat, conversation)

    async def _card(
        self,
        item: OutboxItem,
        chat: int,
        conversation: int,
        event: CardEvent,
        headline: str | None = None,
    ) -> str:
        facts = await self._threads.card_facts(conversation)
        if facts is None:
            raise DeliveryError("the lead is no longer there", permanent=True)
        script = self._script(facts)
        text = compose_card(facts, event, script, self._console_url(conversation))
        if headline:
            text = f"{headline}\n\n{text}"
        thread = await self._threads.thread(conversation, chat)
        if self._topics and (thread is None or thread.topic_id is None):
            thread = await self._open_topic(chat, conversation, topic_name(facts), thread)
        markup = InlineKeyboardMarkup(
            [[InlineKeyboardButton("✋ Take over", callback_data=f"{TAKE_OVER}{conversation}")]]
        )
        topic = thread.topic_id if thread is not None else None
        # Without topics, a lead's later cards answer its first: one thread per lead.
        root = thread.root_message_id if thread is not None and topic is None else None
        sent = await self._post(chat, text, topic, root, markup)
        now = self._clock()
        await self._threads.record_message(
            chat, sent.message_id, conversation, item.idempotency_key, now
        )
        await self._threads.open_thread(
            conversation, chat, now, topic_id=topic, root_message_id=sent.message_id
        )
        return str(sent.message_id)

    async def _open_topic(
        self, chat: int, conversation: int, name: str, thread: Thread | None
    ) -> Thread | None:
        """A forum topic for the lead. A group without topics gets plain cards (and a log line
        saying why) rather than no card at all."""
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
            conversation, chat, self._clock(), topic_id=topic.message_thread_id
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
        text = str(payload.get("text") or "")
        line = payload.get("line")
        if isinstance(line, str) and conversation is not None:
            text = await self._line(conversation, line)
        sent = await self._post(chat, text, topic, reply_to, None)
        if conversation is not None:
            await self._threads.record_message(
                chat, sent.message_id, conversation, item.idempotency_key, self._clock()
            )
        return str(sent.message_id)

    async def _line(self, conversation: int, line: str) -> str:
        """A prospect's line as the thread shows it: signed with their name, numbers masked."""
        facts = await self._threads.card_facts(conversation)
        if facts is None:
            return line_text("Prospect", line, None)
        script = self._script(facts)
        return line_text(lead_name(facts), line, script.spec.region if script else None)

    def _script(self, facts: CardFacts) -> CompiledScript | None:
        """The conversation's script (its current version: labels and scoring rarely move)."""
        try:
            return self._catalog.current(facts.script_id).script
        except UnknownScriptError:
            return None

    def _console_url(self, conversation: int) -> str:
        return f"{self._base_url}/console/conversations/{conversation}"

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


def _event(payload: Mapping[str, Any]) -> CardEvent:
    """The card's reason, as the turn that queued it wrote it."""
    event = payload.get("event")
    if not isinstance(event, Mapping):
        return CardEvent()
    score = event.get("score")
    return CardEvent(
        handoff=tuple(str(reason) for reason in event.get("handoff") or ()),
        qualified=bool(event.get("qualified")),
        score=score if isinstance(score, int) else None,
        reasons=tuple(str(reason) for reason in event.get("reasons") or ()),
    )
