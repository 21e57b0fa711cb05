"""Telegram in: the webhook, from /start to buttons, contacts and stickers, on the fake API."""

from __future__ import annotations

import asyncio
import textwrap
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from pytest_aiohttp import AiohttpClient, AiohttpServer
from sqlalchemy import select

from bot.records import Submission
from storage.tables import ReceiptRow
from tests.fake_telegram import (
    SECRET,
    Answer,
    FakeTelegram,
    Harness,
    callback_update,
    message_update,
    open_harness,
    telegram_settings,
)
from webhooks.app import create_app
from webhooks.keys import DATABASE, INTAKE
from webhooks.settings import Settings, SettingsError

RECEIPTS = ReceiptRow.__table__  # type: ignore[attr-defined]

CALL_ME = """
id: call-me
name: Call me back
languages: [en]
region: GB
lead_fields: [first_name]
greeting: Hi {{ lead.first_name or 'there' }}!
questions:
  - id: topic
    type: text
    prompt: What would you like to talk about?
  - id: phone
    type: phone
    prompt: What number can we call you on?
outcomes:
  - id: done
    message: Thanks, we'll call you on {{ answers.phone }}.
"""


@pytest.fixture
async def tg(
    aiohttp_client: AiohttpClient, aiohttp_server: AiohttpServer, tmp_path: Path
) -> Harness:
    return await open_harness(aiohttp_client, aiohttp_server, tmp_path)


@pytest.fixture
async def call_me(
    aiohttp_client: AiohttpClient, aiohttp_server: AiohttpServer, tmp_path: Path
) -> Harness:
    """leadbot with one short script: a text question, then a phone question."""
    script = tmp_path / "call_me.yaml"
    script.write_text(textwrap.dedent(CALL_ME))
    return await open_harness(aiohttp_client, aiohttp_server, tmp_path, scripts=[script])


async def receipts(tg: Harness) -> list[Any]:
    async with tg.client.app[DATABASE].reading() as connection:
        return list((await connection.execute(select(RECEIPTS))).all())


async def intake_lead(tg: Harness, **fields: str) -> tuple[int, str, str]:
    """A car-test-drive lead delivered by a relay: (id, reference, token)."""
    submission = Submission(source="api:test", external_id="ext-1", fields=fields, raw={})
    [accepted] = await tg.client.app[INTAKE].submit([submission], "car-test-drive")
    return accepted.lead_id, accepted.reference, accepted.token


# -- binding a chat to its lead ---------------------------------------------------------------


async def test_start_with_a_token_binds_the_chat_to_that_lead(tg: Harness) -> None:
    lead_id, _, token = await intake_lead(tg, first_name="Ana")
    ana = tg.prospect(42)
    update_id = await ana.start(token)
    await ana.expect("Hi Ana!", "Which model would you like to drive?")
    [conversation] = await tg.conversations()
    assert (conversation.lead_id, conversation.channel, conversation.channel_user_id) == (
        lead_id,
        "telegram",
        "42",
    )
    assert len(await tg.leads()) == 1  # no lead from chat besides the one the link names
    # The receipt is the bot's id and the update's: a redelivery finds it.
    assert [(r.channel, r.provider_id) for r in await receipts(tg)] == [
        ("telegram", f"123456:{update_id}")
    ]


async def test_the_prospects_telegram_language_picks_the_script_language(tg: Harness) -> None:
    token = await tg.form_lead(
        "car-test-drive", first_name="Ana", phone="612345678", email="ana@example.com"
    )
    ana = tg.prospect(42, language="es-ES")
    await ana.start(token)
    await ana.expect("¡Hola Ana!", "¿Qué modelo te gustaría probar?")
    assert ("Berlina S", "sedan_s") in ana.last().buttons


async def test_start_alone_starts_a_lead_from_chat_with_the_profile(tg: Harness) -> None:
    ben = tg.prospect(77, first_name="Ben")
    ben.sender["last_name"] = "Okafor"
    await ben.start()
    await ben.expect("Hi Ben!")  # the default script: the first loaded
    [lead] = await tg.leads()
    assert (lead.source, lead.external_id) == ("telegram", "77")
    assert lead.fields == {"first_name": "Ben", "last_name": "Okafor"}
    assert lead.attribution == {}


