"""Fires due timers into their conversations: today the wait for a rep (a prospect who asked
for a person and got nobody in time hears from the bot again). Reminders and expiry are kept in
the same table and join when follow-ups bring quiet hours and channel windows to them.

Timers are claimed under a lease (`FOR UPDATE SKIP LOCKED` on PostgreSQL): several workers never
fire one twice at once, and one whose worker died is claimed again when the lease runs out. The
turn it causes carries the timer's id as its receipt, so a second firing changes nothing.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta

from bot.inbound import SilenceTimerFired, TimerKind
from bot.ports import Storage
from bot.records import DueTimer, Receipt
from bot.service import ConversationService

log = logging.getLogger(__name__)

FIRED_NOW = (TimerKind.HANDOFF,)


class TimerRunner:
    def __init__(
        self,
        storage: Storage,
        conversations: ConversationService,
        clock: Callable[[], datetime],
        *,
        kinds: Sequence[TimerKind] = FIRED_NOW,
        batch: int = 50,
        lease: timedelta = timedelta(minutes=2),
        idle_wait: float = 1.0,
    ) -> None:
        self._storage = storage
        self._conversations = conversations
        self._clock = clock
        self._kinds = [kind.value for kind in kinds]
        self._batch = batch
        self._lease = lease
        self._idle_wait = idle_wait

    async def run(self) -> None:
        """Fire due timers until cancelled; a database hiccup is logged, never fatal."""
        while True:
            try:
                fired = await self.run_once()
            except Exception:
                log.exception("firing timers failed; trying again shortly")
                fired = 0
            if fired == 0:
                await asyncio.sleep(self._idle_wait)

    async def run_once(self) -> int:
        now = self._clock()
        due = await self._storage.run(
            lambda tx: tx.timers.claim_due(now, self._batch, self._lease, self._kinds)
        )
        for timer in due:
            await self._fire(timer)
        return len(due)

    async def _fire(self, timer: DueTimer) -> None:
        event = SilenceTimerFired(TimerKind(timer.kind), timer.seq)
        receipt = Receipt("timer", str(timer.id))
        try:
            await self._conversations.handle(timer.conversation_id, event, receipt)
        except Exception:  # one broken conversation must not stop the others
            log.exception("timer %s of conversation %s failed", timer.id, timer.conversation_id)
            return
        await self._storage.run(lambda tx: tx.timers.done(timer.id))
