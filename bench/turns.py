"""Service-level turns (no HTTP): 200 conversations driven at once, on SQLite and PostgreSQL.

Run: `python -m bench.turns [--postgres URL] [--memory] [--conversations N]`. The baseline,
measured in the same run on the same database, is the least a durable chat turn costs: as many
tasks as conversations (200) that each insert one row and commit once per message. Memory: RSS
after 10,000 and 50,000 finished conversations, to show it does not grow with them.
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import text

from bot.catalog import LoadedScript, ScriptCatalog
from bot.inbound import TextReceived
from bot.loader import load_script
from bot.records import NewLead, Receipt
from bot.service import ConversationService
from storage.db import Database, connect
from storage.migrate import upgrade
from storage.transactions import SqlStorage

SCRIPT = """\
id: bench
name: Bench
lead_fields: [first_name]
greeting: "Hi {{ lead.first_name }}!"
questions:
  - id: product
    type: choice
    prompt: Which product?
    options: [{value: a, label: Alpha, score: 10}, {value: b, label: Beta}]
  - {id: budget, type: number, prompt: Budget?}
  - {id: notes, type: text, prompt: Anything else?}
outcomes:
  - {id: hot, min_score: 10, message: "Thanks, {{ lead.first_name }}!"}
  - {id: cold, message: Thanks!}
"""
SHORT = """\
id: short
name: Short
questions: [{id: name, type: text, prompt: Your name?}]
outcomes: [{id: done, message: Thanks!}]
"""
REPLIES = ["alpha", "25k", "call me after 5", "thanks", "ok", "bye", "one more", "and another"]
CONVERSATIONS = 200


def _now() -> datetime:
    return datetime.now(UTC)


def _service(storage: SqlStorage, source: str) -> ConversationService:
    catalog = ScriptCatalog([LoadedScript(load_script(source), source)])
    return ConversationService(storage, catalog, _now)


async def _start(
    storage: SqlStorage, service: ConversationService, count: int, script: str
) -> list[int]:
    async def one(number: int) -> int:
        new = NewLead("bench", uuid.uuid4().hex, script, _now(), {"first_name": "Ana"})
        lead_id = await storage.run(
            lambda tx: tx.leads.add(new, uuid.uuid4().hex[:12], _now())[0].id
        )
        return (
            await service.start(lead_id, channel="web", channel_user_id=str(number))
        ).conversation_id

    return list(await asyncio.gather(*(one(n) for n in range(count))))


async def measure_turns(
    storage: SqlStorage, count: int = CONVERSATIONS
) -> tuple[float, list[float]]:
    service = _service(storage, SCRIPT)
    conversations = await _start(storage, service, count, "bench")
    latencies: list[float] = []

    async def talk(conversation_id: int) -> None:
        for number, reply in enumerate(REPLIES):
            started = time.perf_counter()
            await service.handle(
                conversation_id, TextReceived(reply), Receipt("web", f"{conversation_id}-{number}")
            )
            latencies.append((time.perf_counter() - started) * 1000)

    started = time.perf_counter()
    await asyncio.gather(*(talk(c) for c in conversations))
    elapsed = time.perf_counter() - started
    return len(latencies) / elapsed, latencies


async def measure_baseline(
    database: Database, count: int = CONVERSATIONS
) -> tuple[float, list[float]]:
    async with database.writing() as connection:
        await connection.execute(
            text("CREATE TABLE IF NOT EXISTS bench_baseline (id SERIAL PRIMARY KEY, body TEXT)")
            if database.dialect == "postgresql"
            else text(
                "CREATE TABLE IF NOT EXISTS bench_baseline (id INTEGER PRIMARY KEY, body TEXT)"
            )
        )
        await connection.commit()
    latencies: list[float] = []

    async def talk() -> None:
        for reply in REPLIES:
            started = time.perf_counter()
            async with database.writing() as connection:
                await connection.execute(
                    text("INSERT INTO bench_baseline (body) VALUES (:b)"), {"b": reply}
                )
                await connection.commit()
            latencies.append((time.perf_counter() - started) * 1000)

    started = time.perf_counter()
    await asyncio.gather(*(talk() for _ in range(count)))
    return len(latencies) / (time.perf_counter() - started), latencies


def _p(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))]


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def measure_memory(
    storage: SqlStorage, checkpoints: tuple[int, ...]
) -> list[tuple[int, float, int]]:
    """Finish conversations in waves of 200; RSS (peak, MB) and locks held at each checkpoint."""
    service = _service(storage, SHORT)
    finished = 0
    results = []
    for checkpoint in checkpoints:
        while finished < checkpoint:
            wave = await _start(storage, service, 200, "short")
            await asyncio.gather(*(service.handle(c, TextReceived("Ana")) for c in wave))
            finished += len(wave)
        results.append((finished, _rss_mb(), service.locks_held))
    return results


async def _database(
    kind: str, postgres: str | None, folder: Path
) -> tuple[Database, Callable[[], object]]:
    if kind == "sqlite":
        database = connect(f"sqlite+aiosqlite:///{folder / f'bench-{uuid.uuid4().hex[:6]}.db'}")
        await upgrade(database)
        return database, database.dispose
    assert postgres is not None
    schema = f"bench_{uuid.uuid4().hex[:8]}"
    admin = connect(postgres)
    async with admin.engine.begin() as connection:
        await connection.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
    database = connect(postgres, schema=schema)
    await upgrade(database)

    async def drop() -> None:
        await database.dispose()
        async with admin.engine.begin() as connection:
            await connection.exec_driver_sql(f'DROP SCHEMA "{schema}" CASCADE')
        await admin.dispose()

    return database, drop


async def main(postgres: str | None, memory: bool, count: int = CONVERSATIONS) -> None:
    print(f"{count} conversations at once, {len(REPLIES)} messages each")
    print(
        "| database | leadbot turns/s | baseline commits/s | ratio | turn p50 | turn p99 "
        "| baseline p50 / p99 |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- |")
    with tempfile.TemporaryDirectory() as folder:
        for kind in ["sqlite"] + (["postgresql"] if postgres else []):
            database, close = await _database(kind, postgres, Path(folder))
            storage = SqlStorage(database)
            try:
                baseline_rate, baseline = await measure_baseline(database, count)
                rate, latencies = await measure_turns(storage, count)
            finally:
                await storage.close()
                await close()  # type: ignore[misc]
            print(
                f"| {kind} | {rate:,.0f} | {baseline_rate:,.0f} | {rate / baseline_rate:.2f}x "
                f"| {statistics.median(latencies):.1f} ms | {_p(latencies, 0.99):.1f} ms "
                f"| {statistics.median(baseline):.1f} / {_p(baseline, 0.99):.1f} ms |"
            )
        if memory:
            database, close = await _database("sqlite", None, Path(folder))
            storage = SqlStorage(database)
            try:
                print("\n| finished conversations | peak RSS | locks held |\n| --- | --- | --- |")
                for finished, rss, locks in await measure_memory(storage, (10_000, 50_000)):
                    print(f"| {finished:,} | {rss:.0f} MB | {locks} |")
            finally:
                await storage.close()
                await close()  # type: ignore[misc]


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--postgres", help="PostgreSQL URL (postgresql+asyncpg://...)")
    parser.add_argument(
        "--memory", action="store_true", help="also measure RSS over 50,000 conversations"
    )
    parser.add_argument("--conversations", type=int, default=CONVERSATIONS)
    arguments = parser.parse_args()
    asyncio.run(main(arguments.postgres, arguments.memory, arguments.conversations))
