"""`leadbot rep ...` and `leadbot apikey ...` as an admin runs them on the server, on SQLite and
PostgreSQL; what they make works on the real app."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from pytest_aiohttp import AiohttpClient

from storage.db import connect
from storage.reps import SqlReps
from tests.console_support import Browser, database_url_sync, running_console
from webhooks.cli import main
from webhooks.console.passwords import Passwords
from webhooks.keys import SETTINGS

PASSWORD = "a long enough password"


@pytest.fixture(params=["sqlite", "postgresql"])
def url(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[str]:
    with database_url_sync(request.param, tmp_path) as found:
        monkeypatch.setenv("LEADBOT_DATABASE_URL", found)
        yield found


def run(*args: str, stdin: str | None = None) -> Result:
    return CliRunner().invoke(main, list(args), input=stdin)


async def _credentials(url: str, email: str) -> tuple[bool, str] | None:
    database = connect(url)
    try:
        found = await SqlReps(database).credentials(email)
    finally:
        await database.dispose()
    return (found[0].disabled, found[1]) if found is not None else None


def credentials(url: str, email: str) -> tuple[bool, str] | None:
    return asyncio.run(_credentials(url, email))


def test_rep_add_asks_for_the_password_twice_and_stores_only_its_hash(url: str) -> None:
    added = run(
        "rep", "add", "--email", "Ana@Example.com", "--name", "Ana Ruiz", stdin=f"{PASSWORD}\n" * 2
    )
    assert added.exit_code == 0, added.output
    assert "added rep Ana Ruiz <ana@example.com>" in added.output
    assert PASSWORD not in added.output
    found = credentials(url, "ana@example.com")
    assert found is not None
    disabled, stored = found
    assert not disabled
    assert stored.startswith("$argon2id$")
    assert PASSWORD not in stored
    assert asyncio.run(Passwords().verify(stored, PASSWORD))


def test_rep_add_refuses_a_mistyped_short_or_taken_password_or_email(url: str) -> None:
    mistyped = run("rep", "add", "--email", "a@example.com", "--name", "A", stdin="one\ntwo\n")
    assert mistyped.exit_code != 0
    short = run("rep", "add", "--email", "a@example.com", "--name", "A", stdin="short\nshort\n")
    assert short.exit_code == 1
    assert "at least 12 characters" in short.output
    bad = run("rep", "add", "--email", "not-an-email", "--name", "A", "--generate")
    assert bad.exit_code == 2
    assert "--email" in bad.output
    assert "no reps yet" in run("rep", "list").output
    assert run("rep", "add", "--email", "a@example.com", "--name", "A", "--generate").exit_code == 0
    again = run("rep", "add", "--email", "A@example.com", "--name", "B", "--generate")
    assert again.exit_code == 1
    assert "already exists" in again.output


def test_rep_list_and_disable(url: str) -> None:
    assert "no reps yet" in run("rep", "list").output
    for email, role in (("boss@example.com", "admin"), ("ana@example.com", "rep")):
        result = run("rep", "add", "--email", email, "--name", "N", "--role", role, "--generate")
        assert result.exit_code == 0, result.output
    listed = run("rep", "list").output.splitlines()
    assert [line.split()[:3] for line in listed] == [
        ["ana@example.com", "rep", "active"],
        ["boss@example.com", "admin", "active"],
    ]
    disabled = run("rep", "disable", "--email", "ANA@example.com")
    assert disabled.exit_code == 0, disabled.output
    assert run("rep", "list").output.splitlines()[0].split()[:3] == [
        "ana@example.com",
        "rep",
        "disabled",
    ]
    assert run("rep", "disable", "--email", "nobody@example.com").exit_code == 1
    assert run("rep", "enable", "--email", "ana@example.com").exit_code == 0
    found = credentials(url, "ana@example.com")
    assert found is not None
    assert not found[0]


def test_apikey_create_list_and_revoke(url: str) -> None:
    assert "no API keys yet" in run("apikey", "list").output
    created = run("apikey", "create", "--name", "Zapier")
    assert created.exit_code == 0, created.output
    key = created.output.strip().splitlines()[-1]
    assert re.fullmatch(r"[A-Za-z0-9]{40}", key)
    listed = run("apikey", "list").output
    assert key[:8] in listed
    assert key not in listed
    assert "active" in listed
    assert run("apikey", "revoke", "nothere1").exit_code == 1
    revoked = run("apikey", "revoke", key[:8])
    assert revoked.exit_code == 0, revoked.output
    assert "revoked" in run("apikey", "list").output
    assert run("apikey", "revoke", key[:8]).exit_code == 1  # no active key left with it


def test_postgresql_on_an_old_schema_is_refused_with_the_fix(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with database_url_sync("postgresql", tmp_path) as found:

        async def downgrade() -> None:
            database = connect(found)
            try:
                async with database.writing() as connection:
                    await connection.exec_driver_sql(
                        "UPDATE alembic_version SET version_num='0003'"
                    )
                    await connection.commit()
            finally:
                await database.dispose()

        asyncio.run(downgrade())
        monkeypatch.setenv("LEADBOT_DATABASE_URL", found)
        result = run("rep", "list")
        assert result.exit_code == 1
        assert "leadbot db upgrade" in result.output


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
async def test_a_rep_added_and_a_key_made_on_the_command_line_work_on_the_server(
    aiohttp_client: AiohttpClient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kind: str
) -> None:
    async with running_console(aiohttp_client, tmp_path, kind, passwords=Passwords()) as console:
        monkeypatch.setenv("LEADBOT_DATABASE_URL", console.client.app[SETTINGS].database_url)
        # The command line runs its own event loop: give it a thread of its own.
        added = await asyncio.to_thread(
            run,
            "rep",
            "add",
            "--email",
            "boss@example.com",
            "--name",
            "Boss",
            "--role",
            "admin",
            "--generate",
        )
        assert added.exit_code == 0, added.output
        password = added.output.split("password (shown only now): ", 1)[1].strip()
        admin = await console.logged_in("boss@example.com", password)
        made = await asyncio.to_thread(run, "apikey", "create", "--name", "cli")
        key = made.output.strip().splitlines()[-1]
        me = await console.request("GET", "/api/v1/me", headers={"X-Api-Key": key})
        assert (await me.json())["api_key"]["name"] == "cli"
        await asyncio.to_thread(run, "apikey", "revoke", key[:8])
        assert (
            await console.request("GET", "/api/v1/me", headers={"X-Api-Key": key})
        ).status == 401
        await asyncio.to_thread(run, "rep", "disable", "--email", "boss@example.com")
        assert (await console.request("GET", "/api/v1/me", admin)).status == 401
        refused = await console.post_login(Browser(), "boss@example.com", password)
        assert refused.status == 401
