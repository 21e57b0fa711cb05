"""Lead intake end to end: create_app under aiohttp_client, real SQLite, real signatures."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from sqlalchemy import func, select

from storage.tables import LeadRow
from webhooks.app import create_app
from webhooks.keys import DATABASE
from webhooks.settings import Settings

TIKTOK_SECRET = "tiktok-app-secret"
GOOGLE_KEY = "google-key-123"
RELAY_KEY = "relay-key-abc"
RELAY_HMAC = "relay-hmac-secret"

Client = TestClient[web.Request, web.Application]
MakeClient = Callable[[web.Application], Awaitable[Client]]


def settings_for(tmp_path: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": f"sqlite+aiosqlite:///{tmp_path / 'intake.db'}",
        "secret_key": "test-secret-key-0123456789",
        "public_url": "http://leads.example.com",
        "tiktok": {"app_secret": TIKTOK_SECRET, "username": "acme.cars"},
        "google": {"key": GOOGLE_KEY},
        "relays": {
            "zapier": {
                "api_keys": [RELAY_KEY],
                "hmac_secret": RELAY_HMAC,
                "mapping": {"phone": "Phone Number", "first_name": "First Name"},
            }
        },
        "telegram": {"bot_username": "acme_bot"},
        "twilio": {"whatsapp_number": "+34600111222", "sms_number": "+34600111222"},
        "routes": [
            {"source": "tiktok", "form_id": "6873052183063953666", "script": "campus-visit"}
        ],
        "default_script": "car-test-drive",
    }
    values.update(overrides)
    return Settings(**values)


@pytest.fixture
async def client(aiohttp_client: MakeClient, tmp_path: Path) -> Client:
    return await aiohttp_client(create_app(settings_for(tmp_path)))


def tiktok_body(*entries: dict[str, Any]) -> bytes:
    payload = {
        "request_id": 7350000000000000001,
        "object": 1,
        "time": 1735700000,
        "entry": list(entries),
    }
    return json.dumps(payload).encode()


def tiktok_entry(lead_id: int = 7126711421177430274, **extra: Any) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "id": lead_id,
        "lead_source": "INSTANT_FORM",
        "page_id": 6873052183063953666,
        "page_name": "Spring form",
        "advertiser_id": 7000000000000000001,
        "campaign_id": 1700000000000000001,
        "campaign_name": "Spring",
        "adgroup_id": 1700000000000000002,
        "ad_id": 1700000000000000003,
        "create_time": 1735699990,
        "changes": [
            {"field": "name", "value": "Jane Doe"},
            {"field": "phone_number", "value": "+6591234567"},
            {"field": "email", "value": "jane@example.com"},
        ],
    }
    entry.update(extra)
    return entry


def signed(body: bytes) -> dict[str, str]:
    digest = hmac.new(TIKTOK_SECRET.encode(), body, hashlib.sha256).hexdigest()
    return {"X-Open-Signature": digest, "Content-Type": "application/json"}


async def lead_count(client: Client) -> int:
    async with client.app[DATABASE].reading() as connection:
        table = LeadRow.__table__  # type: ignore[attr-defined]
        return int((await connection.execute(select(func.count()).select_from(table))).scalar_one())


async def test_tiktok_lead_is_stored_with_attribution_and_routed(client: Client) -> None:
    body = tiktok_body(tiktok_entry())
    response = await client.post("/leads/tiktok", data=body, headers=signed(body))
    assert response.status == 200  # TikTok retries anything but a plain 200
    payload = await response.json()
    lead = payload["leads"][0]
    assert lead["created"] is True
    assert lead["script"] == "campus-visit"  # the route for this form
    assert lead["chooser_url"].startswith("http://leads.example.com/r/")
    assert lead["links"]["telegram"].startswith("https://t.me/acme_bot?start=")
    async with client.app[DATABASE].reading() as connection:
        row = (await connection.execute(select(LeadRow.__table__))).one()  # type: ignore[attr-defined]
    assert row.external_id == "7126711421177430274"
    assert row.attribution["campaign_id"] == "1700000000000000001"
    assert row.attribution["form_id"] == "6873052183063953666"
    assert row.phone == "+6591234567"
    assert row.email == "jane@example.com"
    assert row.fields["name"] == "Jane Doe"


async def test_tiktok_signature_is_checked_before_anything_is_stored(client: Client) -> None:
    body = tiktok_body(tiktok_entry())
    wrong = await client.post(
        "/leads/tiktok", data=body, headers={**signed(b"other"), "Content-Type": "application/json"}
    )
    assert wrong.status == 401
    assert (await wrong.json())["error"]["code"] == "bad_signature"
    missing = await client.post(
        "/leads/tiktok", data=body, headers={"Content-Type": "application/json"}
    )
    assert missing.status == 401
    assert await lead_count(client) == 0


async def test_tiktok_signature_variant_with_timestamp(client: Client) -> None:
    body = tiktok_body(tiktok_entry())
    stamp = str(int(time.time()))
    digest = hmac.new(
        TIKTOK_SECRET.encode(), f"{stamp}.".encode() + body, hashlib.sha256
    ).hexdigest()
    response = await client.post(
        "/leads/tiktok",
        data=body,
        headers={"TikTok-Signature": f"t={stamp},s={digest}", "Content-Type": "application/json"},
    )
    assert response.status == 200
    assert (await response.json())["leads"][0]["created"] is True


async def test_a_batch_is_stored_in_one_go_and_a_repeat_creates_nothing(client: Client) -> None:
    body = tiktok_body(*(tiktok_entry(7126711421177430000 + n) for n in range(50)))
    first = await client.post("/leads/tiktok", data=body, headers=signed(body))
    assert (await first.json())["accepted"] == 50
    again = await client.post("/leads/tiktok", data=body, headers=signed(body))
    assert again.status == 200
    assert all(not lead["created"] for lead in (await again.json())["leads"])
    assert await lead_count(client) == 50


async def test_ten_identical_deliveries_at_once_make_one_lead(client: Client) -> None:
    body = tiktok_body(tiktok_entry())
    responses = await asyncio.gather(
        *(client.post("/leads/tiktok", data=body, headers=signed(body)) for _ in range(10))
    )
    assert {r.status for r in responses} == {200}
    leads = [(await r.json())["leads"][0] for r in responses]
    assert sorted(lead["created"] for lead in leads) == [False] * 9 + [True]
    ids = {lead["id"] for lead in leads}
    assert len(ids) == 1
    assert await lead_count(client) == 1


@pytest.mark.parametrize(
    ("body", "content_type", "status", "code"),
    [
        (b"{not json", "application/json", 400, "malformed_json"),
        (b'{"object": 1, "entry": "nope"}', "application/json", 400, "invalid_payload"),
        (b"{}", "text/plain", 415, "unsupported_media_type"),
    ],
)
async def test_tiktok_bad_input_is_named(
    client: Client, body: bytes, content_type: str, status: int, code: str
) -> None:
    headers = {**signed(body), "Content-Type": content_type}
    response = await client.post("/leads/tiktok", data=body, headers=headers)
    assert response.status == status
    error = (await response.json())["error"]
    assert error["code"] == code
    assert error["message"]


async def test_too_large_is_413(aiohttp_client: MakeClient, tmp_path: Path) -> None:
    client = await aiohttp_client(create_app(settings_for(tmp_path, max_body_bytes=2048)))
    body = tiktok_body(*(tiktok_entry(n) for n in range(40)))
    response = await client.post("/leads/tiktok", data=body, headers=signed(body))
    assert response.status == 413
    assert (await response.json())["error"]["code"] == "too_large"


async def test_unconfigured_source_says_which_setting_enables_it(
    aiohttp_client: MakeClient, tmp_path: Path
) -> None:
    client = await aiohttp_client(
        create_app(settings_for(tmp_path, tiktok={}, google={}, relays={}))
    )
    for path, setting in (
        ("/leads/tiktok", "LEADBOT_TIKTOK__APP_SECRET"),
        ("/leads/google", "LEADBOT_GOOGLE__KEY"),
        ("/leads", "LEADBOT_RELAYS__"),
    ):
        response = await client.post(path, json={})
        assert response.status == 404
        error = (await response.json())["error"]
        assert error["code"] == "not_configured"
        assert setting in error["message"]


def google_payload(**extra: Any) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "lead_id": "TeSter-123-ABCDEFGHIJKLMNOPQRSTUVWXYZ",
        "user_column_data": [
            {"column_id": "FULL_NAME", "column_name": "Full Name", "string_value": "Ana Ruiz"},
            {"column_id": "EMAIL", "column_name": "User Email", "string_value": "ana@example.com"},
            {
                "column_id": "PHONE_NUMBER",
                "column_name": "User Phone",
                "string_value": "+34612345678",
            },
        ],
        "api_version": "1.0",
        "form_id": 40000000000,
        "campaign_id": 20000000000,
        "google_key": GOOGLE_KEY,
        "is_test": True,
        "gcl_id": "abc",
        "adgroup_id": 30000000000,
        "creative_id": 50000000000,
    }
    payload.update(extra)
    return payload


async def test_google_test_lead_is_stored_and_marked(client: Client) -> None:
    response = await client.post("/leads/google", json=google_payload())
    assert response.status == 200
    assert (await response.json())["leads"][0]["created"] is True
    async with client.app[DATABASE].reading() as connection:
        row = (await connection.execute(select(LeadRow.__table__))).one()  # type: ignore[attr-defined]
    assert row.is_test is True
    assert row.source == "google"
    assert row.phone == "+34612345678"


async def test_google_wrong_key_is_401(client: Client) -> None:
    response = await client.post("/leads/google", json=google_payload(google_key="nope"))
    assert response.status == 401
    assert await lead_count(client) == 0


async def test_relay_with_api_key_and_mapping(client: Client) -> None:
    lead = {
        "id": "zap-1",
        "First Name": "Ana",
        "Phone Number": "612 345 678",
        "campaign_name": "Spring",
    }
    response = await client.post("/leads", json=lead, headers={"X-Api-Key": RELAY_KEY})
    assert response.status == 201
    body = await response.json()
    assert body["leads"][0]["script"] == "car-test-drive"
    assert set(body["leads"][0]["links"]) >= {"telegram", "whatsapp", "sms", "tiktok", "web"}
    async with client.app[DATABASE].reading() as connection:
        row = (await connection.execute(select(LeadRow.__table__))).one()  # type: ignore[attr-defined]
    assert row.source == "api:zapier"
    assert row.fields["first_name"] == "Ana"
    assert row.phone == "+34612345678"  # the script's region (ES) completes the number
    assert row.attribution["campaign_name"] == "Spring"


async def test_relay_with_hmac_and_an_explicit_script(client: Client) -> None:
    body = json.dumps({"id": "zap-2", "First Name": "Ana"}).encode()
    signature = "sha256=" + hmac.new(RELAY_HMAC.encode(), body, hashlib.sha256).hexdigest()
    response = await client.post(
        "/leads?source=zapier&script=recruiting",
        data=body,
        headers={"X-Leadbot-Signature": signature, "Content-Type": "application/json"},
    )
    assert response.status == 201
    assert (await response.json())["leads"][0]["script"] == "recruiting"


async def test_relay_errors(client: Client) -> None:
    no_key = await client.post("/leads", json={"id": "x"})
    assert no_key.status == 401
    unknown_script = await client.post(
        "/leads?script=nope", json={"id": "x"}, headers={"X-Api-Key": RELAY_KEY}
    )
    assert unknown_script.status == 404
    assert (await unknown_script.json())["error"]["code"] == "unknown_script"
    unknown_source = await client.post(
        "/leads?source=hubspot", json={"id": "x"}, headers={"X-Api-Key": RELAY_KEY}
    )
    assert unknown_source.status == 400
    assert await lead_count(client) == 0


async def test_unknown_route_is_a_json_404(client: Client) -> None:
    response = await client.get("/nowhere")
    assert response.status == 404
    assert (await response.json())["error"]["code"] == "not_found"
    assert response.headers["X-Request-Id"]
