"""Dispatcher throughput: outbox rows sent per second by `bot.dispatcher.Dispatcher`.

Run: `python -m bench.dispatcher [--rows N] [--postgres URL]`. N conversations are started on a
one-question script, each leaving one pending `send_text` row; a dispatcher with a sender that
answers at once (no network: what is measured is the outbox, not a provider) drains them:
claim a batch of 50 under a lease, send, record each send.

Baseline, in the same run on the same database: a table of N pending rows drained the least
way an outbox can be with the same durability: claim 50 in one transaction, then mark each row
sent in a commit of its own (a send that is not recorded before the next is a send repeated
after a crash).
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import text

from bench.turns import _database, _service, _start
from bot.dispatcher import Dispatcher
from bot.records import OutboxItem
from storage.db import Database
from storage.transactions import SqlStorage

ONE_QUESTION = """\
id: one
name: One
questions: [{id: name, type: text, prompt: Your name?}]
outcomes: [{id: done, message: Thanks!}]
"""
BATCH = 50


class InstantSender:
    """A provider that accepts every message at once."""

    def __init__(self) -> None:
        self.sent = 0

    async def send(self, item: OutboxItem) -> str | None:
        self.sent += 1
        return f"p-{item.idempotency_key}"


async def measure_dispatcher(storage: SqlStorage, rows: int) -> float:
    service = _service(storage, ONE_QUESTION)
    for start in range(0, rows, 500):  # in waves: the figure is the drain, not the set-up
        await _start(storage, service, min(500, rows - start), "one")
    sender = InstantSender()
    dispatcher = Dispatcher(storage, {"send_text": sender}, lambda: datetime.now(UTC), batch=BATCH)
    started = time.perf_counter()
    while await dispatcher.run_once():
        pass
    elapsed = time.perf_counter() - started
    assert sender.sent == rows, (sender.sent, rows)  # the benchmark drains the whole outbox
    return rows / elapsed


async def measure_baseline(database: Database, rows: int) -> float:
    postgres = database.dialect == "postgresql"
    key = "SERIAL" if postgres else "INTEGER"
    async with database.writing() as connection:
        await connection.execute(
            text(
                f"CREATE TABLE bench_outbox (id {key} PRIMARY KEY, status TEXT NOT NULL, "
                "claimed_until TIMESTAMP, payload TEXT)"
            )
        )
        await connection.execute(
            text("INSERT INTO bench_outbox (status, payload) VALUES ('pending', :p)"),
            [{"p": '{"text": "Your name?"}'}] * rows,
        )
        await connection.commit()
    lock = " FOR UPDATE SKIP LOCKED" if postgres else ""
    sent = 0
    started = time.perf_counter()
    while True:
        async with database.writing() as connection:
            claimed = [
                row.id
                for row in await connection.execute(
                    text(
                        "SELECT id FROM bench_outbox WHERE status = 'pending' "
                        f"AND claimed_until IS NULL ORDER BY id LIMIT {BATCH}{lock}"
                    )
                )
            ]
            if not claimed:
                break
            for row_id in claimed:
                await connection.execute(
                    text("UPDATE bench_outbox SET claimed_until = :t WHERE id = :i"),
                    {"t": datetime.now(UTC).replace(tzinfo=None), "i": row_id},
                )
            await connection.commit()
        for row_id in claimed:
            async with database.writing() as connection:
                await connection.execute(
                    text("UPDATE bench_outbox SET status = 'sent' WHERE id = :i"), {"i": row_id}
                )
                await connection.commit()
            sent += 1
    elapsed = time.perf_counter() - started
    assert sent == rows
    return rows / elapsed


async def main(rows: int, postgres: str | None) -> None:
    print(f"{rows:,} pending rows drained, batches of {BATCH}, a sender that answers at once")
    print("| database | leadbot rows/s | baseline rows/s | ratio |")
    print("| --- | --- | --- | --- |")
    with tempfile.TemporaryDirectory() as folder:
        for kind in ["sqlite"] + (["postgresql"] if postgres else []):
            database, close = await _database(kind, postgres, Path(folder))
            storage = SqlStorage(database)
            try:
                baseline = await measure_baseline(database, rows)
                rate = await measure_dispatcher(storage, rows)
            finally:
                await storage.close()
                await close()  # type: ignore[misc]
            print(f"| {kind} | {rate:,.0f} | {baseline:,.0f} | {rate / baseline:.2f}x |")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=5000)
    parser.add_argument("--postgres", help="PostgreSQL URL (postgresql+asyncpg://...)")
    arguments = parser.parse_args()
    asyncio.run(main(arguments.rows, arguments.postgres))
