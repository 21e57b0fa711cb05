"""Repositories on real SQLite and PostgreSQL: leads, receipts, outbox claims, schema checks."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from bot.records import NewLead, Receipt
from storage.db import Database, connect
from storage.errors import SchemaOutdatedError
from storage.migrate import current_revision, ensure_current, head_revision
from storage.tables import OutboxRow
from storage.unit_of_work import SqlUnitOfWork
from tests.conftest import NOW


def new_lead(external_id: str = "tt-1", **extra: object) -> NewLead:
    return NewLead(
        source="tiktok",
        external_id=external_id,
        script_id="car-test-drive",
        submitted_at=NOW,
        fields={"first_name": "Ana"},
        **extra,  # type: ignore[arg-type]
    )


async def test_schema_is_at_head_after_upgrade(database: Database) -> None:
    assert await current_revision(database) == head_revision()
    await ensure_current(database, auto_upgrade=False)  # does not raise


async def test_lead_is_stored_once_per_source_and_external_id(database: Database) -> None:
    async with SqlUnitOfWork(database) as uow:
        first, created = await uow.leads.add(new_lead(), "REF2345", NOW)
        again, created_again = await uow.leads.add(new_lead(), "REF9999", NOW)
        other, created_other = await uow.leads.add(new_lead("tt-2"), "REF3456", NOW)
        await uow.commit()
    assert created
    assert not created_again
    assert created_other
    assert again.id == first.id
    assert again.reference == "REF2345"
    assert other.id != first.id


async def test_leaving_without_commit_rolls_back(database: Database) -> None:
    async with SqlUnitOfWork(database) as uow:
        await uow.leads.add(new_lead(), "REF2345", NOW)
    async with SqlUnitOfWork(database) as uow:
        _lead, created = await uow.leads.add(new_lead(), "REF2345", NOW)
        assert created


async def test_receipt_is_accepted_once(database: Database) -> None:
    async with SqlUnitOfWork(database) as uow:
        assert await uow.receipts.add(Receipt("telegram", "1001"), NOW)
        assert not await uow.receipts.add(Receipt("telegram", "1001"), NOW)
        assert await uow.receipts.add(Receipt("twilio", "1001"), NOW)
        await uow.commit()
    async with SqlUnitOfWork(database) as uow:
        assert not await uow.receipts.add(Receipt("telegram", "1001"), NOW)


async def test_answers_merge_and_outcome_is_recorded(database: Database) -> None:
    async with SqlUnitOfWork(database) as uow:
        lead, _ = await uow.leads.add(new_lead(), "REF2345", NOW)
        await uow.leads.update_progress(lead.id, answers={"a": 1}, now=NOW, started=True)
        await uow.leads.update_progress(
            lead.id,
            answers={"b": [1, 2]},
            now=NOW,
            consent=("May we call?", NOW),
            outcome=("qualified", 40, ["budget: +40"], True),
        )
        await uow.commit()
    async with SqlUnitOfWork(database) as uow:
        stored = await uow.leads.get(lead.id)
    assert stored is not None
    assert stored.answers == {"a": 1, "b": [1, 2]}
    assert stored.outcome == "qualified"
    assert stored.score == 40


async def _outbox_items(database: Database, count: int) -> None:
    async with SqlUnitOfWork(database) as uow:
        for number in range(count):
            await uow.outbox.add(
                kind="send_text",
                idempotency_key=f"k{number}",
                payload={"n": number},
                due_at=NOW + timedelta(seconds=number),
                now=NOW,
            )
        await uow.commit()


async def test_claims_are_leases_in_due_order(database: Database) -> None:
    await _outbox_items(database, 5)
    later = NOW + timedelta(seconds=10)
    async with SqlUnitOfWork(database) as uow:
        first = await uow.outbox.claim_due(later, 3, timedelta(minutes=1))
        second = await uow.outbox.claim_due(later, 3, timedelta(minutes=1))
        await uow.commit()
    assert [item.payload["n"] for item in first] == [0, 1, 2]
    assert [item.payload["n"] for item in second] == [3, 4]
    assert {item.attempts for item in first + second} == {1}
    async with SqlUnitOfWork(database) as uow:
        assert await uow.outbox.claim_due(later, 10, timedelta(minutes=1)) == []
        # a worker that died holding a lease: once it runs out, the rows are claimed again
        expired = await uow.outbox.claim_due(later + timedelta(minutes=2), 10, timedelta(minutes=1))
        await uow.commit()
    assert len(expired) == 5
    assert {item.attempts for item in expired} == {2}


async def test_items_not_yet_due_are_not_claimed(database: Database) -> None:
    await _outbox_items(database, 3)
    async with SqlUnitOfWork(database) as uow:
        items = await uow.outbox.claim_due(NOW, 10, timedelta(minutes=1))
    assert [item.payload["n"] for item in items] == [0]


async def test_sent_retry_and_failed_are_recorded(database: Database) -> None:
    await _outbox_items(database, 3)
    async with SqlUnitOfWork(database) as uow:
        items = await uow.outbox.claim_due(NOW + timedelta(seconds=5), 3, timedelta(minutes=1))
        await uow.outbox.mark_sent(items[0], "provider-1", NOW)
        await uow.outbox.retry_later(items[1], NOW + timedelta(minutes=5), "timeout")
        await uow.outbox.mark_failed(items[2], "400 bad request", NOW)
        await uow.commit()
    async with database.reading() as connection:
        rows = (await connection.execute(select(OutboxRow.__table__).order_by("id"))).all()  # type: ignore[attr-defined]
    assert [(r.status, r.provider_id, r.last_error) for r in rows] == [
        ("sent", "provider-1", None),
        ("pending", None, "timeout"),
        ("failed", None, "400 bad request"),
    ]
    assert rows[1].due_at == NOW + timedelta(minutes=5)


async def test_two_workers_never_claim_the_same_row(database: Database) -> None:
    """PostgreSQL: SKIP LOCKED; SQLite: one writer at a time. Either way, disjoint claims."""
    await _outbox_items(database, 40)
    other = connect(database.url, schema=database.schema)  # a second worker: its own engine
    try:

        async def claim(db: Database) -> list[int]:
            claimed: list[int] = []
            for _ in range(10):
                async with SqlUnitOfWork(db) as uow:
                    items = await uow.outbox.claim_due(
                        NOW + timedelta(minutes=1), 3, timedelta(minutes=5)
                    )
                    await uow.commit()
                claimed.extend(item.id for item in items)
            return claimed

        first, second = await asyncio.gather(claim(database), claim(other))
    finally:
        await other.dispose()
    assert len(first) + len(second) == 40
    assert not set(first) & set(second)


async def test_embedded_database_upgrades_itself(tmp_path: Path) -> None:
    path = tmp_path / "fresh.db"
    database = connect(f"sqlite+aiosqlite:///{path}")
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
