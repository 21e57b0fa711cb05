"""Retention: leads past their keeping time are erased by a sweep the app starts, one worker
at a time; the clock is the test's."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from pytest_aiohttp import AiohttpClient
from sqlalchemy import select

from bot.privacy import RetentionPolicy
from bot.records import NewLead
from storage.db import Database, connect
from storage.migrate import upgrade
from storage.tables import LeadRow
from storage.transactions import SqlStorage
from tests.conftest import NOW, FakeClock
from tests.console_support import database_url, settings_for
from tests.privacy_support import ZELDA, dump, found_in, hold
from webhooks.app import create_app
from webhooks.keys import CLOCK
from webhooks.retention import RetentionSweep

LEADS = LeadRow.__table__  # type: ignore[attr-defined]
HOUR = timedelta(hours=1)
POLICY = RetentionPolicy(disqualified_after=timedelta(days=30), all_after=timedelta(days=365))


@pytest.fixture
async def storage(database: Database) -> AsyncIterator[SqlStorage]:
    storage = SqlStorage(database)
    yield storage
    await storage.close()


async def _lead(storage: SqlStorage, name: str, at: datetime, qualified: bool | None = None) -> int:
    """A lead submitted at `at`; with `qualified`, its conversation ended then so."""

    def work(tx: Any) -> int:
        lead, _ = tx.leads.add(
            NewLead(
                source="form",
                external_id=name,
                script_id="s",
                submitted_at=at,
                fields={"first_name": name},
            ),
            f"R{name.upper()}",
            at,
        )
        if qualified is not None:
            outcome = ("qualified" if qualified else "not_a_fit", 10, [], qualified)
            tx.leads.update_progress(lead.id, answers={}, now=at, outcome=outcome)
        return int(lead.id)

    return await storage.run(work)


async def _erased(database: Database) -> set[int]:
    async with database.reading() as connection:
        query = select(LEADS.c.id).where(LEADS.c.erased_at.is_not(None))
        return set((await connection.execute(query)).scalars())


def _sweep(database: Database, clock: FakeClock, holder: str = "worker-a") -> RetentionSweep:
    return RetentionSweep(database, POLICY, clock, every=HOUR, holder=holder)


async def test_disqualified_leads_go_after_30_days_and_every_lead_a_year_after_its_last_change(
    database: Database, storage: SqlStorage
) -> None:
    turned_down = await _lead(storage, "DOWN", NOW, qualified=False)
    qualified = await _lead(storage, "UP", NOW, qualified=True)
    recent = await _lead(storage, "LATE", NOW + timedelta(days=5), qualified=False)
    talking = await _lead(storage, "OPEN", NOW)
    clock = FakeClock(NOW + timedelta(days=31))
    assert await _sweep(database, clock).run_once() == 1
    assert await _erased(database) == {turned_down}
    clock.advance(days=5)  # 36 days on: the later disqualified lead is 31 days old
    assert await _sweep(database, clock).run_once() == 1
    assert await _erased(database) == {turned_down, recent}
    clock.now = NOW + timedelta(days=366)
    assert await _sweep(database, clock).run_once() == 2
    assert await _erased(database) == {turned_down, recent, qualified, talking}
    audit = (await dump(database))["audit_log"]
    assert {(r["lead_id"], r["actor"]) for r in audit if r["action"] == "erased"} == {
        (turned_down, "retention"),
        (recent, "retention"),
        (qualified, "retention"),
        (talking, "retention"),
    }


async def test_with_no_rule_set_nothing_is_ever_erased(
    database: Database, storage: SqlStorage
) -> None:
    await _lead(storage, "DOWN", NOW, qualified=False)
    clock = FakeClock(NOW + timedelta(days=3650))
    sweep = RetentionSweep(database, RetentionPolicy(), clock, every=HOUR, holder="a")
    assert await sweep.run_once() == 0
    assert await _erased(database) == set()


async def test_one_worker_sweeps_at_a_time_and_another_takes_over_when_its_lease_ends(
    database: Database, storage: SqlStorage
) -> None:
    clock = FakeClock(NOW + timedelta(days=40))
    first, second = _sweep(database, clock, "worker-a"), _sweep(database, clock, "worker-b")
    assert await first.run_once() == 0  # nothing due yet; worker-a holds this hour
    due = await _lead(storage, "DOWN", NOW, qualified=False)
    clock.advance(minutes=10)
    assert await second.run_once() == 0  # worker-a's round: worker-b leaves it alone
    assert await _erased(database) == set()
    assert await first.run_once() == 1  # the holder renews its own lease
    later = await _lead(storage, "DOWN2", NOW, qualified=False)
    clock.advance(minutes=30)
    assert await second.run_once() == 0
    clock.advance(hours=1)  # worker-a's lease ran out (it stopped, say): worker-b sweeps
    assert await second.run_once() == 1
    assert await _erased(database) == {due, later}


async def test_the_app_starts_the_sweep_with_its_own_clock(
    aiohttp_client: AiohttpClient, tmp_path: Path
) -> None:
    async with database_url("sqlite", tmp_path) as url:
        database = connect(url)
        storage = SqlStorage(database)
        try:
            await upgrade(database)
            held = await hold(storage, database, ZELDA, NOW)
        finally:
            await storage.close()
        settings = settings_for(url, privacy={"erase_all_after": "365d", "sweep_every": "1h"})
        app = create_app(settings)
        app[CLOCK] = FakeClock(NOW + timedelta(days=400))
        client = await aiohttp_client(app)
        try:
            for _ in range(500):  # the first sweep runs as the app starts
                if held.lead_id in await _erased(database):
                    break
                await asyncio.sleep(0.01)
            assert await _erased(database) == {held.lead_id}
            assert found_in(await dump(database), ZELDA) == []
        finally:
            await client.close()
            await database.dispose()
