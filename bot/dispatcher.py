"""The outbox dispatcher: claim due work, hand it to a sender, record what happened."""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Protocol

from bot import windows
from bot.errors import DeliveryError
from bot.first_contact import FIRST_CONTACT
from bot.pacing import Pacer, PaceRule
from bot.ports import Storage, Transaction
from bot.records import OutboxItem, Window
from bot.suppression import address_of
from bot.wakeups import wake_or_timeout

log = logging.getLogger(__name__)


class Sender(Protocol):
    async def send(self, item: OutboxItem) -> str | None:
        """Deliver `item`; return the provider's id for it. Raise DeliveryError on failure."""


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Exponential backoff with jitter: 2 s, 4 s, 8 s... capped, for at most `max_attempts`."""

    first_delay: timedelta = timedelta(seconds=2)
    factor: float = 2.0
    max_delay: timedelta = timedelta(hours=1)
    max_attempts: int = 8
    jitter: float = 0.25  # each delay is scaled by a random factor in [1 - jitter, 1 + jitter]

    def delay(
        self, attempts: int, rng: random.Random, retry_after: float | None = None
    ) -> timedelta:
        if retry_after is not None:
            return timedelta(seconds=max(retry_after, 0.0))  # the provider said when
        base = self.first_delay.total_seconds() * self.factor ** max(attempts - 1, 0)
        capped = min(base, self.max_delay.total_seconds())
        return timedelta(seconds=capped * rng.uniform(1 - self.jitter, 1 + self.jitter))


class Dispatcher:
    """Several dispatchers (in one process or many) never claim the same row at once: claims
    are leases taken in a transaction (`FOR UPDATE SKIP LOCKED` on PostgreSQL), and only the
    first pending row of each conversation can be claimed, so a conversation's messages go out
    in the order they were written. A row whose worker died is claimed again when its lease runs
    out, and sent again with the same idempotency key, which the sender passes on so the provider
    can drop the repeat. Chats are served concurrently, each paced by its channel's rule."""

    def __init__(
        self,
        storage: Storage,
        senders: Mapping[str, Sender],
        clock: Callable[[], datetime],
        *,
        policy: RetryPolicy | None = None,
        rng: random.Random | None = None,
        batch: int = 50,
        lease: timedelta = timedelta(minutes=2),
        idle_wait: float = 1.0,
        pacing: Mapping[str, PaceRule] | None = None,
        window_templates: Mapping[str, str] | None = None,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._storage = storage
        self._senders = senders
        self._clock = clock
        self._policy = policy or RetryPolicy()
        self._rng = rng or random.Random()  # noqa: S311  (jitter, not secrets)
        self._batch = batch
        self._lease = lease
        self._idle_wait = idle_wait
        self._pacer = Pacer(pacing or {}, monotonic)
        # Per channel, the approved template sent in place of a message outside its window.
        self._window_templates = dict(window_templates or {})
        self._sleep = sleep
        self._wake = asyncio.Event()

    def wake(self) -> None:
        """New work was committed: stop waiting."""
        self._wake.set()

    async def run(self) -> None:
        """Dispatch until cancelled. Claiming goes on while earlier deliveries are under way
        (up to `batch` at once), so a reply written now never waits for the slowest send of an
        earlier batch. A delivery that ends wakes the loop when it may have freed its
        conversation's next message; the common one, a reply with nothing behind it, does not
        (at 100 turns/s that was a claim transaction per turn finding nothing), unless the batch
        was full: then work may be waiting for the room it leaves."""
        sending: set[asyncio.Task[bool]] = set()
        full = False  # the last pass could claim no more than the batch's room

        def delivered(task: asyncio.Task[bool]) -> None:
            sending.discard(task)
            if task.cancelled():
                return
            if (error := task.exception()) is not None:
                self._wake.set()
                log.error(
                    "delivering failed; the row is retried when its lease runs out: %r", error
                )
            elif task.result() or full:
                self._wake.set()

        try:
            while True:
                self._wake.clear()
                room = self._batch - len(sending)
                started: list[asyncio.Task[bool]] = []
                if room > 0:
                    try:
                        started = await self._start_due(room)
                    except Exception:  # the database went away for a moment: keep going
                        log.exception("dispatching failed; trying again shortly")
                for task in started:
                    sending.add(task)
                    task.add_done_callback(delivered)
                full = len(started) >= room
                if not started or not full:  # all that is due is under way: wait
                    await wake_or_timeout(self._wake, self._idle_wait)
        finally:
            for task in sending:
                task.cancel()
            await asyncio.gather(*sending, return_exceptions=True)

    async def _start_due(self, limit: int) -> list[asyncio.Task[bool]]:
        """Claim up to `limit` due items and start delivering each."""
        now = self._clock()
        claim = await self._storage.run(lambda tx: self._claim(tx, now, limit))
        return [asyncio.create_task(self._deliver(item, claim, now)) for item in claim.items]

    async def run_once(self) -> int:
        """Claim and deliver one batch of due items; return how many were claimed."""
        now = self._clock()
        claim = await self._storage.run(lambda tx: self._claim(tx, now, self._batch))
        await asyncio.gather(*(self._deliver(item, claim, now) for item in claim.items))
        return len(claim.items)

    def _claim(self, tx: Transaction, now: datetime, limit: int) -> _Claim:
        """Due items, with what the channels' rules need to know about them, read at once."""
        items = tx.outbox.claim_due(now, limit, self._lease)
        if not items:
            return _Claim([], {}, set(), set())
        windowed = [
            item.conversation_id
            for item in items
            if item.conversation_id is not None and _channel(item) in windows.RULES
        ]
        first_contacts = [
            lead_id
            for item in items
            if item.kind == FIRST_CONTACT
            and isinstance(lead_id := item.payload.get("lead_id"), int)
        ]
        return _Claim(
            items,
            tx.conversations.windows(windowed) if windowed else {},
            tx.suppressions.among([_address(item) for item in items]),
            tx.leads.chatting_among(first_contacts) if first_contacts else set(),
        )

    async def _deliver(self, item: OutboxItem, claim: _Claim, now: datetime) -> bool:
        """Deliver one claimed item and record what happened. True when that may have freed
        work to claim: the item left its conversation's queue, and more waits behind it."""
        channel = _channel(item)
        if _address(item) in claim.suppressed and not item.payload.get("opt_out_notice"):
            reason = "not sent: the prospect opted out (on the suppression list)"
            await self._storage.run(lambda tx: tx.outbox.mark_failed(item, reason, now))
            return True
        if item.kind == FIRST_CONTACT and item.payload.get("lead_id") in claim.chatting:
            # A first contact waiting out quiet hours: the prospect wrote meanwhile.
            reason = "not sent: the prospect was already chatting"
            await self._storage.run(lambda tx: tx.outbox.skip(item, reason, now))
            return True
        window = claim.windows.get(item.conversation_id or 0)
        decision = windows.verdict(
            channel, item.payload, window, now, self._window_templates.get(channel)
        )
        if isinstance(decision, windows.Hold):
            log.info("outbox %s held: %s", item.id, decision.reason)
            await self._storage.run(lambda tx: tx.outbox.hold(item, decision.reason, now))
            return True
        if isinstance(decision, windows.Skip):
            log.info("outbox %s skipped: %s", item.id, decision.reason)
            await self._storage.run(lambda tx: tx.outbox.skip(item, decision.reason, now))
            return True
        if decision.payload is not item.payload:
            item = replace(item, payload=decision.payload)
        wait = self._pacer.reserve(channel, str(item.payload.get("chat", "")))
        if wait > 0:
            await self._sleep(wait)
        provider_id: str | None = None
        failure: DeliveryError | None = None
        sender = self._senders.get(item.kind)
        if sender is None:
            failure = DeliveryError(f"no sender for {item.kind!r}", permanent=True)
        else:
            try:
                provider_id = await sender.send(item)
            except DeliveryError as error:
                failure = error
            except Exception as error:  # a bug in a sender must not stop every other delivery
                log.exception("sender for %s raised unexpectedly", item.kind)
                failure = DeliveryError(f"unexpected {type(error).__name__}")
        if failure is None:
            sent_at = self._clock()
            return await self._storage.run(
                lambda tx: self._sent(tx, item, channel, provider_id, sent_at)
            )
        record, freed = self._failed(item, channel, failure)
        await self._storage.run(record)
        return freed

    def _failed(
        self, item: OutboxItem, channel: str, failure: DeliveryError
    ) -> tuple[Callable[[Transaction], None], bool]:
        """The transaction recording a failed send, and whether it frees the item's place at
        the head of its conversation's queue (all but a retry, which keeps it)."""
        now = self._clock()
        reason = failure.reason
        if failure.held:
            return lambda tx: tx.outbox.hold(item, reason, now), True
        if failure.unreachable and (failure.suppress or item.conversation_id is not None):
            conversation_id = item.conversation_id

            def give_up(tx: Transaction) -> None:
                tx.outbox.mark_failed(item, reason, now)
                if failure.suppress:
                    tx.suppressions.add(_address(item), channel, reason, now)
                if conversation_id is not None:
                    tx.outbox.fail_pending(conversation_id, reason, now)
                    tx.conversations.mark_unreachable(conversation_id, now)
                    tx.timers.cancel_all(conversation_id)

            log.info("outbox %s: the prospect is unreachable: %s", item.id, reason)
            return give_up, True
        if failure.permanent or item.attempts >= self._policy.max_attempts:
            log.warning("outbox %s failed for good: %s", item.id, reason)
            return lambda tx: tx.outbox.mark_failed(item, reason, now), True
        if failure.retry_after is not None:
            self._pacer.pause(channel, failure.retry_after)  # the limit is the channel's, not ours
        due = now + self._policy.delay(item.attempts, self._rng, failure.retry_after)
        return lambda tx: tx.outbox.retry_later(item, due, reason), False

    @staticmethod
    def _sent(
        tx: Transaction, item: OutboxItem, channel: str, provider_id: str | None, now: datetime
    ) -> bool:
        """Record a sent item; True when its conversation has more waiting behind it."""
        tx.outbox.mark_sent(item, provider_id, now)
        rule = windows.RULES.get(channel)
        if rule is not None and rule.budget is not None and item.conversation_id is not None:
            tx.conversations.count_sent(item.conversation_id)
        lead_id = item.payload.get("lead_id")
        if item.kind == FIRST_CONTACT and isinstance(lead_id, int):
            tx.leads.mark_contacted(lead_id, now)
        return item.conversation_id is not None and tx.outbox.has_pending(item.conversation_id)


@dataclass(frozen=True, slots=True)
class _Claim:
    items: list[OutboxItem]
    windows: dict[int, Window]
    suppressed: set[str]
    chatting: set[int]  # leads of first contacts that are already in a conversation


def _channel(item: OutboxItem) -> str:
    return str(item.payload.get("channel", ""))


def _address(item: OutboxItem) -> str:
    return address_of(_channel(item), str(item.payload.get("chat", "")))
