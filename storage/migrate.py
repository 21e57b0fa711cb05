"""Schema migrations with Alembic, shipped inside the package."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection

from storage.db import Database
from storage.errors import SchemaOutdatedError

MIGRATIONS = Path(__file__).parent / "migrations"


def _config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


def head_revision() -> str | None:
    return ScriptDirectory.from_config(_config()).get_current_head()


async def current_revision(database: Database) -> str | None:
    def read(connection: Connection) -> str | None:
        return MigrationContext.configure(connection).get_current_revision()

    async with database.reading() as connection:
        return await connection.run_sync(read)


async def upgrade(database: Database, revision: str = "head") -> None:
    def run(connection: Connection) -> None:
        command.upgrade(_config(connection), revision)

    async with database.writing() as connection:
        await connection.run_sync(run)
        await connection.commit()


async def ensure_current(database: Database, *, auto_upgrade: bool) -> None:
    """Upgrade an embedded database; refuse to run a shared one on an old schema."""
    if await current_revision(database) == head_revision():
        return
    if auto_upgrade:
        await upgrade(database)
        return
    raise SchemaOutdatedError(
        f"the database schema is at {await current_revision(database) or 'nothing'}, "
        f"leadbot needs {head_revision()}: run `leadbot db upgrade` first"
    )
