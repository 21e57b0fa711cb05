"""`leadbot lead export|erase`: what is held about a person, as JSON, and erasing it."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO, TypeVar

import click

from bot.answers.contact import parse_email, parse_phone
from bot.answers.result import Parsed
from storage.db import Database, is_sqlite
from storage.errors import StorageError
from storage.migrate import ensure_current
from storage.privacy import Erasure, SqlPrivacy
from webhooks.cli_data import CONFIG, _with_database

T = TypeVar("T")
ACTOR = "command line"  # the audit log's actor for what is done here


def _with_privacy(config: Path | None, work: Callable[[SqlPrivacy], Awaitable[T]]) -> T:
    """Run `work` on the configured database, its schema current (as `leadbot rep` does)."""

    async def run(database: Database) -> T:
        await ensure_current(database, auto_upgrade=is_sqlite(database.url))
        return await work(SqlPrivacy(database))

    try:
        return _with_database(config, run)
    except StorageError as error:  # an unknown lead, an old schema
        raise click.ClickException(str(error)) from None


def _phone(value: str) -> str:
    parsed = parse_phone(value, region=None)
    if not isinstance(parsed, Parsed):
        raise click.BadParameter("give the number in international form, e.g. +34 612 345 678")
    return str(parsed.value)


def _email(value: str) -> str:
    parsed = parse_email(value)
    if not isinstance(parsed, Parsed):
        raise click.BadParameter(f"{value!r} is not an email address")
    return str(parsed.value)


@click.group()
def lead() -> None:
    """What is held about a lead's person: export it, erase it (docs/privacy.md)."""


@lead.command("export")
@CONFIG
@click.argument("lead_id", type=click.IntRange(min=1))
@click.option(
    "--output",
    "-o",
    type=click.File("w", encoding="utf-8"),
    default="-",
    help="File (default stdout).",
)
def export_lead(config: Path | None, lead_id: int, output: TextIO) -> None:
    """Everything held about the person of lead LEAD_ID, as one JSON document."""

    async def work(privacy: SqlPrivacy) -> dict[str, object]:
        return await privacy.export(lead_id, actor=ACTOR, now=datetime.now(UTC))

    found = _with_privacy(config, work)
    json.dump(found, output, ensure_ascii=False, indent=2)
    output.write("\n")


@lead.command("erase")
@CONFIG
@click.argument("lead_id", type=click.IntRange(min=1), required=False)
@click.option("--phone", default=None, help="Every lead with this number (international form).")
@click.option("--email", default=None, help="Every lead with this email.")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def erase_lead(
    config: Path | None, lead_id: int | None, phone: str | None, email: str | None, yes: bool
) -> None:
    """Erase the personal data of lead LEAD_ID, or of every lead with --phone or --email.

    The leads stay as anonymous rows for the funnel's counts; an opt-out stays, hashed.
    Erasing an erased lead changes nothing."""
    given = [option for option in (lead_id, phone, email) if option is not None]
    if len(given) != 1:
        raise click.UsageError("give one of LEAD_ID, --phone or --email")
    number = _phone(phone) if phone is not None else None
    address = _email(email) if email is not None else None

    async def find(privacy: SqlPrivacy) -> list[int]:
        if lead_id is not None:
            return [lead_id]
        return await privacy.leads_with(phone=number, email=address)

    lead_ids = _with_privacy(config, find)
    if not lead_ids:
        what = f"phone {number}" if number is not None else f"email {address}"
        raise click.ClickException(f"no lead with {what}")
    if not yes:
        click.confirm(f"Erase the personal data of lead(s) {_ids(lead_ids)}?", abort=True)

    async def erase(privacy: SqlPrivacy) -> list[Erasure]:
        return [await privacy.erase(one, actor=ACTOR, now=datetime.now(UTC)) for one in lead_ids]

    for erasure in _with_privacy(config, erase):
        if erasure.already:
            click.echo(f"lead {erasure.lead_id}: already erased")
        else:
            click.echo(f"lead {erasure.lead_id}: erased ({erasure.summary() or 'lead only'})")


def _ids(lead_ids: list[int]) -> str:
    return ", ".join(str(one) for one in lead_ids)
