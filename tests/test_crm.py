"""CRM delivery end to end: the real app, a lead and a web chat conversation, a fake CRM on
loopback; every delivery verified with the snippet docs/crm.md shows."""

from __future__ import annotations

import asyncio
import re
import textwrap
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient
from click.testing import CliRunner
from pytest_aiohttp import AiohttpClient

from tests.fake_crm import FakeCrm
from webhooks.app import create_app
from webhooks.cli import main
from webhooks.settings import Settings

DOC = Path(__file__).parent.parent / "docs" / "crm.md"
SECRET = "crm-webhook-secret"
RELAY_KEY = "relay-key-abc"
SCRIPT = """\
    id: quick
    name: Quick quote
    languages: [en]
    lead_fields: [first_name, email]
    greeting: "Hi {{ lead.first_name }}!"
    questions:
      - id: budget
        type: number
        prompt: What budget do you have in mind?
    scoring:
      - if: answers.budget >= 10000
        points: 30
        reason: budget >= 10k
    outcomes:
      - id: hot
        min_score: 30
        qualified: true
        message: Thanks! A specialist will call you today.
      - id: cold
        qualified: false
        message: Thanks! We'll email you our offers.
"""


def documented_verify() -> Callable[..., bool]:
    """The verification snippet of docs/crm.md, exactly as printed there."""
    section = DOC.read_text(encoding="utf-8").split("## Verifying the signature", 1)[1]
    found = re.search(r"```python\n(.*?)```", section, re.DOTALL)
    assert found is not None
    namespace: dict[str, Any] = {}
    exec(compile(found.group(1), str(DOC), "exec"), namespace)
    verify: Callable[..., bool] = namespace["verify"]
    return verify


def settings_for(tmp_path: Path, url: str, events: list[str], **overrides: Any) -> Settings:
    script = tmp_path / "quick.yaml"
    script.write_text(textwrap.dedent(SCRIPT))
    values: dict[str, Any] = {
        "database_url": f"sqlite+aiosqlite:///{tmp_path / 'crm.db'}",
        "secret_key": "test-secret-key-0123456789",
        "public_url": "http://testserver",
        "scripts": [script],
        "relays": {"zapier": {"api_keys": [RELAY_KEY]}},
        "crm": {
            "webhooks": [{"name": "hub", "url": url, "secret": SECRET, "events": events}],
            "first_retry_seconds": 0.05,
            "timeout": 2,
        },
    }
    values.update(overrides)
    return Settings(**values)


async def crm_app(
    aiohttp_client: AiohttpClient, aiohttp_server: Any, tmp_path: Path, events: list[str]
) -> tuple[TestClient[Any, Any], FakeCrm, str]:
    fake = FakeCrm()
    server = await aiohttp_server(fake.app())
    url = str(server.make_url("/crm"))
    client = await aiohttp_client(create_app(settings_for(tmp_path, url, events)))
    return client, fake, url


async def submit(client: TestClient[Any, Any], external_id: str = "zap-1") -> str:
    lead = {
        "id": external_id,
        "first_name": "Ana",
        "email": "ana@example.com",
        "phone": "+34612345678",
    }
    response = await client.post("/leads", json=lead, headers={"X-Api-Key": RELAY_KEY})
    assert response.status == 201, await response.text()
    chooser: str = (await response.json())["leads"][0]["chooser_url"]
    return chooser.rsplit("/r/", 1)[1]


async def chat(client: TestClient[Any, Any], token: str, *texts: str) -> None:
    assert (await client.get(f"/chat/{token}")).status == 200
    for text in texts:
        body = {"text": text, "client_id": str(uuid.uuid4())}
        response = await client.post(f"/chat/{token}/messages", json=body)
        assert response.status == 202, await response.text()


async def test_deliveries_are_signed_as_the_docs_show_how_to_verify(
    aiohttp_client: AiohttpClient, aiohttp_server: Any, tmp_path: Path
) -> None:
    client, fake, _ = await crm_app(aiohttp_client, aiohttp_server, tmp_path, ["lead.created"])
    await submit(client)
    await fake.wait_until(lambda: len(fake.accepted()) == 1, "lead.created")
    [got] = fake.accepted()
    verify = documented_verify()
    signature = got.headers["X-Leadbot-Signature"]
    assert verify(SECRET, signature, got.body)
    assert not verify("another-secret", signature, got.body)
    assert not verify(SECRET, signature, got.body.replace(b"Ana", b"Eve"))
    assert got.headers["X-Leadbot-Event"] == "lead.created"
    assert got.headers["Content-Type"] == "application/json"
    body = got.json
    assert list(body) == [
        "version",
        "event",
        "delivery_id",
        "sequence",
        "occurred_at",
        "lead",
        "conversation",
    ]
    assert (body["version"], body["event"], body["sequence"]) == (1, "lead.created", 1)
    assert body["delivery_id"] == got.headers["X-Leadbot-Delivery"]
    assert body["lead"]["fields"]["first_name"] == "Ana"
    assert body["lead"]["email"] == "ana@example.com"
    assert body["lead"]["source"] == "api:zapier"
    assert body["conversation"] is None


