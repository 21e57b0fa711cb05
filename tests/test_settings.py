"""Settings are checked at start, with messages that name the key and its variable."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from webhooks.app import create_app
from webhooks.settings import Settings, SettingsError, load_settings


def test_an_empty_secret_is_refused_with_its_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LEADBOT_TIKTOK__APP_SECRET", "")
    with pytest.raises(SettingsError) as raised:
        load_settings()
    assert "tiktok.app_secret (LEADBOT_TIKTOK__APP_SECRET)" in str(raised.value)
    assert "must not be empty" in str(raised.value)


def test_a_relay_without_keys_or_signature_is_refused(tmp_path: Path) -> None:
    config = tmp_path / "leadbot.yaml"
    config.write_text("relays:\n  zapier:\n    mapping: {phone: Phone}\n")
    with pytest.raises(SettingsError, match="a relay needs api_keys or hmac_secret"):
        load_settings(config)


def test_a_list_that_is_not_json_in_the_environment_is_explained(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("LEADBOT_RELAYS__ZAPIER__API_KEYS", "k1")
    with pytest.raises(
        SettingsError, match=r"""are JSON, e.g. LEADBOT_RELAYS__ZAPIER__API_KEYS='\["key"\]'"""
    ):
        load_settings()


def test_file_and_environment_agree_on_names_ids_and_durations(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "leadbot.yaml"
    config.write_text(
        "relays:\n  Zapier:\n    api_keys: [from-file]\n"
        "routes:\n  - {form_id: 6873052183063953666, script: car-test-drive}\n"
    )
    monkeypatch.setenv("LEADBOT_TOKEN_LIFETIME", "7d")
    settings = load_settings(config)
    assert list(settings.relays) == ["zapier"]
    assert settings.routes[0].form_id == "6873052183063953666"
    assert settings.token_lifetime == timedelta(days=7)


def base(tmp_path: Path, **extra: Any) -> Settings:
    return Settings(
        database_url=f"sqlite+aiosqlite:///{tmp_path / 's.db'}",
        secret_key="test-secret-key-0123456789",
        **extra,
    )


def test_unknown_scripts_in_routes_are_refused_at_start(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="unknown script"):
        create_app(base(tmp_path, routes=[{"script": "nope"}]))


def test_postgres_needs_a_secret_key() -> None:
    with pytest.raises(SettingsError, match="LEADBOT_SECRET_KEY"):
        create_app(Settings(database_url="postgresql://postgres@127.0.0.1/test"))


async def test_pages_may_be_framed_only_by_named_sites(aiohttp_client: Any, tmp_path: Path) -> None:
    closed: TestClient[web.Request, web.Application] = await aiohttp_client(
        create_app(base(tmp_path))
    )
    response = await closed.get("/f/car-test-drive")
    assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
    framed = await aiohttp_client(
        create_app(base(tmp_path, form={"frame_ancestors": ["https://www.example.com"]}))
    )
    response = await framed.get("/f/car-test-drive")
    assert "frame-ancestors https://www.example.com" in response.headers["Content-Security-Policy"]


async def test_behind_a_trusted_proxy_the_form_limit_counts_the_real_client(
    aiohttp_client: Any, tmp_path: Path
) -> None:
    settings = base(tmp_path, form={"per_minute": 1, "trusted_proxies": ["127.0.0.1"]})
    client = await aiohttp_client(create_app(settings))
    form = {"first_name": "Ana", "phone": "612345678", "email": "a@example.com", "_consent": "yes"}
    first = await client.post(
        "/f/car-test-drive",
        data=form,
        headers={"X-Forwarded-For": "203.0.113.7"},
        allow_redirects=False,
    )
    other = await client.post(
        "/f/car-test-drive",
        data=form,
        headers={"X-Forwarded-For": "203.0.113.8"},
        allow_redirects=False,
    )
    again = await client.post(
        "/f/car-test-drive",
        data=form,
        headers={"X-Forwarded-For": "203.0.113.7"},
        allow_redirects=False,
    )
    assert (first.status, other.status, again.status) == (303, 303, 429)


def test_an_in_memory_database_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LEADBOT_DATABASE_URL", "sqlite:///:memory:")
    with pytest.raises(SettingsError, match="in-memory database would lose every lead"):
        load_settings()


async def test_a_client_cannot_choose_its_address_behind_a_proxy(
    aiohttp_client: Any, tmp_path: Path
) -> None:
    settings = base(tmp_path, form={"per_minute": 1, "trusted_proxies": ["127.0.0.1"]})
    client = await aiohttp_client(create_app(settings))
    form = {"first_name": "Ana", "phone": "612345678", "email": "a@example.com", "_consent": "yes"}
    statuses = []
    for spoofed in ("1.1.1.1", "2.2.2.2"):  # the proxy appends the real address, 203.0.113.9
        response = await client.post(
            "/f/car-test-drive",
            data=form,
            headers={"X-Forwarded-For": f"{spoofed}, 203.0.113.9"},
            allow_redirects=False,
        )
        statuses.append(response.status)
    assert statuses == [303, 429]
