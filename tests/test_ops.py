"""Operations end to end (health, readiness, metrics, access lines) and log redaction."""

from __future__ import annotations

import io
import json
import logging
import math
import re
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from hypothesis import given
from hypothesis import strategies as st
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import insert, text

from storage.db import connect
from storage.tables import OutboxRow
from webhooks.app import create_app
from webhooks.keys import DATABASE
from webhooks.logs import configure_logging, redact_text, redact_value
from webhooks.metrics import count_turn
from webhooks.settings import Settings

Client = TestClient[web.Request, web.Application]
MakeClient = Callable[[web.Application], Awaitable[Client]]
RELAY_KEY = "relay-key-abc"


def settings_for(tmp_path: Path) -> Settings:
    return Settings(
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'ops.db'}",
        secret_key="test-secret-key-0123456789",
        relays={"zapier": {"api_keys": [RELAY_KEY]}},
    )


@pytest.fixture
async def client(aiohttp_client: MakeClient, tmp_path: Path) -> Client:
    return await aiohttp_client(create_app(settings_for(tmp_path)))


@pytest.fixture
def log_lines() -> Iterator[Callable[[], list[dict[str, Any]]]]:
    """configure_logging() writing JSON to a buffer; the root logger is restored afterwards."""
    root = logging.getLogger()
    saved = (root.level, list(root.handlers), logging.getLogger("aiohttp.access").level)
    stream = io.StringIO()
    configure_logging("INFO", "json", stream=stream)
    yield lambda: [json.loads(line) for line in stream.getvalue().splitlines()]
    for handler in root.handlers[:]:
        if handler not in saved[1]:
            root.removeHandler(handler)
    root.setLevel(saved[0])
    logging.getLogger("aiohttp.access").setLevel(saved[2])


def samples(body: str, name: str) -> list[tuple[dict[str, str], float]]:
    return [
        (sample.labels, sample.value)
        for family in text_string_to_metric_families(body)
        for sample in family.samples
        if sample.name == name
    ]


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


# -- health and readiness --------------------------------------------------------------------


async def test_healthz_answers_ok(client: Client) -> None:
    response = await client.get("/healthz")
    assert response.status == 200
    assert await response.json() == {"status": "ok"}


async def test_readyz_is_ready_on_a_current_schema(client: Client) -> None:
    response = await client.get("/readyz")
    assert response.status == 200
    body = await response.json()
    assert body["status"] == "ready"
    assert body["schema"]


async def test_readyz_names_an_outdated_schema(client: Client) -> None:
    async with client.app[DATABASE].writing() as connection:
        await connection.execute(text("UPDATE alembic_version SET version_num = '0000_old'"))
        await connection.commit()
    response = await client.get("/readyz")
    assert response.status == 503
    error = (await response.json())["error"]
    assert error["code"] == "schema_outdated"
    assert re.match(r"schema at 0000_old, needs \w+", error["message"]), error["message"]


@pytest.fixture
async def unreachable(
    aiohttp_client: MakeClient, tmp_path: Path
) -> AsyncIterator[tuple[Client, Callable[[], list[dict[str, Any]]]]]:
    """The real app whose database is a PostgreSQL server that is not there (a closed
    loopback port): its resource contexts are replaced by one that opens only that."""
    app = create_app(settings_for(tmp_path))

    async def database_not_there(app: web.Application) -> AsyncIterator[None]:
        database = connect(f"postgresql+asyncpg://leadbot@127.0.0.1:{closed_port()}/leadbot")
        app[DATABASE] = database
        yield
        await database.dispose()

    app.cleanup_ctx.clear()
    app.cleanup_ctx.append(database_not_there)
    root = logging.getLogger()
    saved = (root.level, list(root.handlers))
    stream = io.StringIO()
    configure_logging("INFO", "json", stream=stream)
    try:
        yield (
            await aiohttp_client(app),
            lambda: [json.loads(line) for line in stream.getvalue().splitlines()],
        )
    finally:
        for handler in root.handlers[:]:
            if handler not in saved[1]:
                root.removeHandler(handler)
        root.setLevel(saved[0])


