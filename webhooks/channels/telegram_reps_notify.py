"""Tells the reps' Telegram group what needs a person: a card when a prospect asks for one or a
lead qualifies, and, while people hold a conversation that has a thread there, the prospect's
new lines. All of it is written to the outbox (kinds `rep_card` and `rep_note`) and sent by the
dispatcher, so it is paced, and retried when Telegram fails, like any message.

`changed` is the conversation service's on_change hook: it runs after a turn's commit, and
queues in a task of its own so that the turn's caller never waits for it."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from bot.catalog import ScriptCatalog
from bot.compiled import CompiledScript
from bot.effects import Complete, Effect, HandOff
from bot.errors import UnknownScriptError
from bot.scoring import score_answers
from bot.state import WITH_PEOPLE
from storage.rep_threads import CardFacts, Line, OutboxEntry, SqlRepThreads
from webhooks.channels.telegram_reps_card import (
    CardEvent,
    card_text,
    lead_name,
    line_text,
    topic_name,
)

log = logging.getLogger(__name__)

REP_CARD = "rep_card"
REP_NOTE = "rep_note"
# The outbox rows' channel: the group is paced on its own (Telegram allows about 20 messages a
# minute into a group), and a 429 there pauses the reps' group, not the prospects' chats.
CHANNEL = "telegram_reps"
CLOSE_WAIT = 5.0  # seconds to let queued work finish at shutdown


def card_event(effects: Sequence[Effect]) -> CardEvent | None:
    """What in a turn's effects calls for a card, if anything."""
    handoff = tuple(effect.reason for effect in effects if isinstance(effect, HandOff))
    done = next((e for e in effects if isinstance(e, Complete) and e.qualified), None)
    if done is not None:
        return CardEvent(handoff, True, done.score, done.reasons)
    return CardEvent(handoff) if handoff else None


def note_payload(
    chat_id: int,
    text: str,
    *,
    conversation_id: int | None = None,
    reply_to: int | None = None,
    topic: int | None = None,
) -> dict[str, Any]:
    """A message into the group: in the conversation's thread when it has one, as a reply to
    `reply_to` when given (e.g. the rep's message it answers)."""
    return {
        "channel": CHANNEL,
        "chat": str(chat_id),
        "conversation_id": conversation_id,
        "text": text,
        "reply_to": reply_to,
        "topic": topic,
    }


class RepsNotifier:
    def __init__(
        self,
        threads: SqlRepThreads,
        catalog: ScriptCatalog,
        *,
        chat_id: int,
        base_url: str,
        clock: Callable[[], datetime],
        wake: Callable[[], None],
    ) -> None:
        self.threads = threads
        self.chat_id = chat_id
        self._catalog = catalog
        self._base_url = base_url
        self._clock = clock
        self._wake = wake
        self._tasks: set[asyncio.Task[None]] = set()

    def console_url(self, conversation_id: int) -> str:
        return f"{self._base_url}/console/conversations/{conversation_id}"

    def changed(self, conversation_id: int, effects: tuple[Effect, ...]) -> None:
        """The service's on_change hook (called after commit, on the event loop)."""
        task = asyncio.create_task(self._changed(conversation_id, effects))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def close(self) -> None:
        """Let queued work finish (briefly), then stop."""
        if not self._tasks:
            return
        _, late = await asyncio.wait(set(self._tasks), timeout=CLOSE_WAIT)
        for task in late:
            task.cancel()
        await asyncio.gather(*late, return_exceptions=True)

    async def _changed(self, conversation_id: int, effects: tuple[Effect, ...]) -> None:
        try:
            queued = await self.notify(conversation_id, effects)
        except Exception:  # the turn is committed whatever happens here; say so, and go on
            log.exception("could not queue for the reps' group (conversation %s)", conversation_id)
            return
        if queued:
            self._wake()

    async def notify(self, conversation_id: int, effects: Sequence[Effect]) -> int:
        """Queue what this change calls for; how many outbox rows were added."""
        queued = 0
        event = card_event(effects)
        facts: CardFacts | None = None
        if event is not None:
            facts = await self.threads.card_facts(conversation_id)
            if facts is not None:
                queued += await self._queue_card(facts, event)
        statuses = [status.value for status in WITH_PEOPLE]
        lines = await self.threads.unseen_lines(conversation_id, self.chat_id, statuses)
        if lines:
            facts = facts or await self.threads.card_facts(conversation_id)
            entries = [self._line_entry(conversation_id, line, facts) for line in lines]
            queued += await self.threads.queue_lines(
                entries, conversation_id, self.chat_id, lines[-1].id, self._clock()
            )
        return queued

    async def note(
        self,
        key: str,
        text: str,
        *,
        conversation_id: int | None = None,
        reply_to: int | None = None,
        topic: int | None = None,
    ) -> None:
        """Queue a message to the group (an answer to a rep), and wake the dispatcher."""
        payload = note_payload(
            self.chat_id, text, conversation_id=conversation_id, reply_to=reply_to, topic=topic
        )
        if await self.threads.queue([OutboxEntry(REP_NOTE, key, payload)], self._clock()):
            self._wake()

    async def _queue_card(self, facts: CardFacts, event: CardEvent) -> int:
        script = self._script(facts)
        so_far = None
        if event.score is None and script is not None:
            score = score_answers(
                script, {"lead": facts.state.get("lead") or {}, "answers": _answers(facts)}
            )
            so_far = (score.total, score.reasons)
        text = card_text(facts, event, script, self.console_url(facts.conversation_id), so_far)
        why = ("q" if event.qualified else "") + ("h" if event.handoff else "")
        key = f"rep-card-{self.chat_id}-{facts.conversation_id}-{facts.last_line_id}-{why}"
        payload = {
            "channel": CHANNEL,
            "chat": str(self.chat_id),
            "conversation_id": facts.conversation_id,
            "text": text,
            "topic_name": topic_name(facts),
            "seen_until": facts.last_line_id,
        }
        entry = OutboxEntry(REP_CARD, key, payload)
        added = await self.threads.queue_card(
            entry, facts.conversation_id, self.chat_id, facts.last_line_id, self._clock()
        )
        return int(added)

    def _line_entry(self, conversation_id: int, line: Line, facts: CardFacts | None) -> OutboxEntry:
        name = lead_name(facts) if facts is not None else "Prospect"
        region = None
        if facts is not None and (script := self._script(facts)) is not None:
            region = script.spec.region
        payload = note_payload(
            self.chat_id, line_text(name, line.text, region), conversation_id=conversation_id
        )
        return OutboxEntry(REP_NOTE, f"rep-line-{self.chat_id}-{line.id}", payload)

    def _script(self, facts: CardFacts) -> CompiledScript | None:
        """The conversation's script (its current version: labels and scoring rarely move)."""
        try:
            return self._catalog.current(facts.script_id).script
        except UnknownScriptError:
            return None


def _answers(facts: CardFacts) -> dict[str, Any]:
    answers = facts.state.get("answers")
    return dict(answers) if isinstance(answers, dict) else {}
