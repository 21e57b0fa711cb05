"""The OpenAPI document: valid 3.1, and naming every route the real application registers."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from openapi_spec_validator import validate

from webhooks.app import create_app
from webhooks.openapi import openapi_document
from webhooks.settings import Settings

Client = TestClient[web.Request, web.Application]
MakeClient = Callable[[web.Application], Awaitable[Client]]
METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}


def settings_for(tmp_path: Path) -> Settings:
    # Every optional source enabled, so that every route that can exist is registered.
    return Settings(
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'openapi.db'}",
        secret_key="test-secret-key-0123456789",
        public_url="https://leads.example.com/",
        tiktok={"app_secret": "t"},
        google={"key": "g"},
        relays={"zapier": {"api_keys": ["k"]}},
    )


@pytest.fixture
async def spec(aiohttp_client: MakeClient, tmp_path: Path) -> dict[str, Any]:
    client = await aiohttp_client(create_app(settings_for(tmp_path)))
    response = await client.get("/openapi.json")
    assert response.status == 200
    assert response.content_type == "application/json"
    document: dict[str, Any] = await response.json()
    return document


def operations(spec: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            if method in METHODS:
                yield path, method, operation


def test_the_document_is_valid_openapi_3_1(spec: dict[str, Any]) -> None:
    validate(spec)
    assert spec["openapi"].startswith("3.1")
    assert spec["servers"] == [{"url": "https://leads.example.com"}]


def test_every_registered_route_is_described(spec: dict[str, Any], tmp_path: Path) -> None:
    app = create_app(settings_for(tmp_path))
    registered = {
        (route.resource.canonical, route.method.lower())
        for route in app.router.routes()
        if route.resource is not None and route.method not in ("HEAD", "*")
    }
    # The reps' console is pages for people, not an API: /api/v1 is described instead.
    registered = {(path, method) for path, method in registered if not path.startswith("/console")}
    described = {(path, method) for path, method, _ in operations(spec)}
    assert registered, "create_app registered no routes"
    assert registered - described == set()


def test_the_contract_endpoints_are_described(spec: dict[str, Any]) -> None:
    described = {(path, method) for path, method, _ in operations(spec)}
    contract = {
        ("/leads/tiktok", "post"),
        ("/leads", "post"),
        ("/leads/google", "post"),
        ("/f/{script}", "get"),
        ("/f/{script}", "post"),
        ("/r/{token}", "get"),
        ("/r/{token}/{app}", "get"),
        ("/chat/{token}", "get"),
        ("/chat/{token}/messages", "get"),
        ("/chat/{token}/messages", "post"),
        ("/chat/{token}/events", "get"),
        ("/webhooks/telegram", "post"),
        ("/webhooks/twilio", "post"),
        ("/webhooks/twilio/status", "post"),
        ("/webhooks/tiktok", "post"),
        ("/healthz", "get"),
        ("/readyz", "get"),
        ("/metrics", "get"),
        ("/openapi.json", "get"),
    }
    assert contract - described == set()


def test_every_client_error_has_the_error_schema(spec: dict[str, Any]) -> None:
    for path, method, operation in operations(spec):
        for status, response in operation["responses"].items():
            if status.startswith("4"):
                schema = response["content"]["application/json"]["schema"]
                assert schema == {"$ref": "#/components/schemas/Error"}, (path, method, status)
    error = spec["components"]["schemas"]["Error"]
    assert error["properties"]["error"]["required"] == ["code", "message"]


def test_intake_operations_name_their_authentication(spec: dict[str, Any]) -> None:
    schemes = spec["components"]["securitySchemes"]
    headers = {scheme.get("name") for scheme in schemes.values()}
    assert {"X-Open-Signature", "TikTok-Signature", "X-Api-Key", "X-Leadbot-Signature"} <= headers
    paths = spec["paths"]
    assert paths["/leads/tiktok"]["post"]["security"] == [
        {"tiktokOpenSignature": []},
        {"tiktokSignature": []},
    ]
    assert {"relayApiKey": []} in paths["/leads"]["post"]["security"]
    assert "google_key" in paths["/leads/google"]["post"]["description"]


def test_the_document_does_not_depend_on_secrets() -> None:
    with_secrets = openapi_document(Settings(tiktok={"app_secret": "t"}, google={"key": "g"}))
    assert openapi_document(Settings()) == with_secrets
