"""Zapier REST Hooks and lead polling on /api/v1, with API keys: the real app, a fake CRM."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pytest_aiohttp import AiohttpClient
from sqlalchemy import select

from storage.crm import SUBS, D
from tests.console_support import Console, running_console
from tests.fake_crm import FakeCrm
from webhooks.console.apikeys import new_api_key
from webhooks.keys import DATABASE

RELAY_KEY = "relay-key-abc"


async def api_key(console: Console, name: str = "zapier") -> dict[str, str]:
    made = new_api_key()
    await console.reps.add_key(name, made.prefix, made.key_hash, None, console.clock())
    return {"Authorization": f"Bearer {made.key}"}


async def submit(console: Console, external_id: str, **fields: str) -> None:
    lead = {"id": external_id, "first_name": "Ana", **fields}
    response = await console.request("POST", "/leads", json=lead, headers={"X-Api-Key": RELAY_KEY})
    assert response.status == 201, await response.text()


def options(**crm: Any) -> dict[str, Any]:
    return {
        "relays": {"zapier": {"api_keys": [RELAY_KEY]}},
        "crm": {"allow_http_hooks": True, "first_retry_seconds": 0.05, **crm},
    }


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
async def test_a_rest_hook_gets_its_event_only_until_it_is_deleted(
    aiohttp_client: AiohttpClient, aiohttp_server: Any, tmp_path: Path, kind: str
) -> None:
    fake = FakeCrm()
    server = await aiohttp_server(fake.app())
    async with running_console(aiohttp_client, tmp_path, kind, **options()) as console:
        key = await api_key(console)
        created_url = str(server.make_url("/zap/created"))
        made = await console.request(
            "POST",
            "/api/v1/hooks",
            json={"target_url": created_url, "event": "lead.created"},
            headers=key,
        )
        assert made.status == 201, await made.text()
        hook = await made.json()
        assert (hook["target_url"], hook["event"]) == (created_url, "lead.created")
        assert len(hook["secret"]) >= 32
        assert made.headers["Cache-Control"] == "no-store"
        # Another event, another hook: each gets only what it asked for.
        other = await console.request(
            "POST",
            "/api/v1/hooks",
            json={
                "target_url": str(server.make_url("/zap/closed")),
                "event": "conversation.closed",
            },
            headers=key,
        )
        assert other.status == 201

        await submit(console, "zap-1")
        await fake.wait_until(lambda: len(fake.accepted()) == 1, "lead.created")
        [got] = fake.accepted()
        assert got.path == "/zap/created"
        assert got.json["event"] == "lead.created"
        assert got.json["lead"]["external_id"] == "zap-1"

        strangers = await api_key(console, "someone else")
        refused = await console.request("DELETE", f"/api/v1/hooks/{hook['id']}", headers=strangers)
        assert refused.status == 404  # a key deletes only its own hooks
        gone = await console.request("DELETE", f"/api/v1/hooks/{hook['id']}", headers=key)
        assert gone.status == 204
        again = await console.request("DELETE", f"/api/v1/hooks/{hook['id']}", headers=key)
        assert again.status == 404

        witness = {"target_url": str(server.make_url("/zap/witness")), "event": "lead.created"}
        made = await console.request("POST", "/api/v1/hooks", json=witness, headers=key)
        assert made.status == 201
        await submit(console, "zap-2")
        await submit(console, "zap-3")
        await fake.wait_until(lambda: len(fake.accepted("/zap/witness")) == 2, "two leads")
        assert len(fake.accepted("/zap/created")) == 1  # nothing more for the deleted hook
        assert fake.accepted("/zap/closed") == []


async def hook_deliveries(console: Console, path: str) -> list[tuple[str, str | None]]:
    """(status, last error) of each delivery to the hook whose URL ends with `path`."""
    query = (
        select(D.c.status, D.c.last_error)
        .join(SUBS, SUBS.c.id == D.c.subscription_id)
        .where(SUBS.c.url.endswith(path))
    )
    async with console.client.app[DATABASE].reading() as connection:
        return [(row.status, row.last_error) for row in await connection.execute(query)]


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
async def test_revoking_a_key_removes_its_hooks_and_what_they_still_had_to_receive(
    aiohttp_client: AiohttpClient, aiohttp_server: Any, tmp_path: Path, kind: str
) -> None:
    """Whoever held the key chose the hooks' URLs: a leaked key's hooks must not go on
    receiving leads once an admin revokes it. Another key's hooks are untouched."""
    fake = FakeCrm()
    server = await aiohttp_server(fake.app())
    async with running_console(aiohttp_client, tmp_path, kind, **options()) as console:
        await console.add_rep("boss@example.com", role="admin")
        admin = await console.logged_in("boss@example.com")
        made = await console.request("POST", "/api/v1/keys", admin, json={"name": "leaked"})
        assert made.status == 201
        leaked = await made.json()
        other_key = await api_key(console, "kept")
        for key, path in (({"X-Api-Key": leaked["key"]}, "/zap/leaked"), (other_key, "/zap/kept")):
            body = {"target_url": str(server.make_url(path)), "event": "lead.created"}
            hook = await console.request("POST", "/api/v1/hooks", json=body, headers=key)
            assert hook.status == 201

        fake.answer_always(500)  # both deliveries of the first lead wait to be tried again
        await submit(console, "zap-1")
        await fake.wait_until(lambda: len(fake.received) >= 2, "both hooks tried once")
        revoked = await console.request("DELETE", f"/api/v1/keys/{leaked['id']}", admin)
        assert revoked.status == 204
        assert await hook_deliveries(console, "/zap/leaked") == [
            ("dropped", "the hook was removed: its API key was revoked")
        ]

        fake.recover()
        await submit(console, "zap-2")
        await fake.wait_until(lambda: len(fake.accepted("/zap/kept")) == 2, "both leads kept")
        assert fake.accepted("/zap/leaked") == []
        assert len(await hook_deliveries(console, "/zap/leaked")) == 1  # none for zap-2
        kept = await hook_deliveries(console, "/zap/kept")
        assert [status for status, _ in kept] == ["delivered", "delivered"]


