"""Every example script, played to the end over SMS and over WhatsApp against the fake Twilio:
from a first message with the lead's reference code to a completed lead, choices answered by
number and by words, and on WhatsApp by quick-reply buttons where the script names them. The car
test drive and the campus visit end with a booked appointment on both channels."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import yaml
from pytest_aiohttp import AiohttpClient, AiohttpServer

from bot.records import Submission
from tests.bookings import bookable_day, stored_booking
from tests.fake_twilio import Call, Harness, Texter, running
from webhooks.keys import INTAKE

EXAMPLES = Path(__file__).parent.parent / "examples" / "scripts"
NUMBER = "+447911123456"


def day_ahead(zone: str, days: int, weekdays: range = range(5)) -> date:
    """A day at least `days` ahead in `zone` that falls on one of `weekdays` (0 = Monday)."""
    day = datetime.now(ZoneInfo(zone)).date() + timedelta(days=days)
    while day.weekday() not in weekdays:
        day += timedelta(days=1)
    return day


@dataclass(frozen=True)
class Pick:
    """Choose the option with this label: by its number, its words, or its button."""

    label: str


@dataclass(frozen=True)
class Nth:
    """Choose the option shown at this place (1 = the first): an appointment's slots, whose
    labels depend on today's date. By its button, else by its number."""

    number: int


Reply = str | Pick | Nth | Callable[[], str]


@dataclass(frozen=True)
class Play:
    """A way through one script: the lead's form fields, what the bot asks and what the
    prospect answers, the bot's last words, what the lead holds at the end, and where the
    appointment it booked is (None: the script books none)."""

    fields: dict[str, str]
    steps: list[tuple[str, Reply]]
    last_words: str
    outcome: str
    answers: dict[str, Any]
    booked_at: str | None = None


PLAYS: dict[str, Play] = {
    "car-test-drive": Play(
        {"first_name": "Ana", "phone": "612345678", "email": "ana@example.com"},
        [
            ("Which model would you like to drive?", Pick("SUV X")),
            ("When are you planning to buy?", Pick("This month")),
            ("Do you have a car to trade in?", "yes"),
            ("Roughly what budget", "about 30k"),
            ("Which showroom would you like to visit?", Pick("North showroom")),
            ("When would you like to come for the test drive?", Pick("Other times")),
            ("When would you like to come for the test drive?", Nth(1)),
            ("Shall we call you on +34 612 34 56 78 if anything changes?", Pick("Yes")),
        ],
        "All set, Ana! Your car will be ready and waiting.",
        "booked",
        {"model": "suv_x", "timeline": "now", "trade_in": True, "phone": "+34612345678"},
        booked_at="norte",
    ),
    "campus-visit": Play(
        {"first_name": "Maya", "email": "maya@example.com"},
        [
            ("What level of study are you looking at?", Pick("Bachelor's degree")),
            ("Which area would you like to study?", "computer science"),
            ("When would you like to start?", Pick("September 2026")),
            (
                "Which day would you like to visit?",
                lambda: f"{bookable_day('campus_visit.yaml', 2):%d %B} in the afternoon",
            ),
            ("Here's what we have then:", Nth(1)),
            ("Will a parent or guardian be coming with you?", Pick("Yes")),
            ("Last one: may we email you", "yes please"),
        ],
        "Your place on the campus tour is saved, and there's room for your family too.",
        "visit_booked",
        {"level": "bachelor", "programme": "computing", "start": "sep_2026", "updates": True},
        booked_at="main_entrance",
    ),
    "retail-sample": Play(
        {"first_name": "Chloe", "email": "chloe@example.com"},
        [
            ("How would you describe your skin?", Pick("Combination")),
            ("What would you most like to work on?", "1, 3"),
            ("are you 18 or over?", Pick("Yes")),
            ("What postcode should we send your kit to?", "sw1a 1aa"),
            ("Would you like skin tips", Pick("Yes")),
        ],
        "Lovely! Your combination-skin sample kit goes out to SW1A 1AA",
        "send_sample",
        {"skin_type": "combination", "concerns": ["breakouts", "dark_spots"], "adult": True},
    ),
    "b2b-services": Play(
        {"first_name": "Ravi", "email": "ravi@tallyworks.com", "company": "Tallyworks"},
        [
            ("How many people work at Tallyworks?", "40"),
            ("What's your role in choosing a CRM partner?", Pick("Final decision maker")),
            ("Roughly what budget", "$5,000"),
        ],
        "our projects are built for teams of 10+",
        "disqualified",
        {"company_size": 40, "role": "decision_maker", "budget": 5000},
    ),
    "recruiting": Play(
        {"first_name": "Jordan"},
        [
            ("Which role are you applying for?", Pick("Delivery driver (van)")),
            ("Do you hold a full UK driving licence", "yes"),
            ("How many years of driving experience", "3 years"),
            ("Our rotas include some weekend shifts", Pick("Yes")),
            ("When could you start?", lambda: f"{day_ahead('Europe/London', 5, range(7)):%d %B}"),
            ("Would you like a quick chat here with one of our recruiters", Pick("No")),
            ("what's the best mobile number", "07911 123456"),
        ],
        "you're through to the interview stage",
        "interview",
        {"role": "driver", "licence": True, "weekends": True, "phone": NUMBER},
    ),
}


