"""`leadbot rep link-telegram`: the Telegram account a rep acts from in the reps' group."""

from __future__ import annotations

from pathlib import Path

import click

from storage.db import Database, is_sqlite
from storage.errors import StorageError
from storage.migrate import ensure_current
from storage.rep_threads import LinkedRep, SqlRepThreads, TelegramUserTakenError
from webhooks.cli_data import CONFIG, _with_database
from webhooks.cli_reps import EMAIL, _email


@click.command("link-telegram")
@CONFIG
@EMAIL
@click.option(
    "--telegram-user-id",
    type=click.IntRange(min=1),
    default=None,
    help="Their Telegram user id: /whoami in the reps' group shows it.",
)
@click.option("--unlink", is_flag=True, help="Stop this rep acting from Telegram.")
def link_telegram(
    config: Path | None, email: str, telegram_user_id: int | None, unlink: bool
) -> None:
    """Let a rep take over and answer leads from the reps' Telegram group."""
    if (telegram_user_id is None) != unlink:
        raise click.UsageError("give --telegram-user-id N, or --unlink")
    address = _email(email)

    async def work(database: Database) -> LinkedRep | None:
        await ensure_current(database, auto_upgrade=is_sqlite(database.url))
        return await SqlRepThreads(database).link(address, telegram_user_id)

    try:
        linked = _with_database(config, work)
    except (TelegramUserTakenError, StorageError) as error:
        raise click.ClickException(str(error)) from None
    if linked is None:
        raise click.ClickException(f"no rep with the email {address}")
    if telegram_user_id is None:
        click.echo(f"{linked.name} <{linked.email}> can no longer act from Telegram")
    else:
        click.echo(
            f"{linked.name} <{linked.email}> now acts from Telegram as user {telegram_user_id}"
        )
