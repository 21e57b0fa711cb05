"""SIGKILL a worker mid-burst: every acknowledged turn is there whole, nothing is half written,
and every committed outbox row is delivered, once per idempotency key."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from bot.catalog import LoadedScript, ScriptCatalog
from bot.dispatcher import Dispatcher
from bot.loader import load_script
from bot.records import NewLead
from bot.service import ConversationService
from storage.db import Database, connect
from storage.tables import ConversationRow, MessageRow, OutboxRow, ReceiptRow
from storage.transactions import SqlStorage
from tests.conftest import fresh_database
from tests.crash_worker import CONVERSATIONS, SCRIPT
from tests.fakes import RecordingSender

ROOT = Path(__file__).parent.parent
ACKS_BEFORE_KILL = 120


async def _prepare(database: Database) -> None:
    catalog = ScriptCatalog([LoadedScript(load_script(SCRIPT), SCRIPT)])
    storage = SqlStorage(database)
    service = ConversationService(storage, catalog, lambda: datetime.now(UTC))
    try:
        for number in range(CONVERSATIONS):
            new = NewLead("api", f"crash-{number}", "crash", datetime.now(UTC))
            lead_id = await storage.run(
                lambda tx, new=new, n=number: tx.leads.add(new, f"C{n}", datetime.now(UTC))[0].id
            )
            await service.start(lead_id, channel="web", channel_user_id=f"u{number}")
    finally:
        await storage.close()


async def _run_until(args: list[str], wanted: int) -> list[str]:
    """Start a worker, read its ACK lines until `wanted`, then SIGKILL it."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.crash_worker",
        *args,
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert process.stdout is not None
    lines: list[str] = []
    try:
        async with asyncio.timeout(60):
            while len(lines) < wanted:
                line = await process.stdout.readline()
                if not line:
                    error = await process.stderr.read() if process.stderr else b""
                    raise AssertionError(f"worker stopped early: {error.decode()[-2000:]}")
                lines.append(line.decode().strip())
    finally:
        process.send_signal(signal.SIGKILL)
        await process.wait()
    assert process.returncode == -signal.SIGKILL
    return lines


async def _count(database: Database, query: object) -> int:
    async with database.reading() as connection:
        return int((await connection.execute(query)).scalar_one())  # type: ignore[call-overload]


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
async def test_sigkill_mid_burst_loses_no_acknowledged_turn(kind: str, tmp_path: Path) -> None:
    async with fresh_database(kind, tmp_path) as database:
        await _prepare(database)
        acks = await _run_until(["turns", database.url, database.schema or ""], ACKS_BEFORE_KILL)
        acknowledged = [line.removeprefix("ACK ") for line in acks if line.startswith("ACK ")]
        assert len(acknowledged) == ACKS_BEFORE_KILL

        # A fresh engine, as after a restart.
        restarted = connect(database.url, schema=database.schema)
        try:
            messages = MessageRow.__table__  # type: ignore[attr-defined]
            receipts = ReceiptRow.__table__  # type: ignore[attr-defined]
            conversations = ConversationRow.__table__  # type: ignore[attr-defined]
            outbox = OutboxRow.__table__  # type: ignore[attr-defined]
            async with restarted.reading() as connection:
                prospect_lines = {
                    row.text.removeprefix("msg ")
                    for row in await connection.execute(
                        select(messages.c.text).where(messages.c.author == "prospect")
                    )
                }
                receipt_ids = {
                    row.provider_id
                    for row in await connection.execute(select(receipts.c.provider_id))
                }
                versions = {
                    row.id: row.version for row in await connection.execute(select(conversations))
                }
                per_conversation = Counter(
                    row.conversation_id
                    for row in await connection.execute(
                        select(messages.c.conversation_id).where(messages.c.author == "prospect")
                    )
                )
                bot_lines = await connection.scalar(
                    select(func.count()).where(messages.c.author == "bot")
                )
                outbox_rows = await connection.scalar(select(func.count()).select_from(outbox))
            # Every acknowledged turn is there...
            assert set(acknowledged) <= prospect_lines
            # ...and whole: receipt, transcript line and state change together, never apart.
            assert prospect_lines == receipt_ids
            for conversation_id, version in versions.items():
                assert version == 1 + per_conversation[conversation_id]
            # Every bot line that was committed has its outbox row.
            assert bot_lines == outbox_rows

            # Deliver after the restart: every committed row goes out once.
            sender = RecordingSender()
            storage = SqlStorage(restarted)
            dispatcher = Dispatcher(
                storage, {"send_text": sender}, lambda: datetime.now(UTC), batch=100
            )
            while await dispatcher.run_once():
                pass
            await storage.close()
            keys = Counter(item.idempotency_key for item in sender.sent)
            assert len(keys) == outbox_rows
            assert set(keys.values()) == {1}
        finally:
            await restarted.dispose()


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
async def test_sigkill_mid_dispatch_sends_every_row_once_per_key(kind: str, tmp_path: Path) -> None:
    async with fresh_database(kind, tmp_path) as database:
        await _prepare(database)
        await _run_until(["turns", database.url, database.schema or ""], 200)
        sent_log = tmp_path / "sent.log"
        # Let a dispatcher deliver part of the outbox, then kill it in the middle of a batch.
        lines = await _run_until(
            ["dispatch", database.url, database.schema or "", str(sent_log)], 37
        )
        assert all(line.startswith("SENT ") for line in lines)
        delivered_before = sent_log.read_text().split()
        assert len(delivered_before) >= 37

        restarted = connect(database.url, schema=database.schema)
        try:
            # After the leases of the dead worker run out, a new dispatcher finishes the job.
            later = datetime.now(UTC) + timedelta(minutes=5)
            sender = RecordingSender()
            storage = SqlStorage(restarted)
            dispatcher = Dispatcher(storage, {"send_text": sender}, lambda: later, batch=100)
            while await dispatcher.run_once():
                pass
            await storage.close()
            outbox = OutboxRow.__table__  # type: ignore[attr-defined]
            async with restarted.reading() as connection:
                statuses = Counter(
                    row.status for row in await connection.execute(select(outbox.c.status))
                )
                total = sum(statuses.values())
        finally:
            await restarted.dispose()
        assert statuses == {"sent": total}
        every_send = Counter(delivered_before + [item.idempotency_key for item in sender.sent])
        # Every row reached the provider; a row in flight at the kill may have gone twice, with
        # the same idempotency key, which the provider uses to drop the repeat.
        assert len(every_send) == total
        assert sum(count - 1 for count in every_send.values()) <= 5  # at most one batch in flight