def example_script_ids() -> list[str]:
    ids = []
    for path in sorted(EXAMPLES.glob("*.yaml")):
        if not path.name.endswith(".test.yaml"):
            ids.append(yaml.safe_load(path.read_text(encoding="utf-8"))["id"])
    return ids


def test_every_example_script_is_played_here() -> None:
    assert sorted(PLAYS) == sorted(example_script_ids())


def choice_number(message: Call, label: str) -> int:
    """The number the bot put before `label` in its numbered choices."""
    numbers = {
        found.group(2).strip(): int(found.group(1))
        for found in re.finditer(r"^(\d+)\. (.+)$", message.text, re.MULTILINE)
    }
    assert label in numbers, (label, message.text)
    return numbers[label]


async def reply(texter: Texter, question: Call, answer: Reply, by_number: bool) -> None:
    if isinstance(answer, Nth):
        if question.buttons:
            await texter.tap(question.buttons[answer.number - 1][0], question)
        else:
            assert f"\n{answer.number}. " in question.text, question.text
            await texter.say(str(answer.number))
    elif isinstance(answer, Pick):
        if question.buttons:
            [value] = [value for value, title in question.buttons if title == answer.label]
            await texter.tap(value, question)
        elif by_number:
            await texter.say(str(choice_number(question, answer.label)))
        else:
            await texter.say(answer.label)
    elif callable(answer):
        await texter.say(answer())
    else:
        await texter.say(answer)


async def play(tw: Harness, script: str, channel: str, first_message: str) -> Any:
    """Play `PLAYS[script]` from `first_message`; the completed lead."""
    plan = PLAYS[script]
    texter = tw.texter(NUMBER, channel)
    await texter.say(first_message)
    picks = 0
    for fragment, answer in plan.steps:
        question = (await texter.expect(fragment))[-1]
        picks += isinstance(answer, Pick)
        await reply(texter, question, answer, by_number=picks % 2 == 1)  # numbers, then words
    await texter.expect(plan.last_words)
    await tw.settled()
    lead = await tw.chat_lead(NUMBER, channel)
    assert lead.outcome == plan.outcome
    assert {key: lead.answers.get(key) for key in plan.answers} == plan.answers
    if plan.booked_at is not None:
        [confirmation] = [text for text in tw.fake.texts(NUMBER) if "You're booked: " in text]
        appointment = await stored_booking(tw.client, lead, confirmation)
        assert appointment.location == plan.booked_at
    return lead


async def intake_lead(tw: Harness, script: str, fields: dict[str, str]) -> str:
    """A lead as a relay would deliver it; its reference code."""
    submission = Submission(source="api:test", external_id=f"{script}-1", fields=fields, raw={})
    [accepted] = await tw.client.app[INTAKE].submit([submission], script)
    return str(accepted.reference)


@pytest.fixture
async def tw(
    aiohttp_client: AiohttpClient, aiohttp_server: AiohttpServer, tmp_path: Path
) -> AsyncIterator[Harness]:
    async with running(aiohttp_client, aiohttp_server, tmp_path) as harness:
        yield harness


@pytest.mark.parametrize("channel", ["sms", "whatsapp"])
@pytest.mark.parametrize("script", sorted(PLAYS))
async def test_every_example_script_completes(tw: Harness, script: str, channel: str) -> None:
    reference = await intake_lead(tw, script, PLAYS[script].fields)
    lead = await play(tw, script, channel, f"Hi! My reference is {reference}")
    [conversation] = await tw.conversations()
    assert (conversation.channel, conversation.status) == (channel, "completed")
    # Every message the bot wrote went out, in order, and nothing else did.
    bot_lines = [line.text for line in await tw.messages(author="bot")]
    sent = tw.fake.texts(NUMBER)
    assert len(sent) == len(bot_lines)
    assert all(
        text.startswith(line.strip()[:40]) for text, line in zip(sent, bot_lines, strict=True)
    )
    assert lead.reference == reference


@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
async def test_car_test_drive_over_sms_from_the_hosted_form(
    aiohttp_client: AiohttpClient, aiohttp_server: AiohttpServer, tmp_path: Path, database: str
) -> None:
    """The prospect submits the form, taps SMS on the chooser, and sends the prefilled text."""
    async with running(aiohttp_client, aiohttp_server, tmp_path, database) as tw:
        fields = PLAYS["car-test-drive"].fields
        first_message = await tw.form_lead("car-test-drive", **fields)
        assert re.fullmatch(r"Hi! My reference is [A-Z0-9]{6}", first_message)
        lead = await play(tw, "car-test-drive", "sms", first_message)
        assert lead.score == 65
        assert len(await tw.leads()) == 1
        transcript = [(m.author, m.text) for m in await tw.messages()]
        assert ("prospect", "1") in transcript  # SUV X, by its number
        assert ("prospect", "This month") in transcript  # by its words


