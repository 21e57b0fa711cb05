"""Every example script, played to the end over TikTok Direct Messages against the fake API:
from a tiktok.me link carrying the lead's token to a completed lead, choices answered by a
button card's tap where the question fits one, else by number and by words. The car test drive
and the campus visit end with a booked appointment."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo

import pytest
import yaml
from pytest_aiohttp import AiohttpClient, AiohttpServer

from tests.bookings import bookable_day, stored_booking
from tests.fake_tiktok import USERNAME, Call, Harness, TikTokUser, running

EXAMPLES = Path(__file__).parent.parent / "examples" / "scripts"


def day_ahead(zone: str, days: int, weekdays: range = range(5)) -> date:
    """A day at least `days` ahead in `zone` that falls on one of `weekdays` (0 = Monday)."""
    day = datetime.now(ZoneInfo(zone)).date() + timedelta(days=days)
    while day.weekday() not in weekdays:
        day += timedelta(days=1)
    return day


@dataclass(frozen=True)
class Pick:
    """Choose the option with this label: by the card's button, its number, or its words."""

    label: str


@dataclass(frozen=True)
class Nth:
    """Choose the option shown at this place (1 = the first): an appointment's slots, whose
    labels depend on today's date. By the card's button, else by its number."""

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
            ("Do you have a car to trade in?", Pick("Yes")),
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
        {"role": "driver", "licence": True, "weekends": True, "phone": "+447911123456"},
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


async def reply(user: TikTokUser, question: Call, answer: Reply, by_number: bool) -> str:
    """Answer `question`; how it was answered: "tap", "number", "words" or "typed"."""
    if isinstance(answer, Nth):
        if question.buttons:
            await user.tap(question.buttons[answer.number - 1][0], question)
            return "tap"
        assert f"\n{answer.number}. " in question.text, question.text
        await user.say(str(answer.number))
        return "number"
    if isinstance(answer, Pick):
        if question.buttons:
            [value] = [value for value, title in question.buttons if title == answer.label]
            await user.tap(value, question)
            return "tap"
        if by_number:
            await user.say(str(choice_number(question, answer.label)))
            return "number"
        await user.say(answer.label)
        return "words"
    await user.say(answer() if callable(answer) else answer)
    return "typed"


async def play(tt: Harness, script: str, token: str) -> tuple[Any, list[str]]:
    """Play `PLAYS[script]` from the lead's tiktok.me link; the completed lead, and how each
    step was answered."""
    plan = PLAYS[script]
    user = tt.user()
    await user.refer(token)
    ways: list[str] = []
    for fragment, answer in plan.steps:
        question = (await user.expect(fragment))[-1]
        numbers = sum(way in ("number", "words") for way in ways)
        ways.append(await reply(user, question, answer, by_number=numbers % 2 == 0))
    await user.expect(plan.last_words)
    await tt.settled()
    lead = await tt.chat_lead(user.conversation)
    assert lead.outcome == plan.outcome
    assert {key: lead.answers.get(key) for key in plan.answers} == plan.answers
    if plan.booked_at is not None:
        [confirmation] = [c.text for c in tt.fake.sent() if "You're booked: " in c.text]
        appointment = await stored_booking(tt.client, lead, confirmation)
        assert appointment.location == plan.booked_at
    return lead, ways


async def tiktok_link(tt: Harness, script: str, fields: dict[str, str]) -> str:
    """Submit the hosted form as a prospect would and follow the chooser's TikTok link: the
    `ref` it carries (the lead's token)."""
    page = await (await tt.client.get(f"/f/{script}")).text()
    nonce = re.search(r'name="_nonce" value="([^"]+)"', page)
    assert nonce is not None
    form = {"_nonce": nonce.group(1), "_consent": "yes", **fields}
    response = await tt.client.post(f"/f/{script}", data=form, allow_redirects=False)
    assert response.status == 303, await response.text()
    redirect = await tt.client.get(response.headers["Location"] + "/tiktok", allow_redirects=False)
    link = urlsplit(redirect.headers["Location"])
    assert (link.scheme, link.netloc, link.path) == ("https", "tiktok.me", f"/{USERNAME}")
    query = parse_qs(link.query)
    assert re.fullmatch(r"Hi! My reference is [A-Z0-9]{6,8}", query["message"][0])
    [ref] = query["ref"]
    return ref


@pytest.fixture
async def tt(
    aiohttp_client: AiohttpClient, aiohttp_server: AiohttpServer, tmp_path: Path
) -> AsyncIterator[Harness]:
    async with running(aiohttp_client, aiohttp_server, tmp_path) as harness:
        yield harness


@pytest.mark.parametrize("script", sorted(PLAYS))
async def test_every_example_script_completes(tt: Harness, script: str) -> None:
    _, _, token = await tt.lead_token(script, **PLAYS[script].fields)
    lead, _ = await play(tt, script, token)
    [conversation] = await tt.conversations()
    assert (conversation.channel, conversation.status) == ("tiktok", "completed")
    # Every message the bot wrote went out, and the id TikTok gave its last part (a card's, when
    # it asks with one) is the one recorded: the message that asks is the one a tap names.
    rows = await tt.outbox()
    assert all(row.status == "sent" for row in rows)
    assert len(rows) == len(await tt.messages(author="bot"))
    by_id = {call.message_id: call for call in tt.fake.sent()}
    for row in rows:
        last_line = row.payload["text"].strip().splitlines()[-1].strip()
        assert last_line in by_id[row.provider_id].text, row.payload["text"]
    assert all(call.code == 0 for call in tt.fake.calls)  # within TikTok's rules throughout
    assert lead.source == "api:test"


@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
async def test_car_test_drive_from_the_hosted_form_through_tiktok(
    aiohttp_client: AiohttpClient, aiohttp_server: AiohttpServer, tmp_path: Path, database: str
) -> None:
    """The prospect submits the form, taps TikTok on the chooser, lands in the chat (the link's
    ref binds it to her lead), and answers with button cards and typed answers."""
    async with running(aiohttp_client, aiohttp_server, tmp_path, database) as tt:
        fields = PLAYS["car-test-drive"].fields
        token = await tiktok_link(tt, "car-test-drive", fields)
        lead, ways = await play(tt, "car-test-drive", token)
        assert ways == ["number", "tap", "tap", "typed", "tap", "words", "number", "words"]
        assert lead.score == 65
        assert len(await tt.leads()) == 1
        cards = [call for call in tt.fake.sent() if call.buttons]
        assert [card.text for card in cards] == [
            "When are you planning to buy?",
            "Do you have a car to trade in?",
            "Which showroom would you like to visit?",
        ]
        transcript = [(m.author, m.text) for m in await tt.messages()]
        assert ("prospect", "1") in transcript  # SUV X, by its number
        assert ("prospect", "This month") in transcript  # a tap reads as the option's label
        assert ("prospect", "Yes") in transcript


async def test_the_links_prefilled_text_sent_after_arriving_is_asked_again(tt: Harness) -> None:
    """TikTok's link prefills "Hi! My reference is ..." and the prospect may send it after the
    referral opened the conversation: it does not answer the first question, which is asked
    again, and the conversation goes on."""
    _, reference, token = await tt.lead_token("car-test-drive", first_name="Ana")
    ana = tt.user()
    await ana.refer(token, prefilled=f"Hi! My reference is {reference}")
    await ana.expect("Which model would you like to drive?")
    await ana.say(f"Hi! My reference is {reference}")
    await ana.expect("Please pick one of the options")
    await ana.say("suv")
    await ana.expect("When are you planning to buy?")
    assert len(await tt.leads()) == 1
