"""A person's export and erasure through the API (an API key or an admin) and the command line,
on the real app and the real `leadbot` command, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from pytest_aiohttp import AiohttpClient

from storage.db import connect
from storage.migrate import upgrade
from storage.transactions import SqlStorage
from tests.conftest import NOW
from tests.console_support import Console, database_url_sync, running_console
from tests.privacy_support import OTTO, ZELDA, Held, dump, found_in, hold
from webhooks.cli import main
from webhooks.keys import DATABASE, STORAGE

BACKENDS = ["sqlite", "postgresql"]


async def _people(console: Console) -> tuple[Held, Held]:
    app = console.client.app
    return (
        await hold(app[STORAGE], app[DATABASE], ZELDA, NOW),
        await hold(app[STORAGE], app[DATABASE], OTTO, NOW),
    )


async def _api_key(console: Console) -> str:
    await console.add_rep("admin@example.com", role="admin")
    admin = await console.logged_in("admin@example.com")
    made = await console.request("POST", "/api/v1/keys", admin, json={"name": "dpo tool"})
    return str((await made.json())["key"])


@pytest.mark.parametrize("kind", BACKENDS)
async def test_a_program_exports_a_lead_with_its_api_key(
    aiohttp_client: AiohttpClient, tmp_path: Path, kind: str
) -> None:
    async with running_console(aiohttp_client, tmp_path, kind) as console:
        zelda, _ = await _people(console)
        key = await _api_key(console)
        response = await console.request(
            "GET",
            f"/api/v1/leads/{zelda.lead_id}/export",
            headers={"Authorization": f"Bearer {key}"},
        )
        assert response.status == 200, await response.text()
        assert response.headers["Cache-Control"] == "no-store"
        found = await response.json()
        assert found["lead"]["email"] == ZELDA.email
        assert len(found["conversations"]) == 2
        assert found_in({"export": [found]}, OTTO) == []
        audit = (await dump(console.client.app[DATABASE]))["audit_log"]
        assert ("exported", "API key 1 (dpo tool)") in {(r["action"], r["actor"]) for r in audit}


@pytest.mark.parametrize("kind", BACKENDS)
async def test_an_admin_erases_a_lead_and_erasing_it_again_says_so(
    aiohttp_client: AiohttpClient, tmp_path: Path, kind: str
) -> None:
    async with running_console(aiohttp_client, tmp_path, kind) as console:
        zelda, _ = await _people(console)
        admin = await console.add_rep("boss@example.com", role="admin", name="Bo Boss")
        browser = await console.logged_in("boss@example.com")
        response = await console.request("DELETE", f"/api/v1/leads/{zelda.lead_id}", browser)
        assert response.status == 200, await response.text()
        body = await response.json()
        assert (body["lead_id"], body["erased"], body["already_erased"]) == (
            zelda.lead_id,
            True,
            False,
        )
        assert body["removed"]["conversations"] == 2
        tables = await dump(console.client.app[DATABASE])
        assert found_in(tables, ZELDA) == []
        assert found_in(tables, OTTO) != []
        erased = [r for r in tables["audit_log"] if r["action"] == "erased"]
        assert [r["actor"] for r in erased] == [f"rep {admin.id} (Bo Boss)"]

        again = await console.request("DELETE", f"/api/v1/leads/{zelda.lead_id}", browser)
        assert again.status == 200
        assert (await again.json())["already_erased"] is True
        shell = await console.request("GET", f"/api/v1/leads/{zelda.lead_id}/export", browser)
        left = await shell.json()
        assert left["lead"]["erased_at"] is not None
        assert (left["lead"]["phone"], left["conversations"]) == (None, [])


async def test_an_unknown_lead_is_a_404_that_names_it(
    aiohttp_client: AiohttpClient, tmp_path: Path
) -> None:
    async with running_console(aiohttp_client, tmp_path) as console:
        key = {"Authorization": f"Bearer {await _api_key(console)}"}
        for method, path in (
            ("DELETE", "/api/v1/leads/999"),
            ("GET", "/api/v1/leads/999/export"),
            ("DELETE", "/api/v1/leads/abc"),
        ):
            response = await console.request(method, path, headers=key)
            assert response.status == 404, (method, path)
            error = (await response.json())["error"]
            assert error["code"] == "not_found"
            assert error["message"] == f"no lead with id {path.split('/')[4]}"


async def test_a_rep_may_neither_export_nor_erase(
    aiohttp_client: AiohttpClient, tmp_path: Path
) -> None:
    async with running_console(aiohttp_client, tmp_path) as console:
        zelda, _ = await _people(console)
        await console.add_rep("rep@example.com")
        rep = await console.logged_in("rep@example.com")
        for method, path in (
            ("DELETE", f"/api/v1/leads/{zelda.lead_id}"),
            ("GET", f"/api/v1/leads/{zelda.lead_id}/export"),
        ):
            assert (await console.request(method, path, rep)).status == 403
        assert found_in(await dump(console.client.app[DATABASE]), ZELDA) != []


# -- leadbot lead ... ---------------------------------------------------------------------------


@pytest.fixture(params=BACKENDS)
def url(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[str]:
    with database_url_sync(request.param, tmp_path) as found:
        monkeypatch.setenv("LEADBOT_DATABASE_URL", found)
        monkeypatch.setenv("LEADBOT_SECRET_KEY", "test-secret-key-0123456789")
        yield found


def _seed(url: str) -> tuple[Held, Held]:
    async def work() -> tuple[Held, Held]:
        database = connect(url)
        storage = SqlStorage(database)
        try:
            await upgrade(database)
            return await hold(storage, database, ZELDA, NOW), await hold(
                storage, database, OTTO, NOW
            )
        finally:
            await storage.close()
            await database.dispose()

    return asyncio.run(work())


def _tables(url: str) -> dict[str, list[dict[str, object]]]:
    async def work() -> dict[str, list[dict[str, object]]]:
        database = connect(url)
        try:
            return await dump(database)
        finally:
            await database.dispose()

    return asyncio.run(work())


def run(*args: str, stdin: str | None = None) -> Result:
    return CliRunner().invoke(main, list(args), input=stdin)


def test_lead_export_prints_everything_about_the_person(url: str) -> None:
    zelda, _ = _seed(url)
    result = run("lead", "export", str(zelda.lead_id))
    assert result.exit_code == 0, result.output
    found = json.loads(result.stdout)
    assert found["lead"]["phone"] == ZELDA.phone
    assert {c["channel"] for c in found["conversations"]} == {"sms", "telegram"}


def test_lead_erase_by_phone_as_it_is_typed_erases_every_lead_of_that_number(url: str) -> None:
    zelda, _ = _seed(url)
    refused = run("lead", "erase", "--phone", "+34 612 345 678", stdin="n\n")
    assert refused.exit_code == 1
    assert f"Erase the personal data of lead(s) {zelda.lead_id}?" in refused.output
    assert found_in(_tables(url), ZELDA) != []

    result = run("lead", "erase", "--phone", "+34 612 345 678", "--yes")
    assert result.exit_code == 0, result.output
    assert result.output.startswith(f"lead {zelda.lead_id}: erased (outbox 3, conversations 2")
    tables = _tables(url)
    assert found_in(tables, ZELDA) == []
    assert found_in(tables, OTTO) != []
    again = run("lead", "erase", str(zelda.lead_id), "--yes")
    assert again.exit_code == 0
    assert again.output == f"lead {zelda.lead_id}: already erased\n"
    # Erased, the number names no lead any more.
    gone = run("lead", "erase", "--phone", ZELDA.phone, "--yes")
    assert gone.exit_code == 1
    assert f"no lead with phone {ZELDA.phone}" in gone.output


def test_lead_erase_by_email_in_any_case(url: str) -> None:
    _, otto = _seed(url)
    result = run("lead", "erase", "--email", OTTO.email.upper(), "--yes")
    assert result.exit_code == 0, result.output
    assert result.output.startswith(f"lead {otto.lead_id}: erased")
    assert found_in(_tables(url), OTTO) == []


def test_lead_erase_refuses_what_names_no_lead(url: str) -> None:
    _seed(url)
    unknown = run("lead", "erase", "4242", "--yes")
    assert unknown.exit_code == 1
    assert "no lead with id 4242" in unknown.output
    assert run("lead", "export", "4242").exit_code == 1
    both = run("lead", "erase", "1", "--email", OTTO.email, "--yes")
    assert both.exit_code == 2
    assert "give one of LEAD_ID, --phone or --email" in both.output
    assert run("lead", "erase", "--yes").exit_code == 2
    bad = run("lead", "erase", "--phone", "612 345 678", "--yes")
    assert bad.exit_code == 2
    assert "international form" in bad.output