async def test_a_hand_typed_start_with_text_counts_as_start_alone(tg: Harness) -> None:
    ben = tg.prospect(77, first_name="Ben")
    await ben.start("please call me back " + "x" * 200)
    await ben.expect("Hi Ben!")
    [lead] = await tg.leads()
    assert (lead.external_id, lead.attribution) == ("77", {})


async def test_start_again_welcomes_back_and_asks_the_pending_question(tg: Harness) -> None:
    _, _, token = await intake_lead(tg, first_name="Ana")
    ana = tg.prospect(42)
    await ana.start(token)
    await ana.expect("Which model would you like to drive?")
    await ana.start()
    _, question = await ana.expect("Welcome back!", "Which model would you like to drive?")
    assert question.buttons
    assert len(await tg.leads()) == 1
    assert len(await tg.conversations()) == 1


async def test_a_reference_code_typed_first_binds_the_chat_to_that_lead(tg: Harness) -> None:
    lead_id, reference, _ = await intake_lead(tg, first_name="Marta")
    marta = tg.prospect(55, first_name="Someone else")
    await marta.say(f"Hi! My reference is {reference}")
    await marta.expect("Hi Marta!", "Which model would you like to drive?")
    [conversation] = await tg.conversations()
    assert conversation.lead_id == lead_id
    assert len(await tg.leads()) == 1


# -- deliveries Telegram repeats or sends at once -------------------------------------------


async def test_a_repeated_update_is_one_turn_and_one_reply(tg: Harness) -> None:
    _, _, token = await intake_lead(tg, first_name="Ana")
    ana = tg.prospect(42)
    start = message_update(900, 42, sender=ana.sender, text=f"/start {token}")
    assert await ana.deliver(start) == {"ok": True}
    assert await ana.deliver(start) == {"ok": True}
    await ana.expect("Which model would you like to drive?")
    answer = message_update(901, 42, sender=ana.sender, text="suv")
    await ana.deliver(answer)
    await ana.expect("When are you planning to buy?")
    await ana.deliver(answer)
    await ana.deliver(start)
    await tg.settled()
    assert tg.fake.texts(42) == [
        "Hi Ana! Thanks for your interest in a test drive. "
        "A few quick questions and you're booked.",
        "Which model would you like to drive?",
        "When are you planning to buy?",
    ]
    prospect_lines = [m.text for m in await tg.messages(author="prospect")]
    assert prospect_lines == ["suv"]
    assert sorted(r.provider_id for r in await receipts(tg)) == ["123456:900", "123456:901"]


async def test_two_updates_for_one_chat_at_once_are_both_applied_in_turn(tg: Harness) -> None:
    _, _, token = await intake_lead(tg, first_name="Ana")
    ana = tg.prospect(42)
    await ana.start(token)
    await ana.expect("Which model would you like to drive?")
    first = message_update(910, 42, sender=ana.sender, text="help")
    second = message_update(911, 42, sender=ana.sender, text="suv")
    await asyncio.gather(ana.deliver(first), ana.deliver(second))
    await tg.settled()

    [conversation] = await tg.conversations()
    lines = await tg.messages(conversation_id=conversation.id)
    said = [line.text for line in lines if line.author == "prospect"]
    assert sorted(said) == ["help", "suv"]
    # One turn at a time: each prospect line is followed by the bot's answer to it.
    authors = [line.author for line in lines]
    assert authors[:2] == ["bot", "bot"]
    first_turn = authors.index("prospect", 2)
    second_turn = authors.index("prospect", first_turn + 1)
    assert authors[first_turn + 1 : second_turn]
    assert "prospect" not in authors[second_turn + 1 :]
    assert (await tg.chat_lead(42)).answers == {"model": "suv_x"}
    # What Telegram got is what the bot wrote, in the order it wrote it.
    bot_lines = [line.text for line in lines if line.author == "bot"]
    assert tg.fake.texts(42) == bot_lines


