"""The same service tests on the in-memory fakes, on SQLite and on PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import select

from bot.ports import Storage, Transaction
from storage.db import Database
from storage.tables import ConversationRow, MessageRow, OutboxRow
from storage.transactions import SqlStorage
from tests.conftest import fresh_database
from tests.fakes import MemoryStorage

BACKENDS = ["memory", "sqlite", "postgresql"]
T = TypeVar("T")


class Counting:
    """A storage counting the transactions run through it: each is a trip to the database
    (on SQLite, a wait for the writer thread)."""

    def __init__(self, inner: Storage) -> None:
        self.inner = inner
        self.runs = 0

    async def run(self, work: Callable[[Transaction], T]) -> T:
        self.runs += 1
        return await self.inner.run(work)


class Backend:
    def __init__(self, kind: str, database: Database | None) -> None:
        self.kind = kind
        self.database = database
        self.memory = MemoryStorage()
        self.storage: Storage = self.memory if database is None else SqlStorage(database)

    async def close(self) -> None:
        if isinstance(self.storage, SqlStorage):
            await self.storage.close()

    async def transcript(self, conversation_id: int) -> list[tuple[str, str, str]]:
        """(author, text, status) in order."""
        if self.database is None:
            return [
                (m["author"], m["text"], m["status"])
                for m in self.memory.data.messages
                if m["conversation_id"] == conversation_id
            ]
        table = MessageRow.__table__  # type: ignore[attr-defined]
        query = select(table).where(table.c.conversation_id == conversation_id).order_by(table.c.id)
        async with self.database.reading() as connection:
            return [(r.author, r.text, r.status) for r in await connection.execute(query)]

    async def outbox(self) -> list[dict[str, Any]]:
        if self.database is None:
            return [
                {
                    "id": item_id,
                    "status": row["status"],
                    "payload": row["payload"],
                    "attempts": row["attempts"],
                    "error": row["error"],
                    "due_at": row["due_at"],
                }
                for item_id, row in sorted(self.memory.data.outbox.items())
            ]
        table = OutboxRow.__table__  # type: ignore[attr-defined]
        async with self.database.reading() as connection:
            rows = await connection.execute(select(table).order_by(table.c.id))
            return [
                {
                    "id": r.id,
                    "status": r.status,
                    "payload": r.payload,
                    "attempts": r.attempts,
                    "error": r.last_error,
                    "due_at": r.due_at,
                }
                for r in rows
            ]

    async def version(self, conversation_id: int) -> int:
        if self.database is None:
            return self.memory.data.conversations[conversation_id].version
        table = ConversationRow.__table__  # type: ignore[attr-defined]
        async with self.database.reading() as connection:
            query = select(table.c.version).where(table.c.id == conversation_id)
            return int((await connection.execute(query)).scalar_one())


@asynccontextmanager
async def open_backend(kind: str, tmp_path: Path) -> AsyncIterator[Backend]:
    if kind == "memory":
        yield Backend(kind, None)
        return
    async with fresh_database(kind, tmp_path) as database:
        backend = Backend(kind, database)
        try:
            yield backend
        finally:
            await backend.close()
