"""The retention sweep's queries: which leads are past their keeping time, and who sweeps."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import Table, and_, false, or_, select, update

from storage.db import Database
from storage.sql import ignoring_conflict
from storage.tables import LeadRow, MaintenanceLeaseRow

L: Table = LeadRow.__table__  # type: ignore[attr-defined]
LEASES: Table = MaintenanceLeaseRow.__table__  # type: ignore[attr-defined]


async def expired_leads(
    database: Database,
    *,
    disqualified_before: datetime | None,
    changed_before: datetime | None,
    limit: int,
) -> list[int]:
    """Leads not yet erased that are disqualified since before `disqualified_before`, or that
    have not changed since before `changed_before` (None: that rule is off); oldest first."""
    rules = []
    if disqualified_before is not None:
        rules.append(
            and_(
                L.c.qualified.is_(False),
                L.c.completed_at.is_not(None),
                L.c.completed_at < disqualified_before,
            )
        )
    if changed_before is not None:
        rules.append(L.c.updated_at < changed_before)
    query = (
        select(L.c.id)
        .where(L.c.erased_at.is_(None), or_(false(), *rules))
        .order_by(L.c.id)
        .limit(limit)
    )
    async with database.reading() as connection:
        return list((await connection.execute(query)).scalars())


async def take_lease(
    database: Database, name: str, holder: str, now: datetime, length: timedelta
) -> bool:
    """Hold the job `name` until now + length, if nobody else holds it now; True if held.
    The holder may renew its own lease early."""
    async with database.writing() as connection:
        await connection.execute(
            ignoring_conflict(connection.dialect.name, LEASES).values(
                name=name, holder=holder, until=now - timedelta(seconds=1)
            )
        )
        taken = await connection.execute(
            update(LEASES)
            .where(LEASES.c.name == name, or_(LEASES.c.until <= now, LEASES.c.holder == holder))
            .values(holder=holder, until=now + length)
        )
        await connection.commit()
    return bool(taken.rowcount)
