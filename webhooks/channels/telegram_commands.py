"""`leadbot telegram ...`: register the webhook with Telegram, and read what Telegram reports."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

import click
from telegram import Bot
from telegram.error import InvalidToken, TelegramError

from webhooks.channels.telegram_bot import (
    SECRET_VARIABLE,
    TOKEN_VARIABLE,
    delivery_error,
    new_bot,
)
from webhooks.cli_data import CONFIG
from webhooks.settings import Settings, SettingsError, load_settings

T = TypeVar("T")
ALLOWED_UPDATES = ["message", "callback_query"]  # what the webhook reads; the rest never comes


def webhook_url(settings: Settings) -> str:
    return f"{settings.base_url}/webhooks/telegram"


@click.group()
def telegram() -> None:
    """Connect the Telegram bot (see docs/channels.md)."""


@telegram.command("set-webhook")
@CONFIG
def set_webhook(config: Path | None) -> None:
    """Tell Telegram to deliver the bot's updates to <public_url>/webhooks/telegram."""
    settings = _settings(config)
    secret = settings.telegram.webhook_secret
    if secret is None:
        raise click.ClickException(
            f"telegram.webhook_secret ({SECRET_VARIABLE}) is not set: choose 1 to 256 "
            "characters of A-Z, a-z, 0-9, _ and -; Telegram sends it back with every update"
        )
    url = webhook_url(settings)
    if not url.startswith("https://"):
        raise click.ClickException(
            f"Telegram delivers only to https:// addresses, and {url} is not one: set public_url "
            "(LEADBOT_PUBLIC_URL) to the address your server is reached at"
        )

    async def register(bot: Bot) -> str:
        await bot.set_webhook(
            url=url,
            secret_token=secret.get_secret_value(),
            allowed_updates=ALLOWED_UPDATES,
            drop_pending_updates=False,  # updates waiting since the last set-up are still leads
        )
        return bot.username

    username = _with_bot(settings, register)
    click.echo(f"Telegram now delivers the updates of @{username} to {url}")
    click.echo(f"  update types: {', '.join(ALLOWED_UPDATES)}; check with: leadbot telegram info")


@telegram.command("info")
@CONFIG
def info(config: Path | None) -> None:
    """Show what Telegram reports about the webhook: address, waiting updates, last error."""
    settings = _settings(config)

    async def read(bot: Bot) -> list[str]:
        found = await bot.get_webhook_info()
        expected = webhook_url(settings)
        lines = [f"bot: @{bot.username}"]
        if not found.url:
            lines.append("webhook: none (run: leadbot telegram set-webhook)")
        else:
            lines.append(f"webhook: {found.url}")
            if found.url != expected:
                lines.append(
                    f"  (this server expects {expected}: run leadbot telegram set-webhook)"
                )
        lines.append(f"pending updates: {found.pending_update_count}")
        if found.last_error_date is not None:
            when = found.last_error_date.strftime("%Y-%m-%d %H:%M:%S %Z")
            lines.append(f"last error: {when}: {found.last_error_message}")
        else:
            lines.append("last error: none")
        return lines

    for line in _with_bot(settings, read):
        click.echo(line)


def _settings(config: Path | None) -> Settings:
    try:
        settings = load_settings(config)
    except SettingsError as error:
        raise click.ClickException(str(error)) from None
    if settings.telegram.token is None:
        raise click.ClickException(
            f"telegram.token ({TOKEN_VARIABLE}) is not set: create a bot with @BotFather "
            "and set the token it gives you"
        )
    return settings


def _with_bot(settings: Settings, work: Callable[[Bot], Awaitable[T]]) -> T:
    async def run() -> T:
        async with new_bot(settings.telegram) as bot:  # initialize() asks getMe: the token
            return await work(bot)

    try:
        return asyncio.run(run())
    except InvalidToken:  # PTB's text would show the token
        raise click.ClickException(
            f"Telegram does not know this bot token: check telegram.token ({TOKEN_VARIABLE})"
        ) from None
    except TelegramError as error:
        raise click.ClickException(delivery_error(error).reason) from None