async def test_readyz_names_an_unreachable_database_and_logs_with_the_request_id(
    unreachable: tuple[Client, Callable[[], list[dict[str, Any]]]],
) -> None:
    client, lines = unreachable
    response = await client.get("/readyz", headers={"X-Request-Id": "probe-1"})
    assert response.status == 503
    error = (await response.json())["error"]
    assert error["code"] == "database_unreachable"
    assert error["message"].startswith("database unreachable: ")
    warning = next(line for line in lines() if line["logger"] == "leadbot.ops")
    assert warning["request_id"] == "probe-1"
    assert "exception" in warning
    # Liveness does not depend on the database.
    assert (await client.get("/healthz")).status == 200


async def test_metrics_still_serve_when_the_database_is_unreachable(
    unreachable: tuple[Client, Callable[[], list[dict[str, Any]]]],
) -> None:
    client, _lines = unreachable
    response = await client.get("/metrics")
    assert response.status == 200
    [(_labels, depth)] = samples(await response.text(), "leadbot_outbox_pending")
    assert math.isnan(depth)


# -- metrics ---------------------------------------------------------------------------------


async def test_metrics_are_prometheus_text_with_latency_by_route_pattern(client: Client) -> None:
    await client.get("/healthz")
    await client.get("/no/such/page?email=ana@example.com")
    response = await client.get("/metrics")
    assert response.status == 200
    assert response.headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
    body = await response.text()
    counts = {
        (labels["route"], labels["method"], labels["status"]): value
        for labels, value in samples(body, "leadbot_http_request_duration_seconds_count")
    }
    assert counts[("/healthz", "GET", "200")] == 1
    assert counts[("unmatched", "GET", "404")] == 1
    assert "/no/such/page" not in body
    assert samples(body, "process_resident_memory_bytes")


async def test_unusual_methods_share_one_label(client: Client) -> None:
    for method in ("PROPFIND", "MKCOL", "PROPFIND"):
        assert (await client.request(method, "/healthz")).status == 405
    body = await (await client.get("/metrics")).text()
    counts = {
        (labels["route"], labels["method"], labels["status"]): value
        for labels, value in samples(body, "leadbot_http_request_duration_seconds_count")
    }
    assert counts[("unmatched", "other", "405")] == 3
    assert "PROPFIND" not in body


async def test_refused_intake_is_counted_by_route_and_result(client: Client) -> None:
    response = await client.post(
        "/leads",
        json={"id": "x-1", "phone": "+34612345678"},
        headers={"X-Api-Key": "wrong-key"},
    )
    assert response.status == 401
    body = await (await client.get("/metrics")).text()
    counts = samples(body, "leadbot_http_request_duration_seconds_count")
    assert ({"route": "/leads", "method": "POST", "status": "401"}, 1) in counts
    [(labels, value)] = samples(body, "leadbot_intake_total")
    assert labels == {"source": "api:zapier", "result": "unauthorized"}
    assert value == 1


async def test_intake_and_turn_counters(client: Client) -> None:
    created = await client.post(
        "/leads", json={"id": "lead-1", "first_name": "Ana"}, headers={"X-Api-Key": RELAY_KEY}
    )
    assert created.status == 201
    count_turn(client.app, "web")
    count_turn(client.app, "web")
    count_turn(client.app, "telegram")
    body = await (await client.get("/metrics")).text()
    turns = {labels["channel"]: value for labels, value in samples(body, "leadbot_turns_total")}
    assert turns == {"web": 2, "telegram": 1}
    intake = {labels["result"]: value for labels, value in samples(body, "leadbot_intake_total")}
    assert intake == {"created": 1}


