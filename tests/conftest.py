"""Shared helpers: scripts from text, a fixed clock, and a guard against real network access."""

from __future__ import annotations

import ipaddress
import os
import socket
import textwrap
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine

from bot.compiled import CompiledScript
from bot.loader import load_script
from storage.db import Database, connect
from storage.migrate import upgrade

NOW = datetime(2026, 1, 5, 10, 0, tzinfo=UTC)  # a Monday


def script_from(source: str) -> CompiledScript:
    return load_script(textwrap.dedent(source), "test.yaml")


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@pytest.fixture(autouse=True)
def _no_leadbot_settings_from_outside(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests build their settings themselves: a LEADBOT_... variable in the shell must not leak
    into them (the PostgreSQL URL for tests is the one exception)."""
    for name in list(os.environ):
        if name.startswith("LEADBOT_") and name != POSTGRES_URL_VARIABLE:
            monkeypatch.delenv(name)


@pytest.fixture(autouse=True)
def _loopback_only(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Fail any test that tries to reach a non-loopback address."""
    real_connect = socket.socket.connect

    def connect(self: socket.socket, address: Any) -> Any:
        if isinstance(address, tuple) and not _is_loopback(str(address[0])):
            raise RuntimeError(f"test tried to reach {address[0]!r}: only loopback is allowed")
        return real_connect(self, address)

    monkeypatch.setattr(socket.socket, "connect", connect)
    return


# -- databases -----------------------------------------------------------------------------

POSTGRES_URL_VARIABLE = "LEADBOT_TEST_POSTGRES_URL"


def postgres_url() -> str | None:
    return os.environ.get(POSTGRES_URL_VARIABLE) or None


@asynccontextmanager
async def fresh_database(kind: str, tmp_path: Path) -> AsyncIterator[Database]:
    """A migrated, empty database: a SQLite file, or a PostgreSQL schema of its own."""
    if kind == "sqlite":
        database = connect(f"sqlite+aiosqlite:///{tmp_path / 'leadbot.db'}")
        await upgrade(database)
        try:
            yield database
        finally:
            await database.dispose()
        return
    url = postgres_url()
    if url is None:
        pytest.skip(f"PostgreSQL tests need {POSTGRES_URL_VARIABLE} (CI sets it)")
    schema = f"test_{uuid.uuid4().hex[:12]}"
    admin = connect(url)
    async with admin.engine.begin() as connection:
        await connection.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
    database = connect(url, schema=schema)
    try:
        await upgrade(database)
        yield database
    finally:
        await database.dispose()
        async with admin.engine.begin() as connection:
            await connection.exec_driver_sql(f'DROP SCHEMA "{schema}" CASCADE')
        await admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
async def database(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Database]:
    async with fresh_database(request.param, tmp_path) as db:
        yield db


class FakeClock:
    """A clock that moves only when told to."""

    def __init__(self, start: datetime = NOW) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """In CI the PostgreSQL tests may not skip: a missing database is a failure there."""
    if os.environ.get("CI") and postgres_url() is None:
        raise pytest.UsageError(f"CI is set but {POSTGRES_URL_VARIABLE} is not")


@pytest.fixture
async def sqlite_engine(tmp_path: Path) -> AsyncIterator[Engine]:
    """A migrated SQLite file, opened the way the SQLite writer thread opens it (pysqlite)."""
    async with fresh_database("sqlite", tmp_path):
        pass
    opened = create_engine(f"sqlite:///{tmp_path / 'leadbot.db'}")
    yield opened
    opened.dispose()
