"""storage.prepared on the SQLite writer's connections: a statement run on the driver reads and
writes what SQLAlchemy's `Connection.execute` of the same statement does, and what the path does
not cover still runs, through SQLAlchemy."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Connection, Engine, bindparam, insert, select
from sqlalchemy.exc import IntegrityError, StatementError

from storage.bookkeeping import _CANCEL_ALL
from storage.conversations import _LOCK_LATEST_IN_CHAT, _SAVE, C
from storage.outbox import _DUE, _FINISH, O
from storage.prepared import _prepared, execute
from storage.tables import TimerRow
from tests.conftest import NOW

TIMERS = TimerRow.__table__  # type: ignore[attr-defined]
STATE = {"question": "budget", "answers": {"name": "José 🚗", "budget": 12000.5}, "ok": True}


def conversation(connection: Connection, chat: str, **changes: Any) -> int:
    values = {
        "lead_id": 1,
        "channel": "telegram",
        "channel_user_id": chat,
        "script_id": "solar",
        "script_version": "v1",
        "state": STATE,
        "status": "active",
        "mode": "bot",
        "version": 3,
        "last_inbound_at": NOW,
        "created_at": NOW - timedelta(minutes=5),
        "updated_at": NOW,
        **changes,
    }
    return int(connection.execute(insert(C).values(**values).returning(C.c.id)).scalar_one())


def stored(connection: Connection, table: str, row_id: int) -> dict[str, Any]:
    """The text SQLite holds for a row, column by column."""
    sql = f"SELECT * FROM {table} WHERE id = ?"
    row = connection.exec_driver_sql(sql, (row_id,)).mappings().one()
    return {key: value for key, value in row.items() if key != "id"}


def test_rows_read_as_sqlalchemys(sqlite_engine: Engine) -> None:
    where = {"b_channel": "telegram", "b_chat": "1001"}
    assert sqlite_engine.dialect.driver == "pysqlite"  # the path under test
    with sqlite_engine.begin() as connection:
        conversation(connection, "1001")
        newest = conversation(connection, "1001", lead_id=2, state=None, last_inbound_at=None)
        assert _prepared(_LOCK_LATEST_IN_CHAT, tuple(where), connection.dialect) is not None
        fast = execute(connection, _LOCK_LATEST_IN_CHAT, where).first()
        slow = connection.execute(_LOCK_LATEST_IN_CHAT, where).first()
        nobody = execute(connection, _LOCK_LATEST_IN_CHAT, {**where, "b_chat": "9"}).first()
    assert slow is not None
    assert fast == tuple(slow)  # the newest of the chat, ORDER BY and LIMIT kept
    assert (fast.id, fast.state, fast.last_inbound_at) == (newest, None, None)
    assert fast.created_at == NOW - timedelta(minutes=5)
    assert fast.created_at.tzinfo is not None  # aware, as UTCDateTime reads it
    assert nobody is None


def test_an_update_stores_what_sqlalchemys_stores(sqlite_engine: Engine) -> None:
    later = datetime(2026, 3, 29, 1, 30, tzinfo=UTC)
    changes = {"state": {**STATE, "question": "roof"}, "status": "done", "updated_at": later}
    with sqlite_engine.begin() as connection:
        fast_id, slow_id = conversation(connection, "1"), conversation(connection, "2")
        fast = execute(
            connection, _SAVE, {**changes, "version": 4, "b_id": fast_id, "b_version": 3}
        )
        slow = connection.execute(_SAVE, {**changes, "version": 4, "b_id": slow_id, "b_version": 3})
        stale = execute(
            connection, _SAVE, {**changes, "version": 5, "b_id": fast_id, "b_version": 3}
        )
        fast_row, slow_row = (
            stored(connection, "conversations", fast_id),
            stored(connection, "conversations", slow_id),
        )
    assert (fast.rowcount, slow.rowcount, stale.rowcount) == (1, 1, 0)  # the version guard
    assert fast_row.pop("channel_user_id") == "1"
    assert slow_row.pop("channel_user_id") == "2"
    assert fast_row == slow_row
    assert fast_row["version"] == 4


def test_the_statements_own_literals_go_with_it(sqlite_engine: Engine) -> None:
    """_DUE holds 'pending' and LIMIT's offset as literals; _FINISH sets its columns from the
    parameters' names; _CANCEL_ALL lists the kinds it keeps one parameter each."""
    with sqlite_engine.begin() as connection:
        ids = []
        for number, status in enumerate(("pending", "sent", "pending", "pending")):
            row = {
                "kind": "send_text",
                "idempotency_key": f"k{number}",
                "payload": {"chat": "1"},
                "conversation_id": 100 + number,
                "status": status,
                "due_at": NOW - timedelta(seconds=number),
                "attempts": 0,
                "created_at": NOW,
            }
            ids.append(connection.execute(insert(O).values(**row).returning(O.c.id)).scalar_one())
        due = {"b_now": NOW, "b_limit": 2}
        assert execute(connection, _DUE, due).scalars() == list(
            connection.execute(_DUE, due).scalars()
        )
        assert execute(connection, _DUE, due).scalars() == [ids[3], ids[2]]  # oldest due first
        sent = {"status": "sent", "provider_id": "77", "finished_at": NOW, "claimed_until": None}
        assert execute(connection, _FINISH, {**sent, "b_id": ids[3]}).rowcount == 1
        assert stored(connection, "outbox", ids[3])["provider_id"] == "77"
        for kind in ("reminder", "appointment_24h"):
            connection.execute(
                insert(TIMERS).values(conversation_id=7, kind=kind, seq=1, due_at=NOW)
            )
        assert execute(connection, _CANCEL_ALL, {"b_conversation": 7}).rowcount == 1
        left = connection.execute(select(TIMERS.c.kind).where(TIMERS.c.conversation_id == 7))
        assert list(left.scalars()) == ["appointment_24h"]


def test_what_it_does_not_cover_runs_through_sqlalchemy(sqlite_engine: Engine) -> None:
    expanding = select(C.c.id).where(C.c.channel_user_id.in_(bindparam("b_chats", expanding=True)))
    with sqlite_engine.begin() as connection:
        first, second = conversation(connection, "1"), conversation(connection, "2")
        assert _prepared(expanding, ("b_chats",), connection.dialect) is None
        found = execute(connection, expanding, {"b_chats": ["1", "2", "3"]}).scalars()
        assert sorted(found) == [first, second]
        with pytest.raises(StatementError, match="b_chat"):  # SQLAlchemy's own error
            execute(connection, _LOCK_LATEST_IN_CHAT, {"b_channel": "telegram"})


def test_a_driver_error_is_sqlalchemys_without_the_parameters(sqlite_engine: Engine) -> None:
    with sqlite_engine.begin() as connection:
        conversation(connection, "1")
        taken = conversation(connection, "2", lead_id=2)
        moved = {"lead_id": 1, "channel_user_id": "1", "b_id": taken}
        with pytest.raises(IntegrityError) as caught:
            execute(connection, _MOVE, moved)
    assert "UNIQUE constraint failed" in str(caught.value)
    assert "'1'" not in str(caught.value)


# Built once, as the path expects: a conversation's lead and chat changed by id.
_MOVE = C.update().where(C.c.id == bindparam("b_id"))
