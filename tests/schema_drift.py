"""What Alembic's autogenerate finds between the migrated database and the models: the
migration-drift tests of each feature read their own tables' share of it."""

from __future__ import annotations

from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection
from sqlmodel import SQLModel

from storage.db import Database


async def schema_differences(database: Database) -> list[Any]:
    """Every difference between the database as migrated and SQLModel.metadata."""

    def differences(connection: Connection) -> list[Any]:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return list(compare_metadata(context, SQLModel.metadata))

    async with database.reading() as connection:
        return await connection.run_sync(differences)


def table_of(diff: Any, tables: set[str]) -> str | None:
    """The table of `tables` a difference is about, if any."""
    if isinstance(diff, list):  # column modifications come as a list of tuples
        return table_of(diff[0], tables)
    for part in diff[1:]:
        table = getattr(part, "table", None)
        if table is not None:
            return str(table.name)
        name = getattr(part, "name", None)
        if isinstance(part, str) and part in tables:
            return part
        if name in tables:
            return str(name)
    return None
