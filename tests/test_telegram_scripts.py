"""Every example script, played to the end on Telegram: from /start to a stored lead, with
buttons, typed answers, invalid answers, a shared contact and a rep who hands back; the car test
drive and the campus visit end with a booked appointment and its calendar link."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from bot.inbound import ReturnedFromRep
from bot.records import Submission
from tests.bookings import bookable_day, slot_of, stored_booking
from tests.fake_telegram import Harness, open_harness
from webhooks.keys import CONVERSATIONS, INTAKE


@pytest.fixture
async def tg(aiohttp_client: Any, aiohttp_server: Any, tmp_path: Path) -> Harness:
    return await open_harness(aiohttp_client, aiohttp_server, tmp_path)


def day_ahead(zone: str, days: int, weekdays: range = range(5)) -> date:
    """A day at least `days` ahead in `zone` that falls on one of `weekdays` (0 = Monday)."""
    day = datetime.now(ZoneInfo(zone)).date() + timedelta(days=days)
    while day.weekday() not in weekdays:
        day += timedelta(days=1)
    return day


async def intake_lead(tg: Harness, script: str, **fields: str) -> str:
    """A lead as a relay or TikTok would deliver it; its signed token."""
    submission = Submission(source="api:test", external_id=f"{script}-1", fields=fields, raw={})
    [accepted] = await tg.client.app[INTAKE].submit([submission], script)
    return accepted.token


async def test_car_test_drive_from_the_hosted_form_to_a_booking(tg: Harness) -> None:
    token = await tg.form_lead(
        "car-test-drive", first_name="Ana", phone="612345678", email="ana@example.com"
    )
    ana = tg.prospect(101)
    await ana.start(token)
    await ana.expect("Hi Ana! Thanks for your interest", "Which model would you like to drive?")
    assert ana.last().buttons == [
        ("SUV X", "suv_x"),
        ("Sedan S", "sedan_s"),
        ("Hatchback H", "hatch_h"),
        ("Not sure yet", "not_sure"),
    ]
    await ana.tap("suv_x")
    await ana.expect("When are you planning to buy?")
    await ana.tap("now")
    await ana.expect("Do you have a car to trade in?")
    await ana.say("yes")
    await ana.expect("Roughly what budget")
    await ana.say("about 30k")
    await ana.expect("Which showroom would you like to visit?")
    assert ana.last().buttons == [
        ("Downtown showroom", "place:centro"),
        ("North showroom", "place:norte"),
    ]
    await ana.tap("place:centro")
    await ana.expect("When would you like to come for the test drive?")
    first = [value for _, value in ana.last().buttons]
    assert first[-2:] == ["more", "place"]  # "Other times", "Another place"
    assert [slot_of(value)[0] for value in first[:-2]] == ["centro"] * 3
    await ana.tap("more")
    await ana.expect("When would you like to come for the test drive?")
    later = [value for _, value in ana.last().buttons][:-2]
    assert slot_of(later[0])[1] > slot_of(first[-3])[1]  # the page after the first
    await ana.tap(later[0])
    confirmation = (await ana.expect("You're booked: "))[-1].text
    assert "Downtown showroom (Calle Mayor 1, Madrid)" in confirmation
    await ana.expect("Shall we call you on +34 612 34 56 78 if anything changes?")
    await ana.tap("yes")
    await ana.expect("All set, Ana! Your car will be ready and waiting.")

    lead = await tg.chat_lead(101)
    assert lead.outcome == "booked"
    visit = await stored_booking(tg.client, lead, confirmation)
    assert (visit.location, visit.starts_at) == slot_of(later[0])
    assert visit.ends_at - visit.starts_at == timedelta(minutes=45)
    assert {key: value for key, value in lead.answers.items() if key != "visit"} == {
        "model": "suv_x",
        "timeline": "now",
        "trade_in": True,
        "budget": 30000,
        "phone": "+34612345678",
    }
    assert lead.score == 65
    # Each tapped keyboard was taken away; every tap was answered.
    assert len(tg.fake.calls_to("answerCallbackQuery")) == 6
    assert len(tg.fake.calls_to("editMessageReplyMarkup")) == 6


async def test_campus_visit_with_invalid_answers_retried(tg: Harness) -> None:
    token = await tg.form_lead("campus-visit", first_name="Maya", email="maya@example.com")
    maya = tg.prospect(102, first_name="Maya")
    await maya.start(token)
    await maya.expect("Hi Maya!", "What level of study are you looking at?")
    await maya.say("a PhD in astrophysics")
    await maya.expect("Sorry, I didn't catch that. Please pick one of the options")
    assert [value for _, value in maya.last().buttons] == ["bachelor", "master", "mba"]
    await maya.tap("bachelor")
    await maya.expect("Which area would you like to study?")
    await maya.say("computer science")
    await maya.expect("When would you like to start?")
    await maya.tap("sep_2026")
    await maya.expect("Which day would you like to visit?")
    await maya.say("maybe")
    await maya.expect("Please pick one of the tours, or tell me a weekday that suits you")
    visit = bookable_day("campus_visit.yaml", 2)
    await maya.say(f"{visit:%d %B} in the afternoon")
    await maya.expect("Here's what we have then:")
    [(_, tour), (_, more)] = maya.last().buttons  # the one afternoon tour that day
    assert more == "more"
    await maya.tap(tour)
    confirmation = (await maya.expect("You're booked: "))[-1].text
    await maya.expect("Will a parent or guardian be coming with you?")
    await maya.tap("yes")
    await maya.expect("Last one: may we email you")
    await maya.say("yes please")
    await maya.expect("Your place on the campus tour is saved, and there's room for your family")

    lead = await tg.chat_lead(102)
    assert lead.outcome == "visit_booked"
    booked = await stored_booking(tg.client, lead, confirmation)
    tour_time = datetime.combine(visit, time(15), ZoneInfo("Europe/Lisbon"))
    assert (booked.calendar, booked.location) == ("campus_tour", "main_entrance")
    assert booked.starts_at == tour_time.astimezone(UTC)
    assert {key: value for key, value in lead.answers.items() if key != "visit"} == {
        "level": "bachelor",
        "programme": "computing",
        "start": "sep_2026",
        "parents": True,
        "updates": True,
    }


async def test_retail_sample_from_the_intake_service(tg: Harness) -> None:
    token = await intake_lead(tg, "retail-sample", first_name="Chloe", email="chloe@example.com")
    chloe = tg.prospect(103, first_name="Chloe")
    await chloe.start(token)
    await chloe.expect("Hi Chloe!", "How would you describe your skin?")
    await chloe.tap("combination")
    await chloe.expect("What would you most like to work on?")
    await chloe.say("1, 3")
    await chloe.expect("are you 18 or over?")
    await chloe.tap("yes")
    await chloe.expect("What postcode should we send your kit to?")
    await chloe.say("sw1a 1aa")
    await chloe.expect("Would you like skin tips")  # the email came with the lead
    await chloe.tap("yes")
    await chloe.expect("Lovely! Your combination-skin sample kit goes out to SW1A 1AA")

    lead = await tg.chat_lead(103)
    assert lead.outcome == "send_sample"
    assert lead.answers["concerns"] == ["breakouts", "dark_spots"]
    assert lead.answers["email"] == "chloe@example.com"
    assert lead.answers["marketing"] is True


async def test_b2b_services_asks_for_an_agent_and_the_rep_hands_back(tg: Harness) -> None:
    token = await intake_lead(
        tg, "b2b-services", first_name="Ravi", email="ravi@tallyworks.com", company="Tallyworks"
    )
    ravi = tg.prospect(104, first_name="Ravi")
    await ravi.start(token)
    await ravi.expect("Hi Ravi!", "How many people work at Tallyworks?")
    await ravi.say("40")
    await ravi.expect("What's your role in choosing a CRM partner?")
    await ravi.say("agent")
    await ravi.expect("I'm looping in one of our consultants")
    [conversation] = await tg.conversations(channel="telegram", channel_user_id="104")
    assert conversation.status == "handed_off"

    await tg.client.app[CONVERSATIONS].handle(conversation.id, ReturnedFromRep())
    await ravi.expect("Thanks for waiting!", "What's your role in choosing a CRM partner?")
    await ravi.tap("decision_maker")
    await ravi.expect("Roughly what budget")
    await ravi.say("$5,000")
    await ravi.expect("our projects are built for teams of 10+")

    lead = await tg.chat_lead(104)
    assert lead.outcome == "disqualified"
    assert lead.answers == {"company_size": 40, "role": "decision_maker", "budget": 5000}


async def test_recruiting_from_a_campaign_link_with_the_number_shared_by_button(
    aiohttp_client: Any, aiohttp_server: Any, tmp_path: Path
) -> None:
    # A TikTok instant-messaging ad points at t.me/<bot>?start=drivers-2026: no form, no token.
    route = {"script": "recruiting", "source": "telegram", "campaign_id": "drivers-2026"}
    tg = await open_harness(aiohttp_client, aiohttp_server, tmp_path, routes=[route])
    jordan = tg.prospect(105, first_name="Jordan")
    await jordan.start("drivers-2026")
    await jordan.expect("Hi Jordan! Thanks for applying", "Which role are you applying for?")
    await jordan.tap("driver")
    await jordan.expect("Do you hold a full UK driving licence")
    await jordan.say("yes")
    await jordan.expect("How many years of driving experience")
    await jordan.say("3 years")
    await jordan.expect("Our rotas include some weekend shifts")
    await jordan.tap("yes")
    await jordan.expect("When could you start?")
    start = day_ahead("Europe/London", 5, range(7))
    await jordan.say(f"{start:%d %B}")
    await jordan.expect("Would you like a quick chat here with one of our recruiters")
    await jordan.tap("no")
    question = (await jordan.expect("what's the best mobile number"))[-1]
    assert question.markup["keyboard"] == [
        [{"text": "📱 Share my number", "request_contact": True}]
    ]
    assert question.markup["one_time_keyboard"] is True
    await jordan.share_contact("447911123456")
    done = (await jordan.expect("you're through to the interview stage"))[-1]
    assert done.markup == {"remove_keyboard": True}

    lead = await tg.chat_lead(105)
    assert (lead.source, lead.external_id) == ("telegram", "105:drivers-2026")
    assert lead.attribution == {"campaign_id": "drivers-2026"}
    assert lead.fields == {"first_name": "Jordan"}
    assert lead.outcome == "interview"
    assert lead.answers == {
        "role": "driver",
        "licence": True,
        "experience": 3,
        "weekends": True,
        "start_date": start.isoformat(),
        "chat_first": False,
        "phone": "+447911123456",
    }