async def test_outbox_gauges_are_read_at_scrape_time(client: Client) -> None:
    empty = await (await client.get("/metrics")).text()
    assert samples(empty, "leadbot_outbox_pending") == [({}, 0)]
    assert samples(empty, "leadbot_outbox_oldest_pending_age_seconds") == [({}, 0)]
    now = datetime.now(UTC)
    rows = [
        ("pending", now - timedelta(seconds=90)),
        ("pending", now - timedelta(seconds=10)),
        ("sent", now - timedelta(hours=5)),
    ]
    async with client.app[DATABASE].writing() as connection:
        for number, (status, created_at) in enumerate(rows):
            await connection.execute(
                insert(OutboxRow).values(
                    kind="send_text",
                    idempotency_key=f"k{number}",
                    payload={},
                    status=status,
                    due_at=created_at,
                    created_at=created_at,
                )
            )
        await connection.commit()
    body = await (await client.get("/metrics")).text()
    assert samples(body, "leadbot_outbox_pending") == [({}, 2)]
    [(_labels, age)] = samples(body, "leadbot_outbox_oldest_pending_age_seconds")
    assert 90 <= age < 120


# -- access lines ----------------------------------------------------------------------------


async def test_one_access_line_per_request_without_path_or_query(
    client: Client, log_lines: Callable[[], list[dict[str, Any]]]
) -> None:
    response = await client.get(
        "/no/such/page?email=ana@example.com&phone=%2B34612345678",
        headers={"X-Request-Id": "req-42"},
    )
    assert response.status == 404
    assert response.headers["X-Request-Id"] == "req-42"
    [line] = [line for line in log_lines() if line["logger"] == "leadbot.access"]
    assert line["request_id"] == "req-42"
    assert line["method"] == "GET"
    assert line["route"] == "unmatched"
    assert line["status"] == 404
    assert line["duration_ms"] >= 0
    assert line["message"].startswith("GET unmatched 404 ")
    assert {"time", "level"} <= line.keys()
    raw = json.dumps(log_lines())
    assert "ana" not in raw
    assert "612345678" not in raw
    assert "no/such" not in raw


async def test_access_line_names_the_route_pattern(
    client: Client, log_lines: Callable[[], list[dict[str, Any]]]
) -> None:
    await client.post("/leads?source=zapier", json={"id": "1"}, headers={"X-Api-Key": RELAY_KEY})
    [line] = [line for line in log_lines() if line["logger"] == "leadbot.access"]
    assert (line["method"], line["route"], line["status"]) == ("POST", "/leads", 201)
    assert "zapier" not in line["message"]


# -- redaction -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "redacted"),
    [
        ("call +34612345678 now", "call +34******78 now"),
        ("call +34 612 34 56 78.", "call +34******78."),
        ("US +1 (415) 555-2671", "US +14******71"),
        ("mail ana.garcia+ads@example.com", "mail a***@example.com"),
        ("to: Jane.Doe@mail.example.co.uk, cc", "to: J***@mail.example.co.uk, cc"),
        ("GET /x?token=abc123&page=2", "GET /x?token=***&page=2"),
        ("Authorization: Bearer eyJhbGciOi.x.y", "Authorization: Bearer ***"),
        ('{"api_key": "k-123", "name": "x"}', '{"api_key": "***", "name": "x"}'),
        ("password=hunter2 user=ana", "password=*** user=ana"),
        ("app_secret: s3cr3t", "app_secret: ***"),
    ],
)
def test_redact_text(raw: str, redacted: str) -> None:
    assert redact_text(raw) == redacted


@pytest.mark.parametrize(
    "harmless",
    [
        "lead 7126711421177430274 stored",
        "took 12.5 ms at 2026-01-05T10:00:00+01:00",
        "GET /leads 201 3.2 ms",
        "the key is wrong",
        "timezone +0100",
    ],
)
def test_redaction_leaves_the_rest_alone(harmless: str) -> None:
    assert redact_text(harmless) == harmless


@given(
    country=st.integers(min_value=1, max_value=999),
    national=st.text(alphabet="0123456789", min_size=6, max_size=11),
    before=st.sampled_from(["", "tel ", "phone=", "(", '"']),
)
def test_no_e164_number_survives_redaction(country: int, national: str, before: str) -> None:
    number = f"+{country}{national}"
    out = redact_text(f"{before}{number} end")
    assert number not in out
    assert re.search(r"\+\d{2}\*{6}\d{2}", out), out