# -- authentication and bad input ------------------------------------------------------------


@pytest.mark.parametrize(
    "secret", [None, "", "wrong-secret", SECRET + "x", SECRET.upper(), "s\xe9cret"]
)
async def test_a_missing_or_wrong_secret_is_refused_and_nothing_is_stored(
    tg: Harness, secret: str | None
) -> None:
    ana = tg.prospect(42)
    response = await ana.post(message_update(1, 42, text="/start"), secret=secret)
    assert response.status == 403
    body = await response.json()
    assert body["error"]["code"] == "forbidden"
    assert "X-Telegram-Bot-Api-Secret-Token" in body["error"]["message"]
    assert await tg.leads() == []
    assert await receipts(tg) == []
    assert tg.fake.calls_to("sendMessage") == []


async def test_without_a_token_the_route_says_what_to_set(
    aiohttp_client: AiohttpClient, tmp_path: Path
) -> None:
    settings = Settings(
        database_url=f"sqlite+aiosqlite:///{tmp_path / 't.db'}",
        secret_key="test-secret-key-0123456789",
        telegram={"webhook_secret": SECRET},
    )
    client = await aiohttp_client(create_app(settings))
    response = await client.post(
        "/webhooks/telegram",
        json=message_update(1, 42, text="hi"),
        headers={"X-Telegram-Bot-Api-Secret-Token": SECRET},
    )
    assert response.status == 404
    error = (await response.json())["error"]
    assert error["code"] == "not_configured"
    assert "LEADBOT_TELEGRAM__TOKEN" in error["message"]


async def test_without_a_webhook_secret_the_route_is_off(
    aiohttp_client: AiohttpClient, aiohttp_server: AiohttpServer, tmp_path: Path
) -> None:
    tg = await open_harness(
        aiohttp_client, aiohttp_server, tmp_path, telegram={"webhook_secret": None}
    )
    response = await tg.prospect(42).post(message_update(1, 42, text="hi"))
    assert response.status == 404
    error = (await response.json())["error"]
    assert error["code"] == "not_configured"
    assert "LEADBOT_TELEGRAM__WEBHOOK_SECRET" in error["message"]


@pytest.mark.parametrize(
    ("body", "status", "says"),
    [
        (b"{not json", 400, "not valid JSON"),
        (b"[1, 2]", 400, "JSON object"),
        (b'{"message": {}}', 400, "update_id"),
        (b'{"update_id": "7"}', 400, "update_id"),
        (b'{"update_id": 7, "message": {"message_id": 1}}', 400, "not a Telegram update"),
        (b'{"update_id": 7, "callback_query": {"id": "q"}}', 400, "not a Telegram update"),
    ],
)
async def test_malformed_updates_get_a_json_error(
    tg: Harness, body: bytes, status: int, says: str
) -> None:
    response = await tg.client.post(
        "/webhooks/telegram",
        data=body,
        headers={"X-Telegram-Bot-Api-Secret-Token": SECRET, "Content-Type": "application/json"},
    )
    assert response.status == status
    assert says in (await response.json())["error"]["message"]
    assert await receipts(tg) == []


async def test_the_body_size_and_type_are_checked(tg: Harness) -> None:
    headers = {"X-Telegram-Bot-Api-Secret-Token": SECRET}
    huge = b'{"update_id": 1, "pad": "' + b"x" * 300_000 + b'"}'
    response = await tg.client.post(
        "/webhooks/telegram", data=huge, headers={**headers, "Content-Type": "application/json"}
    )
    assert response.status == 413
    response = await tg.client.post("/webhooks/telegram", data=b"update_id=1", headers=headers)
    assert response.status == 415


