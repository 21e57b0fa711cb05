"""Repositories on real SQLite and PostgreSQL: leads, receipts, outbox claims, schema checks."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from bot.ports import Transaction
from bot.records import NewLead, Receipt
from storage.db import Database, connect
from storage.errors import SchemaOutdatedError
from storage.migrate import current_revision, ensure_current, head_revision
from storage.tables import OutboxRow
from storage.transactions import SqlStorage
from tests.conftest import NOW
from tests.schema_drift import schema_differences


@pytest.fixture
async def storage(database: Database) -> AsyncIterator[SqlStorage]:
    opened = SqlStorage(database)
    yield opened
    await opened.close()


def new_lead(external_id: str = "tt-1") -> NewLead:
    return NewLead(
        source="tiktok",
        external_id=external_id,
        script_id="car-test-drive",
        submitted_at=NOW,
        fields={"first_name": "Ana"},
    )


async def test_schema_is_at_head_after_upgrade(database: Database) -> None:
    assert await current_revision(database) == head_revision()
    await ensure_current(database, auto_upgrade=False)  # does not raise


async def test_the_migrated_schema_is_the_models_schema_in_every_table(
    database: Database,
) -> None:
    """What Alembic's autogenerate would write for the models against the migrated database:
    nothing, types included (the features' own tests check their tables; this one all)."""
    assert await schema_differences(database) == []


async def test_lead_is_stored_once_per_source_and_external_id(storage: SqlStorage) -> None:
    def work(tx: Transaction) -> list[tuple[int, str, bool]]:
        found = []
        for external_id, reference in (
            ("tt-1", "REF2345"),
            ("tt-1", "REF9999"),
            ("tt-2", "REF3456"),
        ):
            lead, created = tx.leads.add(new_lead(external_id), reference, NOW)
            found.append((lead.id, lead.reference, created))
        return found

    first, again, other = await storage.run(work)
    assert first[2]
    assert not again[2]
    assert other[2]
    assert again[:2] == first[:2]  # the same lead, with its first reference
    assert other[0] != first[0]


async def test_work_that_raises_is_rolled_back(storage: SqlStorage) -> None:
    def fails(tx: Transaction) -> None:
        tx.leads.add(new_lead(), "REF2345", NOW)
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        await storage.run(fails)
    _lead, created = await storage.run(lambda tx: tx.leads.add(new_lead(), "REF2345", NOW))
    assert created


async def test_concurrent_work_commits_independently(storage: SqlStorage) -> None:
    """On SQLite, concurrent runs share one commit; a failing one must not take others along."""

    def add(external_id: str) -> object:
        return lambda tx: tx.leads.add(new_lead(external_id), f"R{external_id}", NOW)

    def fails(tx: Transaction) -> None:
        tx.leads.add(new_lead("doomed"), "RDOOMED", NOW)
        raise ValueError("no")

    results = await asyncio.gather(
        *(storage.run(add(f"ok-{n}")) for n in range(10)),  # type: ignore[arg-type]
        storage.run(fails),
        return_exceptions=True,
    )
    assert sum(isinstance(r, ValueError) for r in results) == 1
    assert await storage.run(lambda tx: tx.leads.add(new_lead("doomed"), "RDOOMED", NOW)[1])
    for n in range(10):
        assert not await storage.run(lambda tx, n=n: tx.leads.add(new_lead(f"ok-{n}"), "X", NOW)[1])


async def test_a_turn_waiting_for_another_writer_leaves_the_loop_serving(
    database: Database, storage: SqlStorage
) -> None:
    """SQLite: the turn's writer begins its transaction on a thread of its own. An aiosqlite
    write in this process (a rep's action, say) holds the lock for as long as it takes the
    loop to run it, so a BEGIN waiting on the loop itself would wait for the busy timeout and
    fail the turn."""
    if database.dialect != "sqlite":
        pytest.skip("PostgreSQL writers do not share one lock")
    async with database.writing() as connection:
        await connection.execute(select(OutboxRow.id))  # BEGIN IMMEDIATE: the lock is held
        turn = asyncio.ensure_future(
            storage.run(lambda tx: tx.leads.add(new_lead(), "REF2345", NOW)[1])
        )
        for _ in range(20):
            await asyncio.sleep(0.005)  # the loop keeps turning
        assert not turn.done()  # the turn waits for the lock, and has not failed
        await connection.commit()
    assert await turn is True


async def test_closing_lets_queued_work_finish_then_refuses_more(database: Database) -> None:
    storage = SqlStorage(database)
    queued = [
        asyncio.ensure_future(
            storage.run(lambda tx, n=n: tx.leads.add(new_lead(f"q-{n}"), f"RQ{n}", NOW)[1])
        )
        for n in range(5)
    ]
    await asyncio.sleep(0)  # each has called run() and waits for its commit
    await storage.close()
    assert await asyncio.gather(*queued) == [True] * 5
    if database.dialect == "sqlite":  # PostgreSQL has no writer of its own to close
        with pytest.raises(RuntimeError, match="closed"):
            await storage.run(lambda tx: None)


async def test_a_writer_cancelled_mid_group_leaves_no_caller_waiting(database: Database) -> None:
    """Cancelling `close()` cancels the writer's pump (through `gather`) while a group is under
    way: every caller of `run` must get its cancellation, none wait for ever."""
    storage = SqlStorage(database)
    turns = [
        asyncio.ensure_future(
            storage.run(lambda tx, n=n: tx.leads.add(new_lead(f"c-{n}"), f"RC{n}", NOW)[1])
        )
        for n in range(3)
    ]
    await asyncio.sleep(0)  # each has called run(); the pump waits for a quiet turn
    closing = asyncio.ensure_future(storage.close())
    await asyncio.sleep(0)
    closing.cancel()
    # The timeout only turns a hang into a failure; the turns end at once.
    outcomes = await asyncio.wait_for(asyncio.gather(*turns, return_exceptions=True), 30)
    assert all(o is True or isinstance(o, asyncio.CancelledError) for o in outcomes), outcomes
    await asyncio.gather(closing, return_exceptions=True)
    await storage.close()  # and the writer still closes


async def test_receipt_is_accepted_once(storage: SqlStorage) -> None:
    def work(tx: Transaction) -> list[bool]:
        return [
            tx.receipts.add(Receipt("telegram", "1001"), NOW),
            tx.receipts.add(Receipt("telegram", "1001"), NOW),
            tx.receipts.add(Receipt("twilio", "1001"), NOW),
        ]

    assert await storage.run(work) == [True, False, True]
    assert not await storage.run(lambda tx: tx.receipts.add(Receipt("telegram", "1001"), NOW))


async def test_answers_merge_and_outcome_is_recorded(storage: SqlStorage) -> None:
    def work(tx: Transaction) -> int:
        lead, _ = tx.leads.add(new_lead(), "REF2345", NOW)
        tx.leads.update_progress(lead.id, answers={"a": 1, "b": "x"}, now=NOW, started=True)
        tx.leads.update_progress(
            lead.id,
            answers={"b": [1, 2]},
            now=NOW,
            consent=("May we call?", NOW),
            outcome=("qualified", 40, ["budget: +40"], True),
        )
        return lead.id

    lead_id = await storage.run(work)
    stored = await storage.run(lambda tx: tx.leads.get(lead_id))
    assert stored is not None
    assert stored.answers == {"a": 1, "b": [1, 2]}
    assert stored.outcome == "qualified"
    assert stored.score == 40


async def _queue(storage: SqlStorage, count: int) -> None:
    def work(tx: Transaction) -> None:
        for number in range(count):
            tx.outbox.add(
                kind="send_text",
                idempotency_key=f"k{number}",
                payload={"n": number},
                due_at=NOW + timedelta(seconds=number),
                now=NOW,
            )

    await storage.run(work)


def _claim(at: object, limit: int = 10, lease: timedelta = timedelta(minutes=1)) -> object:
    return lambda tx: tx.outbox.claim_due(at, limit, lease)


async def test_claims_are_leases_in_due_order(storage: SqlStorage) -> None:
    await _queue(storage, 5)
    later = NOW + timedelta(seconds=10)
    first = await storage.run(_claim(later, 3))  # type: ignore[arg-type]
    second = await storage.run(_claim(later, 3))  # type: ignore[arg-type]
    assert [item.payload["n"] for item in first] == [0, 1, 2]
    assert [item.payload["n"] for item in second] == [3, 4]
    assert {item.attempts for item in first + second} == {1}
    assert await storage.run(_claim(later)) == []  # type: ignore[arg-type]
    # a worker that died holding a lease: once it runs out, the rows are claimed again
    expired = await storage.run(_claim(later + timedelta(minutes=2)))  # type: ignore[arg-type]
    assert len(expired) == 5
    assert {item.attempts for item in expired} == {2}


async def test_items_not_yet_due_are_not_claimed(storage: SqlStorage) -> None:
    await _queue(storage, 3)
    items = await storage.run(_claim(NOW))  # type: ignore[arg-type]
    assert [item.payload["n"] for item in items] == [0]


async def test_sent_retry_and_failed_are_recorded(storage: SqlStorage, database: Database) -> None:
    await _queue(storage, 3)

    def work(tx: Transaction) -> None:
        items = tx.outbox.claim_due(NOW + timedelta(seconds=5), 3, timedelta(minutes=1))
        tx.outbox.mark_sent(items[0], "provider-1", NOW)
        tx.outbox.retry_later(items[1], NOW + timedelta(minutes=5), "timeout")
        tx.outbox.mark_failed(items[2], "400 bad request", NOW)

    await storage.run(work)
    table = OutboxRow.__table__  # type: ignore[attr-defined]
    async with database.reading() as connection:
        rows = (await connection.execute(select(table).order_by(table.c.id))).all()
    assert [(r.status, r.provider_id, r.last_error) for r in rows] == [
        ("sent", "provider-1", None),
        ("pending", None, "timeout"),
        ("failed", None, "400 bad request"),
    ]
    assert rows[1].due_at == NOW + timedelta(minutes=5)


async def test_two_workers_never_claim_the_same_row(
    storage: SqlStorage, database: Database
) -> None:
    """PostgreSQL: SKIP LOCKED; SQLite: one writer at a time. Either way, disjoint claims."""
    await _queue(storage, 40)
    other_database = connect(database.url, schema=database.schema)  # a second worker's engine
    other = SqlStorage(other_database)
    try:

        async def claim(worker: SqlStorage) -> list[int]:
            claimed: list[int] = []
            for _ in range(10):
                items = await worker.run(
                    _claim(NOW + timedelta(minutes=1), 3, timedelta(minutes=5))
                )  # type: ignore[arg-type]
                claimed.extend(item.id for item in items)
            return claimed

        first, second = await asyncio.gather(claim(storage), claim(other))
    finally:
        await other.close()
        await other_database.dispose()
    assert len(first) + len(second) == 40
    assert not set(first) & set(second)


async def test_embedded_database_upgrades_itself(tmp_path: Path) -> None:
    database = connect(f"sqlite+aiosqlite:///{tmp_path / 'fresh.db'}")
    try:
        assert await current_revision(database) is None
        await ensure_current(database, auto_upgrade=True)
        assert await current_revision(database) == head_revision()
    finally:
        await database.dispose()


async def test_shared_database_on_an_old_schema_refuses_to_start(tmp_path: Path) -> None:
    database = connect(f"sqlite+aiosqlite:///{tmp_path / 'old.db'}")
    try:
        with pytest.raises(SchemaOutdatedError, match="run `leadbot db upgrade`"):
            await ensure_current(database, auto_upgrade=False)
    finally:
        await database.dispose()


async def test_a_long_list_of_addresses_is_checked_whole(storage: SqlStorage) -> None:
    """A claim of 50 rows asks about 100 addresses (each with its hash): every run of the
    fixed-length check counts, the last one padded."""
    addresses = [f"telegram:{1000 + n}" for n in range(41)]
    opted_out = {addresses[0], addresses[17], addresses[40]}  # first, middle and last run

    def opt_out(tx: Transaction) -> None:
        for address in opted_out:
            tx.suppressions.add(address, "telegram", "said 'stop'", NOW)

    await storage.run(opt_out)
    found = await storage.run(lambda tx: tx.suppressions.among(addresses))
    assert found == opted_out
    assert await storage.run(lambda tx: tx.suppressions.among(addresses[1:17])) == set()
