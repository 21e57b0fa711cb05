"""`leadbot deliveries list|retry|replay`: CRM deliveries, their dead letters, and sending
events again, on the same settings (and database) as `leadbot serve`."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

import click

from storage.crm_admin import (
    DeliveryLine,
    all_subscriptions,
    find_subscription,
    list_deliveries,
    replay,
    retry,
)
from storage.db import Database, is_sqlite
from storage.errors import StorageError
from storage.migrate import ensure_current
from webhooks.cli_data import CONFIG, _with_database

T = TypeVar("T")
STATUSES = ("failed", "pending", "delivered", "dropped", "all")
SUBSCRIPTION = click.option(
    "--subscription", "-s", metavar="NAME|ID", help="A settings webhook's name, or a hook's id."
)


def _run(config: Path | None, work: Callable[[Database], Awaitable[T]]) -> T:
    async def run(database: Database) -> T:
        await ensure_current(database, auto_upgrade=is_sqlite(database.url))
        return await work(database)

    try:
        return _with_database(config, run)
    except StorageError as error:
        raise click.ClickException(str(error)) from None


def _when(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S") if moment is not None else "-"


def _line(d: DeliveryLine) -> str:
    answer = str(d.last_status) if d.last_status is not None else "-"
    error = f"  {d.last_error}" if d.last_error else ""
    return (
        f"{d.id:>6}  {d.delivery_id}  {d.subscription:<16} lead {d.lead_id} #{d.sequence} "
        f"{d.event:<22} {d.status:<9} tries {d.attempts:<3} HTTP {answer:<4} "
        f"{_when(d.created_at)}{error}"
    )


@click.group()
def deliveries() -> None:
    """CRM deliveries: list them (dead letters first of all), retry, replay."""


@deliveries.command("list")
@CONFIG
@click.option(
    "--status",
    type=click.Choice(STATUSES),
    default="failed",
    show_default=True,
    help="failed: the dead letters.",
)
@SUBSCRIPTION
@click.option("--lead", "lead_id", type=int, default=None, help="Only this lead's.")
@click.option("--limit", type=click.IntRange(1, 10_000), default=100, show_default=True)
@click.option("--subscriptions", "show_subscriptions", is_flag=True, help="List those instead.")
def list_command(  # click passes options by name
    *,
    config: Path | None,
    status: str,
    subscription: str | None,
    lead_id: int | None,
    limit: int,
    show_subscriptions: bool,
) -> None:
    """Deliveries, newest first."""

    async def work(database: Database) -> list[str]:
        if show_subscriptions:
            return [
                f"{s.id:>4}  {s.name or '(api hook)':<16} {s.status:<8} {s.url}  "
                f"{','.join(sorted(s.events))}" + (f"  ({reason})" if reason else "")
                for s, reason in await all_subscriptions(database)
            ]
        subscription_id = (
            (await find_subscription(database, subscription)).id if subscription else None
        )
        found = await list_deliveries(
            database,
            status=None if status == "all" else status,
            subscription_id=subscription_id,
            lead_id=lead_id,
            limit=limit,
        )
        return [_line(d) for d in found]

    lines = _run(config, work)
    for line in lines:
        click.echo(line)
    if not lines:
        click.echo("nothing to list", err=True)


@deliveries.command("retry")
@CONFIG
@click.argument("ids", nargs=-1, type=int)
@SUBSCRIPTION
def retry_command(config: Path | None, ids: tuple[int, ...], subscription: str | None) -> None:
    """Send dead letters again (by id, or all of a subscription's); a subscription that a
    410 disabled is enabled again."""
    if not ids and subscription is None:
        raise click.UsageError("name delivery ids, or --subscription for all of its dead letters")

    async def work(database: Database) -> int:
        subscription_id = (
            (await find_subscription(database, subscription)).id if subscription else None
        )
        return await retry(
            database, datetime.now(UTC), delivery_ids=ids, subscription_id=subscription_id
        )

    click.echo(f"{_run(config, work)} deliver(ies) queued again")


@deliveries.command("replay")
@CONFIG
@click.option("--subscription", "-s", metavar="NAME|ID", required=True, help="Where to send them.")
@click.option("--lead", "lead_id", type=int, default=None, help="This lead's events.")
@click.option("--from", "first", type=int, default=None, help="From this sequence number.")
@click.option("--to", "last", type=int, default=None, help="Up to this sequence number.")
@click.option("--since", type=click.DateTime(), default=None, help="Events from then (UTC).")
def replay_command(
    *,
    config: Path | None,
    subscription: str,
    lead_id: int | None,
    first: int | None,
    last: int | None,
    since: datetime | None,
) -> None:
    """Send stored events again to a subscription, as new deliveries (new delivery ids)."""
    if lead_id is None and since is None:
        raise click.UsageError("say which events: --lead ID [--from N --to M], or --since DATE")
    if (first is not None or last is not None) and lead_id is None:
        raise click.UsageError("--from and --to are sequence numbers of one lead: add --lead")

    async def work(database: Database) -> int:
        target = await find_subscription(database, subscription)
        return await replay(
            database,
            datetime.now(UTC),
            target.id,
            lead_id=lead_id,
            first=first,
            last=last,
            since=since.replace(tzinfo=UTC) if since is not None else None,
        )

    click.echo(f"{_run(config, work)} event(s) queued for replay")
