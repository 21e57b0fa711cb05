"""The statements a turn runs, executed on SQLite without SQLAlchemy's work per execution.

A statement built once at import (`storage/conversations.py` and its neighbours) still costs
SQLAlchemy a cache-key walk, an execution context, parameter processing and a result object on
every execution: under load that was 18% of the server's CPU, more than SQLite's own work on
the rows (14%). On the SQLite writer's connections `execute` compiles such a statement once per
set of parameter names, with the bind and result processors its column types give (JSON to
text, aware datetimes to SQLite's UTC text and back), and then runs it on the driver's own
connection, inside the SQLAlchemy connection's transaction. The SQL and the stored values are
SQLAlchemy's own; only the bookkeeping per call is skipped. Elsewhere (PostgreSQL, aiosqlite)
the statement goes through `Connection.execute` unchanged.

Only for statements built once: the compiled form is kept for the statement object."""

from __future__ import annotations

import keyword
import sqlite3
from collections import namedtuple
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy import Connection
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql.base import Executable
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import BindParameter, ClauseElement

Processor = Callable[[Any], Any] | None


class Rows(Protocol):
    """What the callers read of a result: SQLAlchemy's `CursorResult` offers it too."""

    @property
    def rowcount(self) -> int: ...

    @property
    def lastrowid(self) -> int | None: ...

    def first(self) -> Any: ...

    def scalars(self) -> Any: ...

    def __iter__(self) -> Iterator[Any]: ...


def execute(connection: Connection, statement: Executable, parameters: Mapping[str, Any]) -> Rows:
    """Run `statement` (built once, at import) with `parameters`, as `Connection.execute`
    would, returning rows with the same attribute names and values."""
    if connection.dialect.driver == "pysqlite":
        prepared = _prepared(statement, tuple(parameters), connection.dialect)
        if prepared is not None:
            return prepared.run(connection, parameters)
    return connection.execute(statement, dict(parameters))


class _Ran:
    """A result read whole (a plain class: a frozen dataclass's __init__ cost a turn more)."""

    __slots__ = ("lastrowid", "rowcount", "rows")

    def __init__(self, rows: list[Any], rowcount: int, lastrowid: int | None) -> None:
        self.rows = rows
        self.rowcount = rowcount
        self.lastrowid = lastrowid

    def first(self) -> Any:
        return self.rows[0] if self.rows else None

    def scalars(self) -> list[Any]:
        return [row[0] for row in self.rows]

    def __iter__(self) -> Iterator[Any]:
        return iter(self.rows)


@dataclass(frozen=True, slots=True)
class _Prepared:
    sql: str
    # Each parameter in the statement's order: its name and its type's bind processor.
    binds: tuple[tuple[str, Processor], ...]
    literals: dict[str, Any]  # the statement's own values, for the names the caller leaves out
    row: Callable[..., Any] | None  # a named tuple of the result's columns; None: no rows
    results: tuple[Processor, ...]

    def run(self, connection: Connection, parameters: Mapping[str, Any]) -> _Ran:
        given = {**self.literals, **parameters} if self.literals else parameters
        values = [
            given[name] if process is None else process(given[name]) for name, process in self.binds
        ]
        driver = connection.connection.driver_connection
        if not isinstance(driver, sqlite3.Connection):
            raise TypeError(f"expected a sqlite3 connection, not {type(driver).__name__}")
        try:
            cursor = driver.execute(self.sql, values)
            raw = cursor.fetchall() if self.row is not None else []
        except sqlite3.Error as error:
            # The exception SQLAlchemy would raise, parameters hidden as the engine says.
            raise DBAPIError.instance(
                self.sql,
                None,
                error,
                sqlite3.Error,
                hide_parameters=True,
                dialect=connection.dialect,
            ) from error
        rows = [self._row(values) for values in raw] if raw else raw
        return _Ran(rows, cursor.rowcount, cursor.lastrowid)

    def _row(self, raw: Sequence[Any]) -> Any:
        assert self.row is not None
        return self.row(
            *(
                value if process is None or value is None else process(value)
                for value, process in zip(raw, self.results, strict=True)
            )
        )


# Per statement object (kept here, so its id is never reused), per set of parameter names.
_CACHE: dict[int, tuple[Executable, dict[tuple[str, ...], _Prepared | None]]] = {}


def _prepared(statement: Executable, names: tuple[str, ...], dialect: Dialect) -> _Prepared | None:
    shapes = _CACHE.get(id(statement))
    if shapes is None:
        shapes = _CACHE[id(statement)] = (statement, {})
    # The names in the order given: each caller builds its parameters the same way each time,
    # and sorting them on every call would cost more than a second entry for another order.
    compiled = shapes[1]
    found = compiled.get(names)
    if found is None and names not in compiled:  # None is kept too: SQLAlchemy runs those
        found = compiled[names] = _compile(statement, names, dialect)
    return found


def _compile(statement: Executable, names: tuple[str, ...], dialect: Dialect) -> _Prepared | None:
    """None for what this path does not cover (expanding IN, literal-execute parameters, a
    missing value, column defaults to compute, unnamed or repeated result columns): such
    statements run through SQLAlchemy, which raises its own error for a missing value."""
    assert isinstance(statement, ClauseElement)
    compiled = statement.compile(dialect=dialect, column_keys=list(names))
    if not isinstance(compiled, SQLCompiler):
        return None
    if compiled.insert_prefetch or compiled.update_prefetch:
        return None  # column defaults SQLAlchemy computes per row (an insert leaving them out)
    binds: list[tuple[str, Processor]] = []
    literals: dict[str, Any] = {}
    for name in compiled.positiontup or ():
        bind: BindParameter[Any] = compiled.binds[name]
        if bind.expanding or bind.literal_execute:
            return None
        if name not in names:
            if bind.required or bind.callable is not None:
                return None
            literals[name] = bind.value
        binds.append((name, bind.type.dialect_impl(dialect).bind_processor(dialect)))
    columns = list(getattr(statement, "exported_columns", ()))
    row: Callable[..., Any] | None = None
    if columns:
        keys = [column.key for column in columns]
        if len(set(keys)) != len(keys) or not all(map(_attribute_name, keys)):
            return None
        row = _row_type(keys)
    results = tuple(
        column.type.dialect_impl(dialect).result_processor(dialect, None) for column in columns
    )
    return _Prepared(compiled.string, tuple(binds), literals, row, results)


def _row_type(keys: list[str]) -> Callable[..., Any]:
    """A named tuple of these columns: rows read as SQLAlchemy's do (`row.id`, `row[0]`)."""
    return namedtuple("Row", keys)


def _attribute_name(key: str) -> bool:
    """Whether a column's key can be a named tuple's field, as SQLAlchemy's rows offer it."""
    return key.isidentifier() and not keyword.iskeyword(key) and not key.startswith("_")
