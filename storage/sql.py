"""Small SQL helpers that differ between SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

from sqlalchemy import Connection, Insert, Table
from sqlalchemy.dialects import postgresql, sqlite


def _ignoring_conflict(dialect: str, table: Table) -> Insert:
    if dialect == "postgresql":
        return postgresql.insert(table).on_conflict_do_nothing()
    return sqlite.insert(table).on_conflict_do_nothing()


# Statements built once and run with parameters: SQLAlchemy then reuses their compiled form,
# where `.values(**row)` per call would compile anew (a third of a lead's insert time).
_CACHE: dict[tuple[str, str, bool], Insert] = {}


def insert_ignoring_conflict(
    connection: Connection, table: Table, values: Mapping[str, Any]
) -> bool:
    """INSERT ... ON CONFLICT DO NOTHING; True when the row was inserted."""
    key = (connection.dialect.name, table.name, False)
    statement = _CACHE.get(key)
    if statement is None:
        statement = _CACHE[key] = _ignoring_conflict(connection.dialect.name, table)
    result = connection.execute(statement, dict(values))
    return bool(result.rowcount)


def insert_returning_id(
    connection: Connection, table: Table, values: Mapping[str, Any]
) -> int | None:
    """INSERT ... ON CONFLICT DO NOTHING RETURNING id: the new id, or None on a conflict."""
    key = (connection.dialect.name, table.name, True)
    statement = _CACHE.get(key)
    if statement is None:
        statement = _ignoring_conflict(connection.dialect.name, table).returning(table.c.id)
        _CACHE[key] = statement
    new_id = connection.execute(statement, dict(values)).scalar()
    return int(new_id) if new_id is not None else None


def fitting(value: str, limit: int) -> str:
    """An id that fits its column: a longer one becomes a hash of itself, still unique."""
    if len(value) <= limit:
        return value
    return "sha256:" + hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()
