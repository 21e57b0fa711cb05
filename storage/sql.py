"""Small SQL helpers that differ between SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Insert, Table, insert
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError


def ignoring_conflict(dialect: str, table: Table) -> Insert:
    """INSERT ... ON CONFLICT DO NOTHING, in the dialect named (`connection.dialect.name`)."""
    if dialect == "postgresql":
        return postgresql.insert(table).on_conflict_do_nothing()
    return sqlite.insert(table).on_conflict_do_nothing()


# Statements built once and run with parameters: SQLAlchemy then reuses their compiled form,
# where `.values(**row)` per call would compile anew (a third of a lead's insert time).
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
    if connection.dialect.driver == "pysqlite":  # the SQLite writer thread's connections
        prepared = _prepared_sqlite_insert(connection, table, tuple(values), conflict=True)
        if prepared is not None:
            return prepared.run(connection, values) is not None
    statement = _cached_insert(connection.dialect.name, table, conflict=True, returning=False)
    result = connection.execute(statement, dict(values))
    return bool(result.rowcount)


def insert_returning_id(
    connection: Connection, table: Table, values: Mapping[str, Any]
) -> int | None:
    """INSERT ... ON CONFLICT DO NOTHING (RETURNING id): the new id, or None on a conflict."""
    if connection.dialect.driver == "pysqlite":
        prepared = _prepared_sqlite_insert(connection, table, tuple(values), conflict=True)
        if prepared is not None:
            return prepared.run(connection, values)
    statement = _cached_insert(connection.dialect.name, table, conflict=True, returning=True)
    new_id = connection.execute(statement, dict(values)).scalar()
    return int(new_id) if new_id is not None else None


def insert_row(connection: Connection, table: Table, values: Mapping[str, Any]) -> int:
    """INSERT (RETURNING id): the new row's id. A conflict raises, as `insert()` does."""
    if connection.dialect.driver == "pysqlite":
        prepared = _prepared_sqlite_insert(connection, table, tuple(values), conflict=False)
        if prepared is not None:
            new_id = prepared.run(connection, values)
            if new_id is None:  # an INSERT without ON CONFLICT inserts its row or raises
                raise RuntimeError(f"INSERT INTO {table.name} inserted nothing")
            return new_id
    statement = _cached_insert(connection.dialect.name, table, conflict=False, returning=True)
    return int(connection.execute(statement, dict(values)).scalar_one())


@dataclass(frozen=True, slots=True)
class _SqliteInsert:
    """An INSERT as SQLAlchemy compiles it, with the bind processors its column types give
    (JSON to text, aware datetimes to SQLite's UTC text), run on the driver's own connection;
    the new row's id is the cursor's `lastrowid`, as SQLAlchemy reads it on SQLite. The same
    statement and the same stored values, without SQLAlchemy's work per execution, which cost
    more than SQLite's work on the row (a lead's insert went from about 70 to 30 us of CPU; a
    transcript line's from about 280 us built with `.values()` to 15 us). It runs inside the
    SQLAlchemy connection's transaction, on its driver connection."""

    sql: str
    # Each parameter in the statement's order, with its type's bind processor, if any.
    columns: tuple[tuple[str, Callable[[Any], Any] | None], ...]

    def run(self, connection: Connection, values: Mapping[str, Any]) -> int | None:
        parameters = [
            values[name] if process is None else process(values[name])
            for name, process in self.columns
        ]
        driver = connection.connection.driver_connection
        if not isinstance(driver, sqlite3.Connection):
            raise TypeError(f"expected a sqlite3 connection, not {type(driver).__name__}")
        try:
            cursor = driver.execute(self.sql, parameters)
        except sqlite3.Error as error:
            # The same exception SQLAlchemy would raise, parameters hidden as the engine says.
            raise DBAPIError.instance(
                self.sql,
                None,
                error,
                sqlite3.Error,
                hide_parameters=True,
                dialect=connection.dialect,
            ) from error
        # One step of the statement (RETURNING would take a second one to read the id).
        return cursor.lastrowid if cursor.rowcount == 1 else None


# None: SQLAlchemy would add values of its own (column defaults), so it runs the insert.
_SQLITE_INSERTS: dict[tuple[str, tuple[str, ...], bool], _SqliteInsert | None] = {}


def _prepared_sqlite_insert(
    connection: Connection, table: Table, names: tuple[str, ...], *, conflict: bool = True
) -> _SqliteInsert | None:
    key = (table.name, names, conflict)
    if key in _SQLITE_INSERTS:
        return _SQLITE_INSERTS[key]
    dialect = connection.dialect
    statement = ignoring_conflict("sqlite", table) if conflict else insert(table)
    compiled = statement.compile(dialect=dialect, column_keys=list(names))
    order = tuple(compiled.positiontup or ())
    prepared = None
    if sorted(order) == sorted(names):
        prepared = _SqliteInsert(
            compiled.string,
            tuple(
                (name, table.c[name].type.dialect_impl(dialect).bind_processor(dialect))
                for name in order
            ),
        )
    _SQLITE_INSERTS[key] = prepared
    return prepared


def fitting(value: str, limit: int) -> str:
    """An id that fits its column: a longer one becomes a hash of itself, still unique."""
    if len(value) <= limit:
        return value
    return "sha256:" + hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()
