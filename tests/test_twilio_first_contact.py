"""Speed to lead over Twilio: the form's lead gets an SMS, or a WhatsApp template, at once; the
reply from that number opens the conversation with that lead."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import yaml
from pytest_aiohttp import AiohttpClient, AiohttpServer

from tests.fake_twilio import SMS_NUMBER, WHATSAPP_NUMBER, Harness, running

EXAMPLES = Path(__file__).parent.parent / "examples" / "scripts"
ANA = "+34612345678"  # the form's 612345678, in Spain
WELCOME = "HX" + "3" * 32
NO_QUIET_HOURS = {"quiet_hours": {"start": "00:00", "end": "00:00"}}  # any time of day


def whatsapp_first(tmp_path: Path) -> Path:
    """car_test_drive.yaml, writing first on WhatsApp with an approved template."""
    script = yaml.safe_load((EXAMPLES / "car_test_drive.yaml").read_text(encoding="utf-8"))
    script["first_contact"] = {
        "channel": "whatsapp",
        "template": WELCOME,
        "variables": {"1": "{{ lead.first_name or 'there' }}"},
    }
    path = tmp_path / "car_test_drive.yaml"
    path.write_text(yaml.safe_dump(script, allow_unicode=True), encoding="utf-8")
    return path


@pytest.fixture(params=["sqlite", "postgresql"])
async def tw(
    request: pytest.FixtureRequest,
    aiohttp_client: AiohttpClient,
    aiohttp_server: AiohttpServer,
    tmp_path: Path,
) -> AsyncIterator[Harness]:
    async with running(
        aiohttp_client, aiohttp_server, tmp_path, request.param, first_contact=NO_QUIET_HOURS
    ) as harness:
        yield harness


async def test_an_sms_at_once_and_the_reply_opens_the_conversation(tw: Harness) -> None:
    await tw.form_lead(
        "car-test-drive", first_name="Ana", phone="612345678", email="ana@example.com"
    )
    ana = tw.texter(ANA)
    [first] = await ana.expect("Hi Ana, it's Acme Motors")
    assert first.params["From"] == SMS_NUMBER
    assert first.params["StatusCallback"].endswith("/webhooks/twilio/status")
    await ana.say("Yes please")
    await ana.expect("Hi Ana! Thanks for your interest", "Which model would you like to drive?")
    [lead] = await tw.leads()
    [conversation] = await tw.conversations()
    assert (conversation.lead_id, conversation.channel, conversation.channel_user_id) == (
        lead.id,
        "sms",
        ANA,
    )


async def test_stop_in_reply_to_first_contact_writes_nothing_more(tw: Harness) -> None:
    await tw.form_lead(
        "car-test-drive", first_name="Ana", phone="612345678", email="ana@example.com"
    )
    ana = tw.texter(ANA)
    await ana.expect("Hi Ana, it's Acme Motors")
    await ana.say("STOP")
    await tw.settled()
    assert await tw.conversations() == []
    assert len(tw.fake.sent(ANA)) == 1


async def test_a_whatsapp_template_and_a_quick_reply_to_it(
    aiohttp_client: AiohttpClient, aiohttp_server: AiohttpServer, tmp_path: Path
) -> None:
    async with running(
        aiohttp_client,
        aiohttp_server,
        tmp_path,
        scripts=[whatsapp_first(tmp_path)],
        first_contact=NO_QUIET_HOURS,
    ) as tw:
        tw.fake.template(
            "Hi {{1}}, it's Acme Motors on WhatsApp. Shall we book your test drive?",
            ("book", "Yes, let's book"),
            ("later", "Not now"),
            sid=WELCOME,
        )
        await tw.form_lead(
            "car-test-drive", first_name="Ana", phone="612345678", email="ana@example.com"
        )
        ana = tw.texter(ANA, "whatsapp", profile_name="Ana")
        [first] = await ana.expect("Hi Ana, it's Acme Motors on WhatsApp")
        assert first.params["From"] == f"whatsapp:{WHATSAPP_NUMBER}"
        assert "Body" not in first.params  # a template, never free text to a new contact
        assert (first.content_sid, json.loads(first.params["ContentVariables"])) == (
            WELCOME,
            {"1": "Ana"},
        )
        await ana.tap("book", first)
        await ana.expect("Hi Ana! Thanks for your interest", "Which model would you like to drive?")
        [conversation] = await tw.conversations()
        assert (conversation.channel, conversation.channel_user_id) == ("whatsapp", ANA)
        assert len(await tw.leads()) == 1