async def test_a_token_telegram_refuses_stops_the_start(
    aiohttp_server: AiohttpServer, tmp_path: Path
) -> None:
    fake = FakeTelegram()
    fake.plan("getMe", Answer(401, "Unauthorized"))
    server = await aiohttp_server(fake.app())
    settings = telegram_settings(tmp_path, str(server.make_url("")).rstrip("/"))
    runner = web.AppRunner(create_app(settings))
    try:
        with pytest.raises(SettingsError, match="LEADBOT_TELEGRAM__TOKEN") as raised:
            await runner.setup()
    finally:
        await runner.cleanup()
    assert "TEST" not in str(raised.value)  # the token itself is never shown


async def test_telegram_down_at_start_does_not_stop_the_server(
    aiohttp_client: AiohttpClient, aiohttp_server: AiohttpServer, tmp_path: Path
) -> None:
    fake = FakeTelegram()
    fake.plan("getMe", Answer(502, "Bad Gateway"))
    server = await aiohttp_server(fake.app())
    settings = telegram_settings(tmp_path, str(server.make_url("")).rstrip("/"))
    tg = Harness(await aiohttp_client(create_app(settings)), fake)
    ana = tg.prospect(42)
    await ana.start()
    await ana.expect("Hi Ana!")


# -- buttons -----------------------------------------------------------------------------------


async def test_a_tap_is_answered_applied_and_its_keyboard_removed(tg: Harness) -> None:
    _, _, token = await intake_lead(tg, first_name="Ana")
    ana = tg.prospect(42)
    await ana.start(token)
    question = (await ana.expect("Which model would you like to drive?"))[-1]
    update_id = await ana.tap("sedan_s")
    await ana.expect("When are you planning to buy?")
    [answered] = tg.fake.calls_to("answerCallbackQuery")
    assert answered.params["callback_query_id"] == f"query-{update_id}"
    [edited] = tg.fake.calls_to("editMessageReplyMarkup")
    assert edited.params == {"chat_id": "42", "message_id": str(question.message_id)}
    assert (await tg.chat_lead(42)).answers == {"model": "sedan_s"}
    # The transcript reads the tap as the option's label.
    assert [m.text for m in await tg.messages(author="prospect")] == ["Sedan S"]


async def test_a_stale_button_is_answered_and_changes_nothing(tg: Harness) -> None:
    _, _, token = await intake_lead(tg, first_name="Ana")
    ana = tg.prospect(42)
    await ana.start(token)
    model_question = (await ana.expect("Which model would you like to drive?"))[-1]
    await ana.tap("suv_x")
    await ana.expect("When are you planning to buy?")
    await tg.settled()
    sent_before = len(tg.fake.sent(42))
    lines_before = len(await tg.messages())

    # An old client still shows the first keyboard: a second tap on it.
    await ana.tap("sedan_s", model_question)
    # A button on a message leadbot never sent.
    await ana.deliver(callback_update(tg.fake.next_update_id(), 42, 999_999, "now"))
    await tg.settled()

    assert len(tg.fake.calls_to("answerCallbackQuery")) == 3  # every tap answered
    assert len(tg.fake.sent(42)) == sent_before  # the bot said nothing more
    new_lines = (await tg.messages())[lines_before:]
    assert new_lines == []  # an old button changed nothing, and the transcript says nothing
    assert (await tg.chat_lead(42)).answers == {"model": "suv_x"}


async def test_a_tap_still_counts_when_telegram_fails_the_extras(tg: Harness) -> None:
    _, _, token = await intake_lead(tg, first_name="Ana")
    ana = tg.prospect(42)
    await ana.start(token)
    await ana.expect("Which model would you like to drive?")
    tg.fake.fail_next("answerCallbackQuery", 400, "Bad Request: query is too old")
    tg.fake.fail_next("editMessageReplyMarkup", 400, "Bad Request: message is not modified")
    await ana.tap("hatch_h")
    await ana.expect("When are you planning to buy?")
    assert (await tg.chat_lead(42)).answers == {"model": "hatch_h"}


# -- contacts, stickers and updates leadbot does not answer ----------------------------------