# -- WhatsApp quick replies ----------------------------------------------------------------------

MODEL_BUTTONS = "HX" + "1" * 32
TIMELINE_BUTTONS = "HX" + "2" * 32


def with_buttons(tmp_path: Path) -> Path:
    """car_test_drive.yaml, its choice questions naming quick-reply templates."""
    script = yaml.safe_load((EXAMPLES / "car_test_drive.yaml").read_text(encoding="utf-8"))
    templates = {"model": MODEL_BUTTONS, "timeline": TIMELINE_BUTTONS}
    for question in script["questions"]:
        if question["id"] in templates:
            question["whatsapp_buttons"] = templates[question["id"]]
    path = tmp_path / "car_test_drive.yaml"
    path.write_text(yaml.safe_dump(script, allow_unicode=True), encoding="utf-8")
    return path


@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
async def test_a_whatsapp_conversation_with_quick_reply_buttons(
    aiohttp_client: AiohttpClient, aiohttp_server: AiohttpServer, tmp_path: Path, database: str
) -> None:
    async with running(
        aiohttp_client, aiohttp_server, tmp_path, database, scripts=[with_buttons(tmp_path)]
    ) as tw:
        tw.fake.template(
            "{{1}}",
            ("suv_x", "SUV X"),
            ("sedan_s", "Sedan S"),
            ("hatch_h", "Hatchback H"),
            ("not_sure", "Not sure yet"),
            sid=MODEL_BUTTONS,
        )
        tw.fake.template(
            "{{1}}",
            ("now", "This month"),
            ("quarter", "In 1-3 months"),
            ("later", "Later"),
            sid=TIMELINE_BUTTONS,
        )
        reference = await intake_lead(tw, "car-test-drive", PLAYS["car-test-drive"].fields)
        ana = tw.texter(NUMBER, "whatsapp", profile_name="Ana")
        await ana.say(f"Hi! My reference is {reference}")
        model = (await ana.expect("Which model would you like to drive?"))[-1]
        assert model.content_sid == MODEL_BUTTONS
        assert model.variables == {"1": "Which model would you like to drive?"}
        assert "Body" not in model.params
        await ana.tap("hatch_h")
        timeline = (await ana.expect("When are you planning to buy?"))[-1]
        assert timeline.content_sid == TIMELINE_BUTTONS

        # A second tap on the first question's buttons is stale: nothing happens.
        await ana.tap("suv_x", model)
        await tw.settled()
        assert len(tw.fake.sent(NUMBER)) == 3  # greeting, model, timeline

        await ana.tap("now")
        trade_in = (await ana.expect("Do you have a car to trade in?"))[-1]
        assert trade_in.content_sid is None  # no template named: numbered lines
        assert trade_in.text.endswith("1. Yes\n2. No")
        await ana.say("2")
        await ana.expect("Roughly what budget")
        await ana.say("25k")
        showroom = (await ana.expect("Which showroom would you like to visit?"))[-1]
        assert showroom.content_sid is None
        await ana.say("downtown")
        visit = bookable_day("car_test_drive.yaml", 2)  # a weekday: open 09:00-19:00
        await ana.expect("When would you like to come for the test drive?")
        await ana.say(f"{visit:%d %B} after 5pm")
        times = (await ana.expect("Here's what we have then:"))[-1]
        assert times.text.endswith("3. Other times\n4. Another place")  # 17:15 and 18:00
        await ana.say("2")
        confirmation = (await ana.expect("You're booked: "))[-1].text
        await ana.expect("Shall we call you on")
        await ana.say("yes")
        await ana.expect("All set, Ana!")
        await tw.settled()

        lead = await tw.chat_lead(NUMBER, "whatsapp")
        assert lead.outcome == "booked"
        assert (lead.answers["model"], lead.answers["timeline"]) == ("hatch_h", "now")
        appointment = await stored_booking(tw.client, lead, confirmation)
        six_pm = datetime.combine(visit, time(18), ZoneInfo("Europe/Madrid"))
        assert (appointment.location, appointment.starts_at) == ("centro", six_pm.astimezone(UTC))
        # The transcript reads each tap as the option's label; the stale tap left no line.
        said = [m.text for m in await tw.messages(author="prospect")]
        assert said[1:3] == ["Hatchback H", "This month"]
        # A quick reply's text is a template variable, never a body with a newline or a tab.
        for call in tw.fake.sent(NUMBER):
            assert call.code is None
