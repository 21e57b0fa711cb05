"""The retention sweep: erase the leads past their keeping time, one worker at a time."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import datetime, timedelta

from aiohttp import web

from bot.privacy import RetentionPolicy
from storage.db import Database
from storage.privacy import SqlPrivacy
from storage.retention import expired_leads, take_lease
from webhooks.keys import CLOCK, DATABASE, SETTINGS

log = logging.getLogger("leadbot.privacy")

LEASE = "retention"
ACTOR = "retention"  # the audit log's actor for what the sweep erases
BATCH = 100


def worker_name() -> str:
    """Who holds the lease, in the database: this process, among the workers."""
    return f"{socket.gethostname()[:40]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class RetentionSweep:
    def __init__(
        self,
        database: Database,
        policy: RetentionPolicy,
        clock: Callable[[], datetime],
        *,
        every: timedelta,
        holder: str,
    ) -> None:
        self._database = database
        self._privacy = SqlPrivacy(database)
        self._policy = policy
        self._clock = clock
        self._every = every
        self._holder = holder

    async def run_once(self) -> int:
        """One sweep, if no other worker holds this round: the number of leads erased."""
        now = self._clock()
        # The lease lasts until the next round: another worker takes over if this one stops.
        if not await take_lease(self._database, LEASE, self._holder, now, self._every):
            return 0
        disqualified_before, changed_before = self._policy.cutoffs(now)
        erased = 0
        while True:
            due = await expired_leads(
                self._database,
                disqualified_before=disqualified_before,
                changed_before=changed_before,
                limit=BATCH,
            )
            for lead_id in due:  # one transaction each: a long sweep blocks no turn for long
                await self._privacy.erase(lead_id, actor=ACTOR, now=self._clock())
            erased += len(due)
            if len(due) < BATCH:
                return erased

    async def run(self) -> None:
        while True:
            try:
                erased = await self.run_once()
            except Exception:  # a database hiccup: the next round tries again
                log.exception("retention: the sweep failed")
            else:
                if erased:
                    log.info("retention: %d lead(s) erased", erased)
            await asyncio.sleep(self._every.total_seconds())


async def retention_context(app: web.Application) -> AsyncIterator[None]:
    """Start the sweep with the app when privacy settings ask for one."""
    settings = app[SETTINGS].privacy
    policy = RetentionPolicy(settings.erase_disqualified_after, settings.erase_all_after)
    if not policy.active:
        yield
        return
    sweep = RetentionSweep(
        app[DATABASE],
        policy,
        app[CLOCK],  # the app's clock: tests move it
        every=settings.sweep_every,
        holder=worker_name(),
    )
    task = asyncio.create_task(sweep.run(), name="leadbot-retention")
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
