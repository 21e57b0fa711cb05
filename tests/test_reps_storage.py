"""storage/reps.py on real SQLite and PostgreSQL: migration 0004 matches the tables, reps,
sessions, API keys, and failed-login counts that hold when attempts arrive at once."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError

from storage.db import Database
from storage.reps import RepExistsError, SqlReps
from storage.tables import LoginFailureRow, RepRow
from tests.conftest import NOW
from tests.schema_drift import schema_differences, table_of
from webhooks.console.throttle import FORGET_AFTER, wait_after

MINE = {"reps", "rep_sessions", "api_keys", "login_failures"}
REPS = RepRow.__table__  # type: ignore[attr-defined]
FAILURES = LoginFailureRow.__table__  # type: ignore[attr-defined]


async def test_migration_0004_creates_exactly_the_tables_of_the_models(database: Database) -> None:
    found = await schema_differences(database)
    assert [diff for diff in found if table_of(diff, MINE) in MINE] == []


async def test_a_reps_email_is_stored_lower_case_and_only_once(database: Database) -> None:
    reps = SqlReps(database)
    ana = await reps.add(" Ana@Example.COM", "Ana", "admin", "hash", NOW)
    assert ana.email == "ana@example.com"
    assert ana.has_role("admin")
    assert ana.has_role("rep")
    with pytest.raises(RepExistsError, match=r"ana@example\.com"):
        await reps.add("ANA@example.com", "Other Ana", "rep", "hash", NOW)
    with pytest.raises(ValueError, match="unknown role"):
        await reps.add("bea@example.com", "Bea", "owner", "hash", NOW)
    assert [rep.email for rep in await reps.all()] == ["ana@example.com"]
    found = await reps.credentials("ANA@EXAMPLE.COM")
    assert found is not None
    assert found[1] == "hash"


async def test_a_telegram_user_is_linked_to_one_rep_at_most(database: Database) -> None:
    reps = SqlReps(database)
    ana = await reps.add("ana@example.com", "Ana", "rep", "h", NOW)
    bea = await reps.add("bea@example.com", "Bea", "rep", "h", NOW)
    big = 7_000_000_000  # Telegram user ids outgrow 32 bits
    async with database.writing() as connection:
        statement = update(REPS).where(REPS.c.id == ana.id).values(telegram_user_id=big)
        await connection.execute(statement)
        await connection.commit()
    found = await reps.by_id(ana.id)
    assert found is not None
    assert found.telegram_user_id == big
    async with database.writing() as connection:
        statement = update(REPS).where(REPS.c.id == bea.id).values(telegram_user_id=big)
        with pytest.raises(IntegrityError):
            await connection.execute(statement)


async def test_sessions_go_with_their_rep_and_their_time(database: Database) -> None:
    reps = SqlReps(database)
    ana = await reps.add("ana@example.com", "Ana", "rep", "h", NOW)
    week = timedelta(days=7)
    idle = NOW - timedelta(hours=12)
    await reps.open_session("s1", ana.id, "c1", NOW, expires_at=NOW + week, idle_since=idle)
    session = await reps.session("s1")
    assert session is not None
    assert (session.rep.id, session.csrf_token, session.last_seen_at) == (ana.id, "c1", NOW)
    await reps.touch_session("s1", NOW + timedelta(minutes=5))
    touched = await reps.session("s1")
    assert touched is not None
    assert touched.last_seen_at == NOW + timedelta(minutes=5)
    # A login later on, after s1 was idle too long, clears it away.
    later = NOW + timedelta(days=1)
    await reps.open_session(
        "s2", ana.id, "c2", later, expires_at=later + week, idle_since=later - timedelta(hours=12)
    )
    assert await reps.session("s1") is None
    assert await reps.session("s2") is not None
    disabled = await reps.set_disabled("ana@example.com", True)
    assert disabled is not None
    assert disabled.disabled
    assert await reps.session("s2") is None
    assert await reps.set_disabled("nobody@example.com", True) is None


async def test_a_revoked_key_keeps_its_first_revocation_time(database: Database) -> None:
    reps = SqlReps(database)
    key = await reps.add_key("zap", "abcdefgh", "0" * 64, None, NOW)
    first = await reps.revoke_key(key.id, NOW + timedelta(hours=1))
    again = await reps.revoke_key(key.id, NOW + timedelta(hours=2))
    assert first is not None
    assert again is not None
    assert first.revoked_at == again.revoked_at == NOW + timedelta(hours=1)
    assert await reps.revoke_key(key.id + 1, NOW) is None
    found = await reps.key_by_hash("0" * 64)
    assert found is not None
    assert found.revoked_at == NOW + timedelta(hours=1)


async def test_attempts_made_at_once_are_counted_in_turn(database: Database) -> None:
    """Ten attempts at the same moment: three go ahead, seven wait (none is lost or doubled)."""
    reps = SqlReps(database)
    keys = ["email:ana@example.com", "addr:203.0.113.9"]

    async def attempt() -> timedelta:
        return await reps.count_login_attempt(
            keys, NOW, wait_after=wait_after, forget_after=FORGET_AFTER
        )

    waits = await asyncio.gather(*(attempt() for _ in range(10)))
    assert sorted(waits) == [timedelta(0)] * 3 + [timedelta(seconds=5)] * 7
    async with database.reading() as connection:
        rows = (await connection.execute(select(FAILURES).order_by(FAILURES.c.key))).all()
    assert [(row.key, row.failures) for row in rows] == [(keys[1], 3), (keys[0], 3)]


async def test_attempts_sharing_some_keys_do_not_deadlock(database: Database) -> None:
    reps = SqlReps(database)
    pairs = [
        [f"email:{email}@example.com", f"addr:{address}"]
        for email in ("a", "b", "c")
        for address in ("1", "2", "3")
    ]

    async def attempt(keys: list[str], reverse: bool) -> timedelta:
        return await reps.count_login_attempt(
            keys[::-1] if reverse else keys,
            NOW,
            wait_after=lambda failures: timedelta(0),
            forget_after=FORGET_AFTER,
        )

    jobs = [attempt(keys, reverse) for keys in pairs * 3 for reverse in (False, True)]
    assert set(await asyncio.wait_for(asyncio.gather(*jobs), timeout=30)) == {timedelta(0)}
    async with database.reading() as connection:
        counts = dict((await connection.execute(select(FAILURES.c.key, FAILURES.c.failures))).all())
    assert counts["addr:1"] == counts["email:a@example.com"] == 3 * 3 * 2


async def test_success_forgets_the_email_and_takes_back_one_attempt(database: Database) -> None:
    reps = SqlReps(database)
    email, address = "email:ana@example.com", "addr:203.0.113.9"
    for _ in range(2):
        await reps.count_login_attempt(
            [email, address], NOW, wait_after=wait_after, forget_after=FORGET_AFTER
        )
    async with database.writing() as connection:
        stale = {"key": "addr:198.51.100.1", "failures": 9, "last_at": NOW - timedelta(hours=2)}
        await connection.execute(insert(FAILURES).values(stale))
        await connection.commit()
    await reps.login_succeeded(forget=[email], uncount=[address])
    await reps.forget_login_failures(NOW - FORGET_AFTER)
    async with database.reading() as connection:
        rows = (await connection.execute(select(FAILURES.c.key, FAILURES.c.failures))).all()
    assert [tuple(row) for row in rows] == [(address, 1)]
