"""Fires due timers into their conversations: reminders and expiry after silence, and the wait
for a rep (a prospect who asked for a person and got nobody in time hears from the bot again).

The timers table is the durable jobs table: a timer lives in the database from the turn that
asked for it until it fires, so jobs survive restarts, and one that came due while the server
was down fires once at start. Timers are claimed under a lease (`FOR UPDATE SKIP LOCKED` on
PostgreSQL): several workers never fire one twice at once, and one whose worker died is claimed
again when the lease runs out. The turn it causes carries a receipt naming the timer, so a
second firing changes nothing; a timer the prospect overtook (they wrote, the engine moved its
`timer_seq` on) fires into nothing.

A reminder never reaches anyone during quiet hours in their time zone: one that comes due then
is put off, in the same claim, to when they end (the expiry is not a message, and fires on time).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta

from bot.first_contact import FirstContactPolicy
from bot.inbound import SilenceTimerFired, TimerKind
from bot.ports import Storage, Transaction
from bot.records import DueTimer, Receipt
from bot.service import ConversationService

log = logging.getLogger(__name__)

FIRED_NOW = tuple(TimerKind)


class TimerRunner:
    def __init__(
        self,
        storage: Storage,
        conversations: ConversationService,
        clock: Callable[[], datetime],
        *,
        kinds: Sequence[TimerKind] = FIRED_NOW,
        quiet: FirstContactPolicy | None = None,
        batch: int = 50,
        lease: timedelta = timedelta(minutes=2),
        idle_wait: float = 1.0,
    ) -> None:
        self._storage = storage
        self._conversations = conversations
        self._clock = clock
        self._kinds = [kind.value for kind in kinds]
        # Quiet hours and the time zone rules of first contact hold for reminders too: both
        # write to someone who did not just write to us. None: no quiet hours (tests).
        self._quiet = quiet
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
        """Claim one batch of due timers and fire those not put off; return how many were
        claimed (put off or fired)."""
        now = self._clock()
        claimed: list[int] = []

        def claim(tx: Transaction) -> list[DueTimer]:
            due = tx.timers.claim_due(now, self._batch, self._lease, self._kinds)
            claimed.append(len(due))
            return [timer for timer in due if not self._put_off(tx, timer, now)]

        for timer in await self._storage.run(claim):
            await self._fire(timer)
        return claimed[-1] if claimed else 0

    def _put_off(self, tx: Transaction, timer: DueTimer, now: datetime) -> bool:
        """Defer a reminder that came due in the lead's quiet hours to when they end."""
        if self._quiet is None or timer.kind != TimerKind.REMINDER:
            return False
        zones = self._quiet.zones_for(timer.phone or "", timer.timezone or "UTC")
        due = self._quiet.due_at(now, zones)
        if due <= now:
            return False
        log.info("reminder %s put off to %s: quiet hours", timer.id, due.isoformat())
        tx.timers.defer(timer.id, due)
        return True

    async def _fire(self, timer: DueTimer) -> None:
        event = SilenceTimerFired(TimerKind(timer.kind), timer.seq)
        # Named by what it is, not by its row: SQLite hands a deleted row's id to the next
        # timer, and each (kind, seq) of a conversation is scheduled once.
        receipt = Receipt("timer", f"{timer.conversation_id}:{timer.kind}:{timer.seq}")
        try:
            await self._conversations.handle(timer.conversation_id, event, receipt)
        except Exception:  # one broken conversation must not stop the others
            log.exception("timer %s of conversation %s failed", timer.id, timer.conversation_id)
            return
        await self._storage.run(lambda tx: tx.timers.done(timer))