async def test_a_shared_contact_must_be_the_prospects_own(call_me: Harness) -> None:
    kim = call_me.prospect(61, first_name="Kim")
    await kim.start()
    await kim.expect("Hi Kim!", "What would you like to talk about?")
    await kim.say("a new kitchen")
    question = (await kim.expect("What number can we call you on?"))[-1]
    assert question.markup["keyboard"][0][0]["request_contact"] is True

    await kim.share_contact("447700900123", own=False)
    await kim.expect("Please share your own number, or type it.")
    await kim.share_contact("447911123456", own=True)
    await kim.expect("Thanks, we'll call you on +447911123456.")
    lead = await call_me.chat_lead(61)
    assert lead.answers["phone"] == "+447911123456"
    assert lead.outcome == "done"


async def test_a_sticker_gets_a_polite_request_to_type(call_me: Harness) -> None:
    kim = call_me.prospect(61, first_name="Kim")
    await kim.start()
    await kim.expect("What would you like to talk about?")
    sticker = {"file_id": "s1", "file_unique_id": "u1", "type": "regular"}
    sticker |= {"width": 512, "height": 512, "is_animated": False, "is_video": False}
    await kim.deliver(message_update(kim.fake.next_update_id(), 61, sticker=sticker))
    await kim.expect("Sorry, I can only read text here.")
    await kim.expect("What would you like to talk about?")  # the question again
    photo = [{"file_id": "p1", "file_unique_id": "p1", "width": 90, "height": 90}]
    await kim.deliver(
        message_update(kim.fake.next_update_id(), 61, photo=photo, caption="the garden")
    )
    await kim.expect("What number can we call you on?")  # a caption is read as text
    assert (await call_me.chat_lead(61)).answers == {"topic": "the garden"}


async def test_edits_channel_posts_and_groups_are_acknowledged_and_ignored(tg: Harness) -> None:
    ana = tg.prospect(42)
    edited = message_update(1, 42, text="/start")
    edited["edited_message"] = edited.pop("message")
    post = message_update(2, -100123, text="news")
    post["channel_post"] = post.pop("message")
    post["channel_post"]["chat"] = {"id": -100123, "type": "channel"}
    group = message_update(3, -42, text="/start")
    group["message"]["chat"] = {"id": -42, "type": "group", "title": "Friends"}
    joined = message_update(4, 42, new_chat_title="x")
    for update in (edited, post, group, joined):
        assert await ana.deliver(update) == {"ok": True}
    group_tap = callback_update(5, -42, 1, "yes")
    group_tap["callback_query"]["message"]["chat"] = {"id": -42, "type": "group", "title": "F"}
    await ana.deliver(group_tap)
    assert len(tg.fake.calls_to("answerCallbackQuery")) == 1  # answered all the same
    await tg.settled()
    assert await tg.leads() == []
    assert await receipts(tg) == []
    assert tg.fake.calls_to("sendMessage") == []


def _leaves(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    if isinstance(value, dict):
        return [p for key, item in value.items() for p in _leaves(item, (*path, key))] or [path]
    return [path]


def _replaced(value: Any, path: tuple[Any, ...], new: Any) -> Any:
    if not path:
        return new
    copy = dict(value)
    copy[path[0]] = _replaced(value[path[0]], path[1:], new)
    return copy


async def test_no_field_of_the_wrong_type_gets_a_500(tg: Harness) -> None:
    """Each field of real updates, replaced by values of other types: 200 or 400, never 500."""
    contact = {"phone_number": "447911123456", "first_name": "Ana", "user_id": 42}
    samples = [
        message_update(1, 42, text="/start abc"),
        message_update(2, 42, contact=contact, caption="x"),
        callback_update(3, 42, 1001, "yes"),
    ]
    odd_values: list[Any] = [None, 7, -1, 10**30, "x", True, [], {}, 1.5]
    statuses: set[int] = set()
    for sample in samples:
        for path in _leaves(sample):
            for value in odd_values:
                response = await tg.prospect(42).post(_replaced(sample, path, value))
                statuses.add(response.status)
                assert response.status in (200, 400), (path, value, await response.text())
    assert statuses == {200, 400}
