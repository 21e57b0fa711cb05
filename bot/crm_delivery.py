"""The CRM delivery worker: claim due deliveries, post them signed, record what happened.

It runs beside the outbox dispatcher, not inside it: a CRM that answers slowly or not at all
holds up only its own deliveries, never a prospect's chat message."""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from bot.crm_body import wire_body
from bot.crm_records import Delivery
from bot.crm_routes import CrmRoutes
from bot.crm_signature import (
    DELIVERY_HEADER,
    EVENT_HEADER,
    SEQUENCE_HEADER,
    SIGNATURE_HEADER,
    signature,
)
from bot.ports import Storage, Transaction
from bot.wakeups import wake_or_timeout

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class PostResult:
    status: int | None  # None: no answer (a timeout, a refused or broken connection)
    error: str | None = None  # what went wrong, for the dead-letter list
    retry_after: float | None = None  # seconds, when a 429 or 503 said so


class Poster(Protocol):
    async def post(self, url: str, body: bytes, headers: Mapping[str, str]) -> PostResult:
        """POST `body`; never raise for the receiver's failures, report them."""


@dataclass(frozen=True, slots=True)
class CrmRetryPolicy:
    """Exponential backoff with jitter (10 s, 20 s, 40 s... capped at an hour) until
    `give_up_after` has passed since the delivery was queued."""

    first_delay: timedelta = timedelta(seconds=10)
    factor: float = 2.0
    max_delay: timedelta = timedelta(hours=1)
    jitter: float = 0.25
    give_up_after: timedelta = timedelta(hours=24)

    def delay(self, attempts: int, rng: random.Random, retry_after: float | None) -> timedelta:
        if retry_after is not None:
            return timedelta(seconds=min(max(retry_after, 0.0), self.max_delay.total_seconds()))
        base = self.first_delay.total_seconds() * self.factor ** max(attempts - 1, 0)
        capped = min(base, self.max_delay.total_seconds())
        return timedelta(seconds=capped * rng.uniform(1 - self.jitter, 1 + self.jitter))


def verdict(result: PostResult) -> str:
    """delivered, retry, gone (410: the receiver unsubscribed) or failed (for good)."""
    status = result.status
    if status is None or status >= 500 or status in (408, 429):
        return "retry"
    if 200 <= status < 300:
        return "delivered"
    if status == 410:
        return "gone"
    return "failed"  # other 4xx, and redirects: sending again would get the same answer


class CrmDeliverer:
    """Several workers (in one process or many) never send one delivery at once: claims are
    leases taken in a transaction (`FOR UPDATE SKIP LOCKED` on PostgreSQL), longer than a post
    can take. A delivery whose worker died is claimed again when its lease runs out and sent
    again with the same delivery id, which receivers use to drop the repeat."""

    def __init__(
        self,
        storage: Storage,
        poster: Poster,
        routes: CrmRoutes,
        clock: Callable[[], datetime],
        *,
        secrets: Mapping[str, str] | None = None,
        policy: CrmRetryPolicy | None = None,
        rng: random.Random | None = None,
        batch: int = 20,
        lease: timedelta = timedelta(minutes=2),
        idle_wait: float = 1.0,
        refresh_every: float = 5.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._storage = storage
        self._poster = poster
        self._routes = routes
        self._clock = clock
        self._secrets = dict(secrets or {})  # settings webhooks' secrets, by name
        self._policy = policy or CrmRetryPolicy()
        self._rng = rng or random.Random()  # noqa: S311  (jitter, not secrets)
        self._batch = batch
        self._lease = lease
        self._idle_wait = idle_wait
        self._refresh_every = refresh_every
        self._monotonic = monotonic
        self._refreshed_at: float | None = None
        self._wake = asyncio.Event()

    def wake(self) -> None:
        self._wake.set()

    async def reload(self) -> None:
        """Read the active subscriptions again (a hook was made or deleted)."""
        found = await self._storage.run(lambda tx: tx.crm.subscriptions())
        self._routes.replace(found)
        self._refreshed_at = self._monotonic()

    async def run(self) -> None:
        """Deliver until cancelled."""
        while True:
            self._wake.clear()
            try:
                stale = self._refreshed_at is None or (
                    self._monotonic() - self._refreshed_at >= self._refresh_every
                )
                if stale:
                    await self.reload()
                claimed = await self.run_once()
            except Exception:  # the database went away for a moment: keep going, never die
                log.exception("CRM delivery failed; trying again shortly")
                claimed = 0
            if claimed == 0:
                await wake_or_timeout(self._wake, self._idle_wait)

    async def run_once(self) -> int:
        """Claim and post one batch of due deliveries; return how many were claimed."""
        now = self._clock()
        claimed = await self._storage.run(
            lambda tx: tx.crm.claim_due(now, self._batch, self._lease)
        )
        await asyncio.gather(*(self._deliver(delivery) for delivery in claimed))
        return len(claimed)

    async def _deliver(self, delivery: Delivery) -> None:
        secret = delivery.secret or self._secrets.get(delivery.subscription_name or "")
        if secret is None:
            now = self._clock()
            missing = "no secret for this subscription in settings"
            await self._storage.run(lambda tx: tx.crm.failed(delivery, None, missing, now))
            return
        body = wire_body(delivery.body, delivery.delivery_id, delivery.sequence)
        headers = {
            "Content-Type": "application/json",
            EVENT_HEADER: delivery.event,
            DELIVERY_HEADER: delivery.delivery_id,
            SEQUENCE_HEADER: str(delivery.sequence),
            SIGNATURE_HEADER: signature(secret, int(self._clock().timestamp()), body),
        }
        try:
            result = await self._poster.post(delivery.url, body, headers)
        except Exception as error:  # a bug in a poster must not stop every other delivery
            log.exception("CRM poster raised unexpectedly")
            result = PostResult(None, f"unexpected {type(error).__name__}")
        await self._storage.run(self._record(delivery, result))
        if verdict(result) == "gone":
            await self.reload()  # this worker stops recording events for it at once

    def _record(self, delivery: Delivery, result: PostResult) -> Callable[[Transaction], None]:
        now = self._clock()
        status = result.status
        error = result.error or (f"HTTP {status}" if status is not None else "no answer")
        where = {"delivery": delivery.delivery_id, "subscription_id": delivery.subscription_id}
        match verdict(result):
            case "delivered":
                return lambda tx: tx.crm.delivered(delivery, status or 200, now)
            case "gone":
                reason = f"the receiver answered 410 Gone to delivery {delivery.delivery_id}"
                log.warning("CRM subscription disabled: 410 Gone", extra=where)

                def gone(tx: Transaction) -> None:
                    tx.crm.failed(delivery, status, "410 Gone: subscription disabled", now)
                    tx.crm.disable(delivery.subscription_id, reason, now)

                return gone
            case "failed":
                log.warning("CRM delivery failed for good: %s", error, extra=where)
                return lambda tx: tx.crm.failed(delivery, status, error, now)
        due = now + self._policy.delay(delivery.attempts, self._rng, result.retry_after)
        if due - delivery.queued_at > self._policy.give_up_after:
            gave_up = f"gave up after {self._policy.give_up_after}: {error}"
            log.warning("CRM delivery gave up: %s", error, extra=where)
            return lambda tx: tx.crm.failed(delivery, status, gave_up, now)
        return lambda tx: tx.crm.retry_later(delivery, due, status, error)
