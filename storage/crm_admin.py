"""CRM delivery outside turns: the dead-letter list, retry and replay (`leadbot deliveries`),
hooks made through the API (Zapier REST Hooks), leads for polling, and erasure."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from bot.crm_records import (
    ACTIVE,
    DISABLED,
    DROPPED,
    FAILED,
    PENDING,
    REMOVED,
    LeadView,
    Subscription,
)
from storage.crm import EV, LEAD_COLUMNS, SUBS, D, L, lead_view, new_delivery_id, subscription
from storage.db import Database
from storage.errors import StorageError


class UnknownSubscriptionError(StorageError):
    """No subscription has that name or id (or it was removed)."""


@dataclass(frozen=True, slots=True)
class DeliveryLine:
    id: int
    delivery_id: str
    event: str
    lead_id: int
    sequence: int
    subscription: str  # its name, or "hook <id>" for one made through the API
    status: str
    attempts: int
    last_status: int | None
    last_error: str | None
    created_at: datetime
    finished_at: datetime | None


def _label(name: str | None, subscription_id: int) -> str:
    return name if name is not None else f"hook {subscription_id}"


async def find_subscription(database: Database, name_or_id: str) -> Subscription:
    query = select(SUBS).where(SUBS.c.status != REMOVED)
    if name_or_id.isdigit():
        query = query.where(SUBS.c.id == int(name_or_id))
    else:
        query = query.where(SUBS.c.name == name_or_id)
    async with database.reading() as connection:
        row = (await connection.execute(query)).first()
    if row is None:
        raise UnknownSubscriptionError(f"no subscription named or numbered {name_or_id!r}")
    return subscription(row)


async def all_subscriptions(database: Database) -> list[tuple[Subscription, str | None]]:
    """Every subscription not removed, with why it is disabled, if it is."""
    query = select(SUBS).where(SUBS.c.status != REMOVED).order_by(SUBS.c.id)
    async with database.reading() as connection:
        return [(subscription(row), row.status_reason) for row in await connection.execute(query)]


async def list_deliveries(
    database: Database,
    *,
    status: str | None = FAILED,
    subscription_id: int | None = None,
    lead_id: int | None = None,
    limit: int = 100,
) -> list[DeliveryLine]:
    """Newest first; by default the dead letters."""
    query = (
        select(D, EV.c.event, SUBS.c.name)
        .join(EV, EV.c.id == D.c.event_id)
        .join(SUBS, SUBS.c.id == D.c.subscription_id)
        .order_by(D.c.id.desc())
        .limit(limit)
    )
    if status is not None:
        query = query.where(D.c.status == status)
    if subscription_id is not None:
        query = query.where(D.c.subscription_id == subscription_id)
    if lead_id is not None:
        query = query.where(D.c.lead_id == lead_id)
    async with database.reading() as connection:
        rows = await connection.execute(query)
        return [
            DeliveryLine(
                id=row.id,
                delivery_id=row.delivery_id,
                event=row.event,
                lead_id=row.lead_id,
                sequence=row.sequence,
                subscription=_label(row.name, row.subscription_id),
                status=row.status,
                attempts=row.attempts,
                last_status=row.last_status,
                last_error=row.last_error,
                created_at=row.created_at,
                finished_at=row.finished_at,
            )
            for row in rows
        ]


async def retry(
    database: Database,
    now: datetime,
    *,
    delivery_ids: Sequence[int] = (),
    subscription_id: int | None = None,
) -> int:
    """Queue dead letters again (the given ones, or all of a subscription's), with the same
    delivery ids and 24 hours of retries from now; a subscription a 410 disabled is enabled
    again, since someone has said its receiver is back. How many were queued."""
    query = update(D).where(D.c.status == FAILED)
    if delivery_ids:
        query = query.where(D.c.id.in_(list(delivery_ids)))
    if subscription_id is not None:
        query = query.where(D.c.subscription_id == subscription_id)
    targets = select(D.c.subscription_id).where(D.c.status == FAILED)
    if delivery_ids:
        targets = targets.where(D.c.id.in_(list(delivery_ids)))
    if subscription_id is not None:
        targets = targets.where(D.c.subscription_id == subscription_id)
    async with database.writing() as connection:
        enable = set((await connection.execute(targets.distinct())).scalars())
        if subscription_id is not None:
            enable.add(subscription_id)
        if enable:
            await connection.execute(
                update(SUBS)
                .where(SUBS.c.id.in_(sorted(enable)), SUBS.c.status == DISABLED)
                .values(status=ACTIVE, status_reason=None, updated_at=now)
            )
        result = await connection.execute(
            query.values(
                status=PENDING,
                attempts=0,
                due_at=now,
                queued_at=now,
                claimed_until=None,
                finished_at=None,
            )
        )
        await connection.commit()
    return int(result.rowcount or 0)


async def replay(
    database: Database,
    now: datetime,
    subscription_id: int,
    *,
    lead_id: int | None = None,
    first: int | None = None,
    last: int | None = None,
    since: datetime | None = None,
) -> int:
    """Send stored events again to a subscription, each as a new delivery (a new delivery id:
    the receiver is meant to take it); the events of a lead from sequence `first` to `last`,
    or every event since a time. How many were queued."""
    query: Select[Any] = select(EV.c.id, EV.c.lead_id, EV.c.sequence).order_by(
        EV.c.lead_id, EV.c.sequence
    )
    if lead_id is not None:
        query = query.where(EV.c.lead_id == lead_id)
    if first is not None:
        query = query.where(EV.c.sequence >= first)
    if last is not None:
        query = query.where(EV.c.sequence <= last)
    if since is not None:
        query = query.where(EV.c.occurred_at >= since)
    async with database.writing() as connection:
        row = (await connection.execute(select(SUBS).where(SUBS.c.id == subscription_id))).first()
        if row is None or row.status != ACTIVE:
            raise UnknownSubscriptionError(
                f"subscription {subscription_id} is not active"
                + (f" ({row.status}: {row.status_reason})" if row is not None else "")
            )
        events = list(await connection.execute(query))
        if events:
            await connection.execute(
                insert(D),
                [
                    {
                        "delivery_id": new_delivery_id(),
                        "event_id": event.id,
                        "subscription_id": subscription_id,
                        "lead_id": event.lead_id,
                        "sequence": event.sequence,
                        "status": PENDING,
                        "attempts": 0,
                        "due_at": now,
                        "queued_at": now,
                        "created_at": now,
                    }
                    for event in events
                ],
            )
        await connection.commit()
    return len(events)


async def add_hook(
    database: Database,
    url: str,
    event: str,
    *,
    secret: str,
    api_key_id: int | None,
    now: datetime,
) -> Subscription:
    """A REST hook: one event to one URL, made by a program (Zapier) with its API key."""
    values = {
        "origin": "api",
        "url": url,
        "events": [event],
        "secret": secret,
        "api_key_id": api_key_id,
        "status": ACTIVE,
        "created_at": now,
        "updated_at": now,
    }
    async with database.writing() as connection:
        statement = insert(SUBS).values(values).returning(SUBS.c.id)
        new_id = (await connection.execute(statement)).scalar_one()
        await connection.commit()
    return Subscription(int(new_id), None, url, frozenset({event}), "api", ACTIVE)


async def delete_hook(
    database: Database, hook_id: int, api_key_id: int | None, now: datetime
) -> bool:
    """Remove a hook made through the API; a key removes only its own (`api_key_id` None: a
    rep, who may remove any). False when there is no such hook for this caller."""
    query = select(SUBS.c.id).where(
        SUBS.c.id == hook_id, SUBS.c.origin == "api", SUBS.c.status != REMOVED
    )
    if api_key_id is not None:
        query = query.where(SUBS.c.api_key_id == api_key_id)
    async with database.writing() as connection:
        if (await connection.execute(query)).first() is None:
            return False
        await _remove_hooks(connection, [hook_id], "deleted through the API", now)
        await connection.commit()
    return True


async def remove_hooks_of_key(connection: AsyncConnection, api_key_id: int, now: datetime) -> int:
    """When a key is revoked, the hooks it made go with it: whoever held the key chose their
    URLs, and a leaked key's hooks would otherwise go on receiving every lead. Deliveries still
    waiting for them are dropped. Returns how many hooks were removed."""
    query = select(SUBS.c.id).where(
        SUBS.c.api_key_id == api_key_id, SUBS.c.origin == "api", SUBS.c.status != REMOVED
    )
    hooks = list((await connection.execute(query)).scalars())
    if hooks:
        await _remove_hooks(connection, hooks, "its API key was revoked", now)
    return len(hooks)


async def _remove_hooks(
    connection: AsyncConnection, hooks: Sequence[int], reason: str, now: datetime
) -> None:
    await connection.execute(
        update(SUBS)
        .where(SUBS.c.id.in_(hooks))
        .values(status=REMOVED, status_reason=reason, updated_at=now)
    )
    await connection.execute(
        update(D)
        .where(D.c.subscription_id.in_(hooks), D.c.status == PENDING)
        .values(status=DROPPED, last_error=f"the hook was removed: {reason}", finished_at=now)
    )


async def leads_page(
    database: Database, *, since: datetime | None, before: int | None, limit: int
) -> list[LeadView]:
    """Leads newest first (by id, which follows arrival), for polling and Zapier's sample."""
    query = select(*LEAD_COLUMNS).order_by(L.c.id.desc()).limit(limit)
    if since is not None:
        query = query.where(L.c.submitted_at >= since)
    if before is not None:
        query = query.where(L.c.id < before)
    async with database.reading() as connection:
        return [lead_view(row) for row in await connection.execute(query)]


async def erase_crm_data(connection: AsyncConnection, lead_id: int) -> dict[str, int]:
    """For `leadbot lead erase`: the lead's event bodies keep only what is not personal (the
    event, its time, the lead's id and outcome, the conversation's id, channel and status),
    and deliveries still waiting are dropped: nothing more is sent about an erased person."""
    query = select(EV.c.id, EV.c.body).where(EV.c.lead_id == lead_id)
    events = (await connection.execute(query)).all()
    for event_id, stored in events:
        body = stored or {}
        kept = {
            "version": body.get("version"),
            "event": body.get("event"),
            "occurred_at": body.get("occurred_at"),
            "lead": {
                "id": lead_id,
                "erased": True,
                "outcome": (body.get("lead") or {}).get("outcome"),
            },
            "conversation": _without_reason(body.get("conversation")),
        }
        await connection.execute(update(EV).where(EV.c.id == event_id).values(body=kept))
    dropped = await connection.execute(
        update(D)
        .where(D.c.lead_id == lead_id, D.c.status == PENDING)
        .values(status=DROPPED, last_error="the lead was erased", claimed_until=None)
    )
    return {"crm_event_bodies": len(events), "crm_deliveries_dropped": int(dropped.rowcount)}


def _without_reason(conversation: Any) -> Any:
    """A handoff's reason may quote the prospect: it goes too."""
    if isinstance(conversation, dict):
        return {**conversation, "handoff_reason": None}
    return conversation
