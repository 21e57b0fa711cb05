"""The database engine: SQLite (WAL, busy timeout, foreign keys) or PostgreSQL (asyncpg)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

DEFAULT_URL = "sqlite+aiosqlite:///leadbot.db"
READ_ONLY = "leadbot_read_only"  # execution option: this connection only reads
SQLITE_BUSY_TIMEOUT_MS = 5000


def is_sqlite(url: str | URL) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


@dataclass
class Database:
    """An engine for reads, migrations and exports (turns write through
    storage.transactions.SqlStorage), and on SQLite a gate that queues this engine's writers."""

    engine: AsyncEngine
    url: str
    schema: str | None = None
    # SQLite allows one writer. Waiting for the file lock inside SQLite means sleeping in its
    # busy handler (up to 100 ms a nap); queueing writers here, in order, is far faster.
    write_gate: asyncio.Lock | None = field(default=None)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @asynccontextmanager
    async def writing(self) -> AsyncIterator[AsyncConnection]:
        """A connection in a write transaction (committed by the caller, else rolled back)."""
        if self.write_gate is None:
            async with self.engine.connect() as connection:
                yield connection
            return
        async with self.write_gate, self.engine.connect() as connection:
            yield connection

    @asynccontextmanager
    async def reading(self) -> AsyncIterator[AsyncConnection]:
        """A connection for reads only; on SQLite it never waits for the write lock."""
        async with self.engine.connect() as connection:
            await connection.execution_options(**{READ_ONLY: True})
            yield connection

    async def dispose(self) -> None:
        await self.engine.dispose()


def connect(url: str, *, schema: str | None = None, echo: bool = False) -> Database:
    """Create the engine for `url`; `schema` puts PostgreSQL tables in that schema (tests)."""
    parsed = make_url(url)
    # hide_parameters: an error's message then never carries a lead's phone, email or name.
    options: dict[str, Any] = {"echo": echo, "hide_parameters": True}
    if is_sqlite(parsed):
        options["connect_args"] = {"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000}
        engine = create_async_engine(parsed, **options)
        _configure_sqlite(engine)
        return Database(engine, url, write_gate=asyncio.Lock())
    if schema is not None:
        options["connect_args"] = {"server_settings": {"search_path": schema}}
    options.update(pool_size=10, max_overflow=10, pool_pre_ping=True)
    return Database(create_async_engine(parsed, **options), url, schema)


def configure_sqlite_connection(dbapi_connection: Any) -> None:
    # Let SQLAlchemy's "begin" event start transactions, so that writers say BEGIN IMMEDIATE:
    # the write lock is taken up front, never upgraded in the middle of a transaction.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA foreign_keys=ON")
    # FULL: a commit is on disk (fsync) before it returns, so an acknowledged lead survives a
    # power cut too; grouped commits (storage/transactions.py) pay that once per group.
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.close()


def _configure_sqlite(engine: AsyncEngine) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        configure_sqlite_connection(dbapi_connection)

    @event.listens_for(engine.sync_engine, "begin")
    def on_begin(connection: Any) -> None:
        # Readers (export, health checks) must not queue behind writers: plain BEGIN for them.
        read_only = connection.get_execution_options().get(READ_ONLY, False)
        connection.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")
