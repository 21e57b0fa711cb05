"""storage.sql on the SQLite writer's connections: the insert run on the driver
(storage.prepared) stores what SQLAlchemy's own statement stores, answers the same ids, and
fails the same way."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import Engine, insert
from sqlalchemy.exc import IntegrityError

from storage.leads import T
from storage.prepared import _prepared
from storage.sql import _cached_insert, insert_returning_id, insert_row
from tests.conftest import NOW

MADRID = timezone(timedelta(hours=1))
VALUES: dict[str, Any] = {
    "source": "api:zapier",
    "script_id": "car-test-drive",
    "is_test": True,
    "fields": {"first_name": "Ana", "last_name": "García 🚗", "budget": "10k"},
    "raw": {"id": "z-1", "nested": {"list": [1, 2.5, None, True]}, "text": 'a "quote"'},
    "attribution": {"campaign_id": "1700000000000000001"},
    "phone": "+34612345678",
    "email": "ana@example.com",
    "language": "es",
    "consent_text": "I agree",
    "consent_at": datetime(2026, 1, 5, 11, 0, 0, 123456, tzinfo=MADRID),
    "answers": {},
    "reasons": [],
    "submitted_at": NOW,
    "updated_at": datetime.now(UTC),
}


def lead(external_id: str, reference: str, **changes: Any) -> dict[str, Any]:
    return {**VALUES, "external_id": external_id, "reference": reference, **changes}


def test_the_driver_insert_stores_what_sqlalchemy_stores(sqlite_engine: Engine) -> None:
    assert sqlite_engine.dialect.driver == "pysqlite"  # the path under test
    with sqlite_engine.begin() as connection:
        statement = _cached_insert("sqlite", T, conflict=True, returning=True)
        names = tuple(lead("fast", "FAST23"))
        assert _prepared(statement, names, connection.dialect) is not None
        new_id = insert_returning_id(connection, T, lead("fast", "FAST23"))
        statement = insert(T).values(**lead("slow", "SLOW23")).returning(T.c.id)
        slow_id = connection.execute(statement).scalar_one()
        rows = {
            row["external_id"]: dict(row)
            for row in connection.exec_driver_sql("SELECT * FROM leads").mappings()
        }
    assert new_id == rows["fast"]["id"] != slow_id
    fast, slow = rows["fast"], rows["slow"]
    for key in ("id", "external_id", "reference"):
        del fast[key], slow[key]
    assert fast == slow  # the text SQLite holds, column by column


def test_a_conflict_on_either_key_answers_none(sqlite_engine: Engine) -> None:
    with sqlite_engine.begin() as connection:
        first = insert_returning_id(connection, T, lead("z-1", "REF234"))
        again = insert_returning_id(connection, T, lead("z-1", "REF567"))
        taken = insert_returning_id(connection, T, lead("z-2", "REF234"))
        later = insert_returning_id(connection, T, lead("z-3", "REF789"))
    assert first is not None
    assert (again, taken) == (None, None)
    assert later is not None
    assert later > first


def test_a_driver_error_is_sqlalchemys_without_the_parameters(sqlite_engine: Engine) -> None:
    with sqlite_engine.begin() as connection, pytest.raises(IntegrityError) as caught:
        insert_returning_id(connection, T, lead("z-1", "REF234", source=None))
    assert "NOT NULL constraint failed: leads.source" in str(caught.value)
    assert "García" not in str(caught.value)
    assert "+34612345678" not in str(caught.value)


def test_an_insert_leaving_out_defaulted_columns_gets_their_defaults(sqlite_engine: Engine) -> None:
    """SQLAlchemy computes column defaults per row; such an insert is left to it."""
    values = {k: v for k, v in lead("z-9", "REF999").items() if k not in ("fields", "is_test")}
    statement = _cached_insert("sqlite", T, conflict=False, returning=True)
    with sqlite_engine.begin() as connection:
        assert _prepared(statement, tuple(values), connection.dialect) is None
        new_id = insert_row(connection, T, values)
        row = connection.exec_driver_sql(
            "SELECT fields, is_test FROM leads WHERE id = ?", (new_id,)
        ).one()
    assert tuple(row) == ("{}", 0)
