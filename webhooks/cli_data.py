"""`leadbot db ...` and `leadbot export`: commands that work on the database."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO, TypeVar

import click
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from storage.db import Database, connect
from storage.migrate import current_revision, head_revision, upgrade
from webhooks.export import export_csv, export_jsonl
from webhooks.settings import SettingsError, load_settings

T = TypeVar("T")
CONFIG = click.option(
    "--config",
    type=click.Path(path_type=Path),
    envvar="LEADBOT_CONFIG",
    default=None,
    help="YAML settings file (or LEADBOT_CONFIG).",
)


def _with_database(config: Path | None, work: Callable[[Database], Awaitable[T]]) -> T:
    try:
        settings = load_settings(config)
    except SettingsError as error:
        raise click.ClickException(str(error)) from None

    async def run() -> T:
        database = connect(settings.database_url)
        try:
            return await work(database)
        finally:
            await database.dispose()

    try:
        return asyncio.run(run())
    except (OSError, DBAPIError) as error:
        where = make_url(settings.database_url).render_as_string(hide_password=True)
        reason = getattr(error, "orig", None) or error
        raise click.ClickException(f"cannot use the database {where}: {reason}") from None


@click.group()
def db() -> None:
    """Database schema."""


@db.command("upgrade")
@CONFIG
def db_upgrade(config: Path | None) -> None:
    """Bring the database schema up to date."""

    async def work(database: Database) -> tuple[str | None, str | None]:
        before = await current_revision(database)
        await upgrade(database)
        return before, await current_revision(database)

    before, after = _with_database(config, work)
    if before == after:
        click.echo(f"schema already current ({after})")
    else:
        click.echo(f"schema upgraded from {before or 'empty'} to {after}")


@db.command("status")
@CONFIG
def db_status(config: Path | None) -> None:
    """Show the schema revision and whether it is current."""
    current = _with_database(config, current_revision)
    head = head_revision()
    click.echo(f"schema {current or 'empty'}; leadbot needs {head}")
    if current != head:
        sys.exit(1)


@click.command("export")
@CONFIG
@click.option(
    "--format", "fmt", type=click.Choice(["csv", "jsonl"]), default="csv", show_default=True
)
@click.option(
    "--since", type=click.DateTime(), default=None, help="Leads submitted from then (UTC)."
)
@click.option("--outcome", default=None, help="Only leads with this outcome.")
@click.option(
    "--output",
    "-o",
    type=click.File("w", encoding="utf-8"),
    default="-",
    help="File (default stdout).",
)
def export(
    config: Path | None,
    fmt: str,
    since: datetime | None,
    outcome: str | None,
    output: TextIO,
) -> None:
    """Stream leads with their answers and attribution."""
    start = since.replace(tzinfo=UTC) if since is not None else None
    writer = export_csv if fmt == "csv" else export_jsonl

    async def work(database: Database) -> int:
        return await writer(database, output, since=start, outcome=outcome)

    count = _with_database(config, work)
    click.echo(f"{count} lead(s) exported", err=True)