async def test_a_conversation_reaches_the_crm_in_sequence_order_through_failures(
    aiohttp_client: AiohttpClient, aiohttp_server: Any, tmp_path: Path
) -> None:
    events = [
        "lead.created",
        "lead.updated",
        "lead.qualified",
        "lead.disqualified",
        "lead.completed",
    ]
    client, fake, _ = await crm_app(aiohttp_client, aiohttp_server, tmp_path, events)
    fake.answer_next(500, 503)  # lead.created fails twice; the rest wait behind it
    token = await submit(client)
    await chat(client, token, "20000")
    await fake.wait_until(lambda: len(fake.accepted()) == 4, "four events")
    accepted = fake.accepted()
    assert [r.json["event"] for r in accepted] == [
        "lead.created",
        "lead.updated",
        "lead.qualified",
        "lead.completed",
    ]
    assert [r.json["sequence"] for r in accepted] == [1, 2, 3, 4]
    assert [r.status for r in fake.received][:2] == [500, 503]
    tries = {r.headers["X-Leadbot-Delivery"] for r in fake.received[:3]}
    assert tries == {accepted[0].headers["X-Leadbot-Delivery"]}  # one delivery, three tries
    qualified = accepted[2].json
    assert qualified["lead"]["answers"] == {"budget": 20000}
    assert (qualified["lead"]["outcome"], qualified["lead"]["qualified"]) == ("hot", True)
    assert qualified["lead"]["score"] == 30
    assert qualified["lead"]["reasons"][0] == "budget >= 10k: +30"
    assert qualified["conversation"]["channel"] == "web"
    assert qualified["conversation"]["status"] == "completed"
    verify = documented_verify()
    assert all(verify(SECRET, r.headers["X-Leadbot-Signature"], r.body) for r in accepted)


async def test_a_turn_no_subscription_wants_writes_no_event(
    aiohttp_client: AiohttpClient, aiohttp_server: Any, tmp_path: Path
) -> None:
    client, fake, _ = await crm_app(aiohttp_client, aiohttp_server, tmp_path, ["lead.disqualified"])
    token = await submit(client)
    await chat(client, token, "20000")  # qualified: nothing the subscription asked for
    other = await submit(client, "zap-2")
    await chat(client, other, "50")
    await fake.wait_until(lambda: len(fake.accepted()) == 1, "lead.disqualified")
    [got] = fake.accepted()
    assert got.json["event"] == "lead.disqualified"
    assert got.json["sequence"] == 1  # the lead's first event: nothing else was recorded


async def test_410_disables_the_webhook_and_the_cli_lists_and_retries(
    aiohttp_client: AiohttpClient, aiohttp_server: Any, tmp_path: Path
) -> None:
    client, fake, url = await crm_app(aiohttp_client, aiohttp_server, tmp_path, ["lead.created"])
    fake.answer_next(410)
    await submit(client)
    await fake.wait_until(lambda: len(fake.received) == 1, "the first delivery")
    config = tmp_path / "leadbot.yaml"
    config.write_text(f"database_url: sqlite+aiosqlite:///{tmp_path / 'crm.db'}\n")
    runner = CliRunner()

    async def leadbot(*args: str) -> str:
        # In a thread: the command runs an event loop of its own, as it does in a shell.
        result = await asyncio.to_thread(runner.invoke, main, list(args))
        assert result.exit_code == 0, result.output
        return result.output

    async def listed(*args: str) -> str:
        return await leadbot("deliveries", "list", "--config", str(config), *args)

    # The fake has answered 410; once the worker has recorded it, the webhook is off.
    for _ in range(100):
        if "disabled" in await listed("--subscriptions"):
            break
        await asyncio.sleep(0.05)
    await submit(client, "zap-2")  # the webhook is off now: not even recorded
    dead = await listed()
    assert "lead.created" in dead
    assert "failed" in dead
    assert "410" in dead
    assert "disabled" in await listed("--subscriptions")
    retried = await leadbot("deliveries", "retry", "--config", str(config), "-s", "hub")
    assert "1 deliver(ies) queued again" in retried
    await fake.wait_until(lambda: len(fake.accepted()) == 1, "the retried delivery")
    assert fake.accepted()[0].json["lead"]["external_id"] == "zap-1"
    assert "active" in await listed("--subscriptions")
    replayed = await leadbot(
        "deliveries", "replay", "--config", str(config), "-s", "hub", "--lead", "1"
    )
    assert "1 event(s) queued for replay" in replayed
    await fake.wait_until(lambda: len(fake.accepted()) == 2, "the replayed event")
    first, again = fake.accepted()
    assert again.json["sequence"] == first.json["sequence"] == 1
    assert again.json["delivery_id"] != first.json["delivery_id"]
    assert url.endswith("/crm")
