"""CRM events and deliveries on real SQLite and PostgreSQL: migration 0008 matches the models,
sequences without gaps, the worker posting to a fake CRM (retries, 24 hours then a dead
letter, 410, order by sequence with two workers), retry and replay."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import aiohttp
import pytest
from sqlalchemy import select

from bot.crm_delivery import CrmDeliverer, CrmRetryPolicy
from bot.crm_records import ConfiguredHook, NewEvent
from bot.crm_routes import CrmRoutes
from bot.records import NewLead
from storage.crm_admin import erase_crm_data, find_subscription, list_deliveries, replay, retry
from storage.db import Database
from storage.tables import CrmDeliveryRow, CrmEventRow, CrmSubscriptionRow
from storage.transactions import SqlStorage
from tests.conftest import NOW, FakeClock
from tests.fake_crm import HANG, FakeCrm
from tests.schema_drift import schema_differences, table_of
from webhooks.crm.poster import HttpPoster

MINE = {"crm_subscriptions", "crm_sequences", "crm_events", "crm_deliveries"}
DELIVERIES = CrmDeliveryRow.__table__  # type: ignore[attr-defined]
EVENTS = CrmEventRow.__table__  # type: ignore[attr-defined]
SUBSCRIPTIONS = CrmSubscriptionRow.__table__  # type: ignore[attr-defined]
SECRET = "crm-secret"


async def test_migration_0008_creates_exactly_the_tables_of_the_models(database: Database) -> None:
    found = await schema_differences(database)
    assert [diff for diff in found if table_of(diff, MINE) in MINE] == []


@dataclass
class Crm:
    """A database, a fake receiver, and workers posting to it on a clock the test moves."""

    database: Database
    storage: SqlStorage
    fake: FakeCrm
    url: str
    clock: FakeClock
    session: aiohttp.ClientSession
    routes: CrmRoutes

    def worker(self, **options: Any) -> CrmDeliverer:
        return CrmDeliverer(
            self.storage,
            HttpPoster(self.session, timeout=0.5),
            self.routes,
            self.clock,
            secrets={"hub": SECRET},
            policy=CrmRetryPolicy(first_delay=timedelta(seconds=10)),
            rng=__import__("random").Random(7),
            **options,
        )

    async def lead(self, external_id: str) -> int:
        new = NewLead(
            "api", external_id, "s", NOW, fields={"first_name": "Ana"}, phone="+34612345678"
        )
        lead, _ = await self.storage.run(lambda tx: tx.leads.add(new, external_id[:8].upper(), NOW))
        return lead.id

    async def event(self, lead_id: int, event: str = "lead.updated") -> int:
        ids = self.routes.wanted(event)
        body = {"version": 1, "event": event, "lead": {"id": lead_id}, "conversation": None}
        return await self.storage.run(
            lambda tx: tx.crm.record(
                NewEvent(lead_id, event, self.clock(), body), ids, self.clock()
            )
        )

    async def drain(self, worker: CrmDeliverer, *, step: timedelta = timedelta(0)) -> int:
        """Run the worker until nothing is due, moving the clock `step` between rounds."""
        total = 0
        for _ in range(200):
            claimed = await worker.run_once()
            total += claimed
            if claimed == 0 and step == timedelta(0):
                return total
            self.clock.now += step
        return total

    async def deliveries(self) -> list[Any]:
        async with self.database.reading() as connection:
            query = select(DELIVERIES).order_by(DELIVERIES.c.id)
            return list(await connection.execute(query))


@pytest.fixture
async def crm(database: Database, aiohttp_server: Any) -> AsyncIterator[Crm]:
    fake = FakeCrm()
    server = await aiohttp_server(fake.app())
    storage = SqlStorage(database)
    clock = FakeClock(NOW)
    routes = CrmRoutes()
    hooks = [ConfiguredHook("hub", str(server.make_url("/hub")), frozenset({"lead.updated"}))]
    await storage.run(lambda tx: tx.crm.sync_configured(hooks, NOW))
    routes.replace(await storage.run(lambda tx: tx.crm.subscriptions()))
    async with aiohttp.ClientSession() as session:
        try:
            yield Crm(database, storage, fake, str(server.make_url("/hub")), clock, session, routes)
        finally:
            await storage.close()


async def test_a_leads_events_are_numbered_without_gaps_even_when_written_at_once(
    crm: Crm,
) -> None:
    ana, bea = await crm.lead("ana"), await crm.lead("bea")
    numbers = await asyncio.gather(*(crm.event(ana if i % 3 else bea) for i in range(12)))
    async with crm.database.reading() as connection:
        rows = list(await connection.execute(select(EVENTS.c.lead_id, EVENTS.c.sequence)))
    assert sorted(s for lead, s in rows if lead == ana) == list(range(1, 9))
    assert sorted(s for lead, s in rows if lead == bea) == list(range(1, 5))
    assert sorted(numbers) == sorted([*range(1, 9), *range(1, 5)])


async def test_a_failing_receiver_is_retried_with_backoff_then_delivered_in_order(
    crm: Crm,
) -> None:
    lead = await crm.lead("ana")
    for _ in range(3):
        await crm.event(lead)
    crm.fake.answer_next(500, HANG, 503)
    worker = crm.worker()
    waits = []
    for _ in range(10):
        await crm.drain(worker)
        pending = [r for r in await crm.deliveries() if r.status == "pending"]
        if not pending:
            break
        head = pending[0]  # the others wait behind it
        waits.append(head.due_at - crm.clock.now)
        crm.clock.now = head.due_at
    # 10 s, 20 s, 40 s, each with up to 25% jitter: backoff, not a fixed wait.
    assert [round(w.total_seconds() / 10) for w in waits] == [1, 2, 4]
    statuses = [r.status for r in crm.fake.received]
    assert statuses == [500, None, 503, 200, 200, 200]
    sequences = [r.json["sequence"] for r in crm.fake.received]
    assert sequences == [1, 1, 1, 1, 2, 3]  # the first is retried before the next goes out
    first = crm.fake.received[0].headers["X-Leadbot-Delivery"]
    assert {r.headers["X-Leadbot-Delivery"] for r in crm.fake.received[:4]} == {first}
    rows = await crm.deliveries()
    assert [(r.status, r.attempts, r.last_status) for r in rows] == [
        ("delivered", 4, 200),
        ("delivered", 1, 200),
        ("delivered", 1, 200),
    ]


async def test_after_24_hours_of_failures_a_delivery_is_a_dead_letter(crm: Crm) -> None:
    lead = await crm.lead("ana")
    await crm.event(lead)
    crm.fake.answer_always(502)
    worker = crm.worker()
    for _ in range(100):
        await crm.drain(worker)
        [row] = await crm.deliveries()
        if row.status != "pending":
            break
        assert crm.clock.now - NOW < timedelta(hours=24)  # still trying within the day
        crm.clock.now = row.due_at
    assert row.status == "failed"
    assert row.last_status == 502
    assert row.last_error.startswith("gave up after 1 day")
    assert 10 < row.attempts < 40  # backoff capped at an hour: about 30 tries in a day
    [dead] = await list_deliveries(crm.database)
    assert (dead.id, dead.status, dead.sequence) == (row.id, "failed", 1)

    crm.fake.recover()
    hub = await find_subscription(crm.database, "hub")
    assert await retry(crm.database, crm.clock(), subscription_id=hub.id) == 1
    await crm.drain(worker)
    [row] = await crm.deliveries()
    assert row.status == "delivered"
    assert crm.fake.received[-1].headers["X-Leadbot-Delivery"] == row.delivery_id


async def test_a_4xx_fails_at_once_and_410_disables_the_subscription(crm: Crm) -> None:
    lead = await crm.lead("ana")
    await crm.event(lead)
    await crm.event(lead)
    crm.fake.answer_next(422, 410)
    worker = crm.worker()
    await worker.reload()
    await crm.drain(worker)
    rows = await crm.deliveries()
    assert [(r.status, r.last_status) for r in rows] == [("failed", 422), ("failed", 410)]
    assert crm.routes.wanted("lead.updated") == ()  # no more events are recorded for it
    async with crm.database.reading() as connection:
        status = (await connection.execute(select(SUBSCRIPTIONS.c.status))).scalar_one()
    assert status == "disabled"
    await crm.event(lead)
    assert len(await crm.deliveries()) == 2

    hub = await find_subscription(crm.database, "hub")
    assert await retry(crm.database, crm.clock(), subscription_id=hub.id) == 2
    await worker.reload()
    assert crm.routes.wanted("lead.updated") == (hub.id,)
    await crm.drain(worker)
    assert [r.status for r in await crm.deliveries()] == ["delivered", "delivered"]


async def test_two_workers_never_send_one_delivery_twice_and_keep_each_leads_order(
    crm: Crm,
) -> None:
    leads = [await crm.lead(f"lead-{i}") for i in range(4)]
    for _ in range(5):
        for lead in leads:
            await crm.event(lead)
    crm.fake.answer_next(500, 500, 500)
    one, two = crm.worker(batch=3), crm.worker(batch=3)
    for _ in range(60):
        claimed = await asyncio.gather(one.run_once(), two.run_once())
        if sum(claimed) == 0:
            pending = [r for r in await crm.deliveries() if r.status == "pending"]
            if not pending:
                break
            crm.clock.now = max(r.due_at for r in pending)
    accepted = crm.fake.accepted()
    ids = [r.headers["X-Leadbot-Delivery"] for r in accepted]
    assert len(ids) == len(set(ids)) == 20
    for lead in leads:
        order = [r.json["sequence"] for r in accepted if r.json["lead"]["id"] == lead]
        assert order == [1, 2, 3, 4, 5]


async def test_replay_sends_stored_events_again_as_new_deliveries(crm: Crm) -> None:
    lead = await crm.lead("ana")
    for _ in range(4):
        await crm.event(lead)
    worker = crm.worker()
    await crm.drain(worker)
    hub = await find_subscription(crm.database, "hub")
    assert await replay(crm.database, crm.clock(), hub.id, lead_id=lead, first=2, last=3) == 2
    await crm.drain(worker)
    again = crm.fake.received[4:]
    assert [r.json["sequence"] for r in again] == [2, 3]
    first_ids = {r.headers["X-Leadbot-Delivery"] for r in crm.fake.received[:4]}
    assert not first_ids & {r.headers["X-Leadbot-Delivery"] for r in again}


async def test_erasing_a_lead_scrubs_its_event_bodies_and_drops_what_waits(crm: Crm) -> None:
    lead = await crm.lead("ana")
    body = {
        "version": 1,
        "event": "lead.updated",
        "lead": {"id": lead, "phone": "+34612345678", "email": "ana@example.com"},
        "conversation": {"id": 1, "channel": "sms", "status": "active", "handoff_reason": "x"},
    }
    ids = crm.routes.wanted("lead.updated")
    await crm.storage.run(
        lambda tx: tx.crm.record(NewEvent(lead, "lead.updated", NOW, body), ids, NOW)
    )
    async with crm.database.writing() as connection:
        counts = await erase_crm_data(connection, lead)
        await connection.commit()
    assert counts == {"crm_event_bodies": 1, "crm_deliveries_dropped": 1}
    async with crm.database.reading() as connection:
        stored = (await connection.execute(select(EVENTS.c.body))).scalar_one()
    text = json.dumps(stored)
    assert "+34612345678" not in text
    assert "ana@example.com" not in text
    assert stored["lead"] == {"id": lead, "erased": True, "outcome": None}
    assert [r.status for r in await crm.deliveries()] == ["dropped"]


async def test_a_delivery_dropped_while_in_flight_keeps_its_outcome(crm: Crm) -> None:
    """The lead is erased (or the hook removed) while its delivery is being posted: the
    post's failure, recorded after, neither revives the delivery nor hides why it stopped."""
    lead = await crm.lead("ana")
    await crm.event(lead)
    [claimed] = await crm.storage.run(lambda tx: tx.crm.claim_due(NOW, 10, timedelta(minutes=2)))
    async with crm.database.writing() as connection:
        await erase_crm_data(connection, lead)
        await connection.commit()
    later = NOW + timedelta(seconds=1)
    await crm.storage.run(lambda tx: tx.crm.retry_later(claimed, later, 500, "HTTP 500"))
    await crm.storage.run(lambda tx: tx.crm.failed(claimed, 400, "HTTP 400", later))
    [row] = await crm.deliveries()
    assert (row.status, row.last_error) == ("dropped", "the lead was erased")
