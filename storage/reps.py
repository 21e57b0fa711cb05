"""Reps, their console sessions, API keys and failed logins: the console's own records.

These are web concerns, not conversation turns, so they use the Database directly rather than
bot.ports. Hashing passwords and keys, and deciding what is expired, is the caller's business:
this module stores and finds."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, select, update

from storage.crm_admin import remove_hooks_of_key
from storage.db import Database
from storage.errors import StorageError
from storage.sql import ignoring_conflict
from storage.tables import ApiKeyRow, LoginFailureRow, RepRow, RepSessionRow

R = RepRow.__table__  # type: ignore[attr-defined]
S = RepSessionRow.__table__  # type: ignore[attr-defined]
K = ApiKeyRow.__table__  # type: ignore[attr-defined]
F = LoginFailureRow.__table__  # type: ignore[attr-defined]

ROLES = ("rep", "admin")  # each role may do what the ones before it may


class RepExistsError(StorageError):
    """A rep with this email is already there."""


@dataclass(frozen=True, slots=True)
class Rep:
    id: int
    email: str
    name: str
    role: str
    disabled: bool
    telegram_user_id: int | None
    created_at: datetime

    def has_role(self, role: str) -> bool:
        return ROLES.index(self.role) >= ROLES.index(role)


@dataclass(frozen=True, slots=True)
class RepSession:
    id: str  # the SHA-256 of the cookie's token
    rep: Rep
    csrf_token: str
    created_at: datetime
    expires_at: datetime
    last_seen_at: datetime


@dataclass(frozen=True, slots=True)
class ApiKey:
    id: int
    name: str
    prefix: str
    created_by: int | None  # None: made with `leadbot apikey create` on the server
    created_at: datetime
    revoked_at: datetime | None


def _rep(row: Any, prefix: str = "") -> Rep:
    def get(name: str) -> Any:
        return getattr(row, prefix + name)

    return Rep(
        id=get("id"),
        email=get("email"),
        name=get("name"),
        role=get("role"),
        disabled=get("disabled"),
        telegram_user_id=get("telegram_user_id"),
        created_at=get("created_at"),
    )


def _key(row: Any) -> ApiKey:
    return ApiKey(row.id, row.name, row.prefix, row.created_by, row.created_at, row.revoked_at)


class SqlReps:
    def __init__(self, database: Database) -> None:
        self._database = database

    # -- reps ----------------------------------------------------------------------------------

    async def add(self, email: str, name: str, role: str, password_hash: str, now: datetime) -> Rep:
        if role not in ROLES:
            raise ValueError(f"unknown role {role!r}: use {' or '.join(ROLES)}")
        email = email.strip().lower()
        values = {
            "email": email,
            "name": name,
            "role": role,
            "password_hash": password_hash,
            "disabled": False,
            "created_at": now,
        }
        async with self._database.writing() as connection:
            statement = (
                ignoring_conflict(connection.dialect.name, R).values(values).returning(R.c.id)
            )
            new_id = (await connection.execute(statement)).scalar()
            if new_id is None:
                raise RepExistsError(f"a rep with the email {email} already exists")
            await connection.commit()
        return Rep(int(new_id), email, name, role, False, None, now)

    async def by_email(self, email: str) -> Rep | None:
        found = await self.credentials(email)
        return found[0] if found is not None else None

    async def by_id(self, rep_id: int) -> Rep | None:
        async with self._database.reading() as connection:
            row = (await connection.execute(select(R).where(R.c.id == rep_id))).first()
        return _rep(row) if row is not None else None

    async def credentials(self, email: str) -> tuple[Rep, str] | None:
        """The rep with this email and their password hash."""
        async with self._database.reading() as connection:
            query = select(R).where(R.c.email == email.strip().lower())
            row = (await connection.execute(query)).first()
        return (_rep(row), row.password_hash) if row is not None else None

    async def all(self) -> list[Rep]:
        async with self._database.reading() as connection:
            rows = await connection.execute(select(R).order_by(R.c.email))
            return [_rep(row) for row in rows]

    async def set_disabled(self, email: str, disabled: bool) -> Rep | None:
        """Disable (and log out everywhere) or enable a rep; None when there is no such rep."""
        async with self._database.writing() as connection:
            statement = (
                update(R)
                .where(R.c.email == email.strip().lower())
                .values(disabled=disabled)
                .returning(*R.c)
            )
            row = (await connection.execute(statement)).first()
            if row is None:
                return None
            if disabled:
                await connection.execute(delete(S).where(S.c.rep_id == row.id))
            await connection.commit()
        return _rep(row)

    async def set_password_hash(
        self, rep_id: int, password_hash: str, *, close_sessions: bool
    ) -> None:
        async with self._database.writing() as connection:
            statement = update(R).where(R.c.id == rep_id).values(password_hash=password_hash)
            await connection.execute(statement)
            if close_sessions:
                await connection.execute(delete(S).where(S.c.rep_id == rep_id))
            await connection.commit()

    # -- sessions ------------------------------------------------------------------------------

    async def open_session(
        self,
        session_id: str,
        rep_id: int,
        csrf_token: str,
        now: datetime,
        *,
        expires_at: datetime,
        idle_since: datetime,
    ) -> None:
        """Store a new session; sessions expired by `now`, or unused since `idle_since`, go."""
        async with self._database.writing() as connection:
            stale = (S.c.expires_at <= now) | (S.c.last_seen_at <= idle_since)
            await connection.execute(delete(S).where(stale))
            await connection.execute(
                S.insert().values(
                    id=session_id,
                    rep_id=rep_id,
                    csrf_token=csrf_token,
                    created_at=now,
                    expires_at=expires_at,
                    last_seen_at=now,
                )
            )
            await connection.commit()

    async def session(self, session_id: str) -> RepSession | None:
        """The session with this id, with its rep, unless the rep is disabled."""
        query = (
            select(S, *(column.label(f"r_{column.name}") for column in R.c))
            .join(R, R.c.id == S.c.rep_id)
            .where(S.c.id == session_id, R.c.disabled.is_(False))
        )
        async with self._database.reading() as connection:
            row = (await connection.execute(query)).first()
        if row is None:
            return None
        return RepSession(
            id=row.id,
            rep=_rep(row, "r_"),
            csrf_token=row.csrf_token,
            created_at=row.created_at,
            expires_at=row.expires_at,
            last_seen_at=row.last_seen_at,
        )

    async def touch_session(self, session_id: str, now: datetime) -> None:
        async with self._database.writing() as connection:
            statement = update(S).where(S.c.id == session_id).values(last_seen_at=now)
            await connection.execute(statement)
            await connection.commit()

    async def close_session(self, session_id: str) -> None:
        async with self._database.writing() as connection:
            await connection.execute(delete(S).where(S.c.id == session_id))
            await connection.commit()

    # -- API keys ------------------------------------------------------------------------------

    async def add_key(
        self, name: str, prefix: str, key_hash: str, created_by: int | None, now: datetime
    ) -> ApiKey:
        async with self._database.writing() as connection:
            statement = (
                K.insert()
                .values(
                    name=name,
                    prefix=prefix,
                    key_hash=key_hash,
                    created_by=created_by,
                    created_at=now,
                )
                .returning(K.c.id)
            )
            new_id = int((await connection.execute(statement)).scalar_one())
            await connection.commit()
        return ApiKey(new_id, name, prefix, created_by, now, None)

    async def key_by_hash(self, key_hash: str) -> ApiKey | None:
        async with self._database.reading() as connection:
            row = (await connection.execute(select(K).where(K.c.key_hash == key_hash))).first()
        return _key(row) if row is not None else None

    async def keys(self) -> list[ApiKey]:
        async with self._database.reading() as connection:
            return [_key(row) for row in await connection.execute(select(K).order_by(K.c.id))]

    async def keys_with_prefix(self, prefix: str) -> list[ApiKey]:
        async with self._database.reading() as connection:
            query = select(K).where(K.c.prefix == prefix).order_by(K.c.id)
            return [_key(row) for row in await connection.execute(query)]

    async def revoke_key(self, key_id: int, now: datetime) -> ApiKey | None:
        """Revoke a key (a revoked one keeps its first revocation time) and remove the REST
        hooks it made, in one transaction; None if unknown."""
        async with self._database.writing() as connection:
            await connection.execute(
                update(K).where(K.c.id == key_id, K.c.revoked_at.is_(None)).values(revoked_at=now)
            )
            await remove_hooks_of_key(connection, key_id, now)
            row = (await connection.execute(select(K).where(K.c.id == key_id))).first()
            await connection.commit()
        return _key(row) if row is not None else None

    # -- failed logins -------------------------------------------------------------------------
    # Rows are always locked in key order, whoever locks them: two workers then never wait
    # for each other in a circle.

    async def count_login_attempt(
        self,
        keys: Sequence[str],
        now: datetime,
        *,
        wait_after: Callable[[int], timedelta],
        forget_after: timedelta,
    ) -> timedelta:
        """Count an attempt against every key before its password is checked (so that attempts
        made at once, on any worker, are counted in turn), unless a key must still wait: then
        nothing is counted and the longest wait is returned. A zero wait means go ahead.

        `wait_after(failures)` is how long to wait after the last of that many failures; a key
        with no failure for `forget_after` starts again from nothing."""
        ordered = sorted(set(keys))
        async with self._database.writing() as connection:
            fresh = [{"key": key, "failures": 0, "last_at": now} for key in ordered]
            await connection.execute(ignoring_conflict(connection.dialect.name, F), fresh)
            query = select(F).where(F.c.key.in_(ordered)).order_by(F.c.key).with_for_update()
            rows = (await connection.execute(query)).all()
            counts = {
                row.key: 0 if row.last_at <= now - forget_after else row.failures for row in rows
            }
            wait = max(
                (row.last_at + wait_after(counts[row.key]) - now for row in rows),
                default=timedelta(0),
            )
            if wait > timedelta(0):
                await connection.rollback()
                return wait
            for key in ordered:
                counted = update(F).where(F.c.key == key)
                await connection.execute(counted.values(failures=counts[key] + 1, last_at=now))
            await connection.commit()
        return timedelta(0)

    async def login_succeeded(self, forget: Sequence[str], uncount: Sequence[str]) -> None:
        """Forget the failures of `forget` keys; take back the attempt counted on `uncount`.
        Then rows forgotten long ago are removed (those no one holds at the moment)."""
        async with self._database.writing() as connection:
            for key in sorted({*forget, *uncount}):
                if key in forget:
                    await connection.execute(delete(F).where(F.c.key == key))
                else:
                    await connection.execute(
                        update(F)
                        .where(F.c.key == key, F.c.failures > 0)
                        .values(failures=F.c.failures - 1)
                    )
            await connection.commit()

    async def forget_login_failures(self, before: datetime) -> None:
        """Remove rows whose last failure is older than `before`, skipping any being used."""
        async with self._database.writing() as connection:
            stale = select(F.c.key).where(F.c.last_at <= before).with_for_update(skip_locked=True)
            await connection.execute(delete(F).where(F.c.key.in_(stale.scalar_subquery())))
            await connection.commit()