def test_redact_value_masks_secret_keys_at_any_depth() -> None:
    value = {
        "lead": {"email": "ana@example.com", "phone": "+34612345678", "budget": 3},
        "headers": [{"Authorization": "Bearer abc"}, {"X-Api-Key": "k"}],
        "google_key": "g",
        "ok": True,
    }
    assert redact_value(value) == {
        "lead": {"email": "a***@example.com", "phone": "+34******78", "budget": 3},
        "headers": [{"Authorization": "***"}, {"X-Api-Key": "***"}],
        "google_key": "***",
        "ok": True,
    }


def test_json_lines_redact_message_extras_and_traceback(
    log_lines: Callable[[], list[dict[str, Any]]],
) -> None:
    log = logging.getLogger("leadbot.test")
    log.info(
        "lead from %s (%s)",
        "ana@example.com",
        "+34612345678",
        extra={"token": "abc", "payload": {"secret": "s", "phone": "+447700900123"}, "n": 3},
    )
    try:
        raise ValueError("bad email bob@example.org")
    except ValueError:
        log.exception("could not parse")
    first, second = log_lines()
    assert first["message"] == "lead from a***@example.com (+34******78)"
    assert first["level"] == "INFO"
    assert first["logger"] == "leadbot.test"
    assert first["token"] == "***"
    assert first["payload"] == {"secret": "***", "phone": "+44******23"}
    assert first["n"] == 3
    assert "request_id" not in first
    datetime.fromisoformat(first["time"])
    assert second["level"] == "ERROR"
    assert "b***@example.org" in second["exception"]
    assert "bob@" not in second["exception"]


def test_text_format_and_reconfiguring_replaces_the_handler() -> None:
    root = logging.getLogger()
    saved = (root.level, list(root.handlers))
    stream = io.StringIO()
    try:
        configure_logging("INFO", "json", stream=io.StringIO())
        configure_logging("DEBUG", "text", stream=stream)
        assert [h.get_name() for h in root.handlers].count("leadbot") == 1
        assert root.level == logging.DEBUG
        logging.getLogger("leadbot.test").debug(
            "sms to +34612345678", extra={"request_id": "r1", "password": "p"}
        )
    finally:
        for handler in root.handlers[:]:
            if handler not in saved[1]:
                root.removeHandler(handler)
        root.setLevel(saved[0])
    line = stream.getvalue().strip()
    assert re.match(
        r"^\S+ \S+ DEBUG   leadbot.test sms to \+34\*{6}78 request_id=r1 password=\*\*\*$", line
    ), line
    with pytest.raises(ValueError, match="json or text"):
        configure_logging("INFO", "xml")


async def test_applied_turns_are_counted_per_channel(client: Client) -> None:
    form = {"first_name": "Ana", "phone": "612345678", "email": "a@example.com", "_consent": "yes"}
    posted = await client.post("/f/car-test-drive", data=form, allow_redirects=False)
    token = posted.headers["Location"].removeprefix("/r/")
    assert (await client.get(f"/chat/{token}")).status == 200  # opening the chat: one turn
    message = {"text": "suv", "client_id": "c1"}
    for _ in range(2):  # the second is the same message again: not a second turn
        assert (await client.post(f"/chat/{token}/messages", json=message)).status == 202
    body = await (await client.get("/metrics")).text()
    assert ({"channel": "web"}, 2.0) in samples(body, "leadbot_turns_total")


async def test_a_malformed_multipart_body_is_a_400_not_a_500(client: Client) -> None:
    response = await client.post(
        "/f/car-test-drive",
        data=b"--x\r\nContent-Disposition: form-data; name\x00=broken\r\n\r\nv\r\n--x--\r\n",
        headers={"Content-Type": "multipart/form-data; boundary=x"},
    )
    assert response.status == 400
    assert (await response.json())["error"]["code"] == "bad_request"
