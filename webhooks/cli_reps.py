"""`leadbot rep ...` and `leadbot apikey ...`: console logins and API keys, managed on the
server with the same settings (and database) as `leadbot serve`."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

import click
from email_validator import EmailNotValidError, validate_email

from storage.db import Database, is_sqlite
from storage.errors import StorageError
from storage.migrate import ensure_current
from storage.reps import ROLES, ApiKey, SqlReps
from webhooks.cli_data import CONFIG, _with_database
from webhooks.console.apikeys import new_api_key
from webhooks.console.passwords import Passwords, generated_password, password_problem

T = TypeVar("T")
EMAIL = click.option("--email", required=True, help="The rep's email (their login).")


def _with_reps(config: Path | None, work: Callable[[SqlReps], Awaitable[T]]) -> T:
    """Run `work` on the configured database, its schema brought up to date like `serve`
    does (SQLite), or checked (PostgreSQL: `leadbot db upgrade` first)."""

    async def run(database: Database) -> T:
        await ensure_current(database, auto_upgrade=is_sqlite(database.url))
        return await work(SqlReps(database))

    try:
        return _with_database(config, run)
    except StorageError as error:
        raise click.ClickException(str(error)) from None


def _email(value: str) -> str:
    try:
        return validate_email(value, check_deliverability=False).normalized.lower()
    except EmailNotValidError as error:
        raise click.BadParameter(str(error), param_hint="--email") from None


def _new_password(generate: bool) -> tuple[str, bool]:
    """A password typed twice at the prompt, or a generated one; and whether it was made."""
    if generate:
        return generated_password(), True
    password: str = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    problem = password_problem(password)
    if problem is not None:
        raise click.ClickException(problem)
    return password, False


def _when(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M") if moment is not None else "-"


@click.group()
def rep() -> None:
    """Sales reps who log in to the console."""


@rep.command("add")
@CONFIG
@EMAIL
@click.option("--name", required=True, help="How the rep is shown to colleagues.")
@click.option("--role", type=click.Choice(ROLES), default="rep", show_default=True)
@click.option("--generate", is_flag=True, help="Make a password and print it (once).")
def rep_add(config: Path | None, email: str, name: str, role: str, generate: bool) -> None:
    """Add a rep; asks for their password twice, unless --generate."""
    address, name = _email(email), name.strip()
    if not name or len(name) > 200:
        raise click.BadParameter("give a name of 1 to 200 characters", param_hint="--name")
    password, generated = _new_password(generate)
    password_hash = Passwords().hash(password)

    async def work(reps: SqlReps) -> None:
        await reps.add(address, name, role, password_hash, datetime.now(UTC))

    _with_reps(config, work)  # a rep with this email already there: an error, said so
    click.echo(f"added {role} {name} <{address}>")
    if generated:
        click.echo(f"password (shown only now): {password}")


@rep.command("list")
@CONFIG
def rep_list(config: Path | None) -> None:
    """List reps: email, name, role, and whether they may log in."""
    found = _with_reps(config, lambda reps: reps.all())
    if not found:
        click.echo("no reps yet: add one with `leadbot rep add --email E --name N`")
        return
    width = max(len(r.email) for r in found)
    for r in found:
        state = "disabled" if r.disabled else "active"
        click.echo(f"{r.email:<{width}}  {r.role:<5}  {state:<8}  {_when(r.created_at)}  {r.name}")


def _set_disabled(config: Path | None, email: str, disabled: bool) -> None:
    address = _email(email)
    changed = _with_reps(config, lambda reps: reps.set_disabled(address, disabled))
    if changed is None:
        raise click.ClickException(f"no rep with the email {address}")
    if disabled:
        click.echo(f"disabled {address}: logged out everywhere, and cannot log in")
    else:
        click.echo(f"enabled {address}")


@rep.command("disable")
@CONFIG
@EMAIL
def rep_disable(config: Path | None, email: str) -> None:
    """Stop a rep from logging in, and end their sessions now."""
    _set_disabled(config, email, True)


@rep.command("enable")
@CONFIG
@EMAIL
def rep_enable(config: Path | None, email: str) -> None:
    """Let a disabled rep log in again."""
    _set_disabled(config, email, False)


@rep.command("password")
@CONFIG
@EMAIL
@click.option("--generate", is_flag=True, help="Make a password and print it (once).")
def rep_password(config: Path | None, email: str, generate: bool) -> None:
    """Set a rep's password (asks twice, unless --generate); ends their sessions."""
    address = _email(email)
    password, generated = _new_password(generate)
    password_hash = Passwords().hash(password)

    async def work(reps: SqlReps) -> bool:
        found = await reps.by_email(address)
        if found is None:
            return False
        await reps.set_password_hash(found.id, password_hash, close_sessions=True)
        return True

    if not _with_reps(config, work):
        raise click.ClickException(f"no rep with the email {address}")
    click.echo(f"password changed for {address}; their sessions are ended")
    if generated:
        click.echo(f"password (shown only now): {password}")


@click.group()
def apikey() -> None:
    """API keys for programs on /api/v1."""


@apikey.command("create")
@CONFIG
@click.option("--name", required=True, help="What the key is for, e.g. the program using it.")
def apikey_create(config: Path | None, name: str) -> None:
    """Make a key and print it (only this once)."""
    name = name.strip()
    if not name or len(name) > 100:
        raise click.BadParameter("give a name of 1 to 100 characters", param_hint="--name")
    made = new_api_key()
    key = _with_reps(
        config,
        lambda reps: reps.add_key(name, made.prefix, made.key_hash, None, datetime.now(UTC)),
    )
    click.echo(f"API key {key.name!r} created (prefix {key.prefix}); it is shown only now:")
    click.echo(made.key)


@apikey.command("list")
@CONFIG
def apikey_list(config: Path | None) -> None:
    """List keys by prefix (the keys themselves are not kept)."""
    keys = _with_reps(config, lambda reps: reps.keys())
    if not keys:
        click.echo("no API keys yet: make one with `leadbot apikey create --name N`")
        return
    for key in keys:
        state = f"revoked {_when(key.revoked_at)}" if key.revoked_at else "active"
        click.echo(f"{key.prefix}  {_when(key.created_at)}  {state:<24}  {key.name}")


@apikey.command("revoke")
@CONFIG
@click.argument("prefix")
def apikey_revoke(config: Path | None, prefix: str) -> None:
    """Revoke the key whose first characters are PREFIX (as `apikey list` shows them), and
    remove the REST hooks it made (a running server stops posting to them at once, and stops
    queueing events for them within seconds)."""

    async def work(reps: SqlReps) -> list[ApiKey]:
        found = [key for key in await reps.keys_with_prefix(prefix) if key.revoked_at is None]
        if len(found) == 1:
            await reps.revoke_key(found[0].id, datetime.now(UTC))
        return found

    found = _with_reps(config, work)
    if not found:
        raise click.ClickException(f"no active API key with the prefix {prefix!r}")
    if len(found) > 1:
        raise click.ClickException(
            f"{len(found)} active keys have the prefix {prefix!r}: revoke them over the API "
            "by id (DELETE /api/v1/keys/{id})"
        )
    click.echo(f"revoked {found[0].prefix} ({found[0].name}), and removed its REST hooks")