async def test_hooks_need_a_key_and_valid_input(
    aiohttp_client: AiohttpClient, tmp_path: Path
) -> None:
    async with running_console(
        aiohttp_client, tmp_path, **options(allow_http_hooks=False)
    ) as console:
        body = {
            "target_url": "https://hooks.zapier.com/hooks/standard/1/abc",
            "event": "lead.created",
        }
        anonymous = await console.request("POST", "/api/v1/hooks", json=body)
        assert anonymous.status == 401
        wrong = await console.request(
            "POST", "/api/v1/hooks", json=body, headers={"Authorization": "Bearer " + "x" * 40}
        )
        assert wrong.status == 401
        key = await api_key(console)
        cases = [
            ({**body, "event": "lead.nope"}, "event: Value error, unknown event 'lead.nope'"),
            ({"event": "lead.created"}, "target_url: Field required"),
            ({**body, "target_url": "not a url"}, "target_url: "),
            ({**body, "target_url": "http://crm.example.com/h"}, "must be an https:// address"),
        ]
        for sent, message in cases:
            response = await console.request("POST", "/api/v1/hooks", json=sent, headers=key)
            assert response.status == 400, sent
            error = (await response.json())["error"]
            assert error["code"] == "bad_request"
            assert message in error["message"], error
        not_json = await console.request("POST", "/api/v1/hooks", data="x", headers=key)
        assert not_json.status == 415
        ok = await console.request("POST", "/api/v1/hooks", json=body, headers=key)
        assert ok.status == 201
        missing = await console.request("DELETE", "/api/v1/hooks/99999", headers=key)
        assert missing.status == 404
        assert (await console.request("DELETE", "/api/v1/hooks/1")).status == 401


async def test_leads_are_polled_newest_first_by_page_and_since(
    aiohttp_client: AiohttpClient, tmp_path: Path
) -> None:
    async with running_console(aiohttp_client, tmp_path, **options()) as console:
        for number in range(5):
            await submit(console, f"zap-{number}", email=f"lead{number}@example.com")
        assert (await console.request("GET", "/api/v1/leads")).status == 401
        key = await api_key(console)
        first = await console.request("GET", "/api/v1/leads?limit=2", headers=key)
        assert first.status == 200
        page = await first.json()
        assert [lead["external_id"] for lead in page["leads"]] == ["zap-4", "zap-3"]
        assert page["leads"][0]["email"] == "lead4@example.com"
        assert page["leads"][0]["fields"]["first_name"] == "Ana"
        second = await console.request(
            "GET", f"/api/v1/leads?limit=2&cursor={page['next_cursor']}", headers=key
        )
        assert [lead["external_id"] for lead in (await second.json())["leads"]] == [
            "zap-2",
            "zap-1",
        ]
        everything = await (await console.request("GET", "/api/v1/leads", headers=key)).json()
        assert len(everything["leads"]) == 5
        assert everything["next_cursor"] is None
        later = await console.request(
            "GET", "/api/v1/leads?since=2999-01-01T00:00:00Z", headers=key
        )
        assert (await later.json())["leads"] == []
        for query, message in [
            ("since=yesterday", "since: 'yesterday' is not an ISO 8601 time"),
            ("limit=0", "limit: must be a whole number from 1 to 100"),
            ("limit=500", "limit: must be a whole number from 1 to 100"),
            ("cursor=abc", "cursor: must be a whole number"),
        ]:
            response = await console.request("GET", f"/api/v1/leads?{query}", headers=key)
            assert response.status == 400, query
            assert message in (await response.json())["error"]["message"]
