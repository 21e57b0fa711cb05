"""Small SQL helpers that differ between SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

from sqlalchemy import Connection, Insert, Table, insert
from sqlalchemy.dialects import postgresql, sqlite

from storage.prepared import execute


def ignoring_conflict(dialect: str, table: Table) -> Insert:
    """INSERT ... ON CONFLICT DO NOTHING, in the dialect named (`connection.dialect.name`)."""
    if dialect == "postgresql":
        return postgresql.insert(table).on_conflict_do_nothing()
    return sqlite.insert(table).on_conflict_do_nothing()


# Statements built once and run with parameters (on SQLite's driver: storage.prepared), where
# `.values(**row)` per call would compile anew (a third of a lead's insert time).
_CACHE: dict[tuple[str, str, bool, bool], Insert] = {}


def _cached_insert(dialect: str, table: Table, *, conflict: bool, returning: bool) -> Insert:
    key = (dialect, table.name, conflict, returning)
    statement = _CACHE.get(key)
    if statement is None:
        statement = ignoring_conflict(dialect, table) if conflict else insert(table)
        if returning:
            statement = statement.returning(table.c.id)
        _CACHE[key] = statement
    return statement


def insert_ignoring_conflict(
    connection: Connection, table: Table, values: Mapping[str, Any]
) -> bool:
    """INSERT ... ON CONFLICT DO NOTHING; True when the row was inserted."""
    statement = _cached_insert(connection.dialect.name, table, conflict=True, returning=False)
    return bool(execute(connection, statement, values).rowcount)


def insert_returning_id(
    connection: Connection, table: Table, values: Mapping[str, Any]
) -> int | None:
    """INSERT ... ON CONFLICT DO NOTHING (RETURNING id): the new id, or None on a conflict."""
    return _inserted_id(connection, table, values, conflict=True)


def insert_row(connection: Connection, table: Table, values: Mapping[str, Any]) -> int:
    """INSERT (RETURNING id): the new row's id. A conflict raises, as `insert()` does."""
    new_id = _inserted_id(connection, table, values, conflict=False)
    if new_id is None:  # an INSERT without ON CONFLICT inserts its row or raises
        raise RuntimeError(f"INSERT INTO {table.name} inserted nothing")
    return new_id


def _inserted_id(
    connection: Connection, table: Table, values: Mapping[str, Any], *, conflict: bool
) -> int | None:
    dialect = connection.dialect.name
    if dialect == "sqlite":
        # The cursor's lastrowid, as SQLAlchemy reads it on SQLite: RETURNING would cost SQLite
        # a second pass over the row (17 against 10 us an insert).
        statement = _cached_insert(dialect, table, conflict=conflict, returning=False)
        result = execute(connection, statement, values)
        return result.lastrowid if result.rowcount == 1 else None
    statement = _cached_insert(dialect, table, conflict=conflict, returning=True)
    row = execute(connection, statement, values).first()
    return int(row[0]) if row is not None else None


def fitting(value: str, limit: int) -> str:
    """An id that fits its column: a longer one becomes a hash of itself, still unique."""
    if len(value) <= limit:
        return value
    return "sha256:" + hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()
