"""The console's appointments page on the real app (SQLite and PostgreSQL): a day's bookings per
place in the calendar's time zone, a rep moving one to a free slot or cancelling it (the prospect
is told), refusals that say why and change nothing, and who may do any of it."""

from __future__ import annotations

import html
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo

import pytest
from aiohttp import DummyCookieJar
from pytest_aiohttp import AiohttpClient
from sqlalchemy import select

from bot.effects import SendText
from bot.inbound import OptionPicked
from bot.records import NewLead
from bot.service import TurnResult
from storage.privacy import SqlPrivacy
from storage.tables import AppointmentRow, AuditRow, MessageRow
from tests.conftest import NOW, FakeClock
from tests.console_support import CHEAP, Browser, Console, database_url, settings_for
from webhooks.app import create_app
from webhooks.console.passwords import Passwords
from webhooks.keys import CLOCK, CONSOLE_CLOCK, CONVERSATIONS, DATABASE, PASSWORDS, STORAGE

APPOINTMENTS = AppointmentRow.__table__  # type: ignore[attr-defined]
MESSAGES = MessageRow.__table__  # type: ignore[attr-defined]
AUDIT = AuditRow.__table__  # type: ignore[attr-defined]
MADRID = ZoneInfo("Europe/Madrid")  # NOW is Monday 2026-01-05, 11:00 in Madrid (UTC+1)
PAGE = "/console/appointments"
SOURCE = """\
id: drive
name: Test drive
timezone: Europe/Madrid
languages: [en, es]
calendars:
  - id: test_drive
    slot: 1h
    capacity: 2
    notice: 2h
    horizon: 14d
    hours:
      mon: "09:00-18:00"
      tue: "09:00-18:00"
      wed: "09:00-18:00"
      thu: "09:00-18:00"
      fri: "09:00-18:00"
    locations:
      - {id: centro, name: {en: Downtown, es: Centro}, address: "Calle Mayor 1"}
      - {id: norte, name: North}
questions:
  - id: visit
    type: appointment
    calendar: test_drive
    prompt: {en: When would you like to come?, es: ¿Cuándo quieres venir?}
  - id: name
    type: text
    prompt: Your name?
outcomes:
  - id: done
    message: Thanks!
"""


def utc(local: str) -> datetime:
    """The UTC instant of a Madrid wall-clock time."""
    return datetime.fromisoformat(local).replace(tzinfo=MADRID).astimezone(UTC)


@dataclass
class Desk:
    """The app with the drive script, its clocks in the test's hands, and a logged-in rep."""

    console: Console
    rep: Browser
    _leads: int = 0

    @property
    def app(self) -> Any:
        return self.console.client.app

    async def book(
        self, first_name: str, place: str, local: str, language: str = "en"
    ) -> tuple[int, TurnResult]:
        """A prospect in the web chat picks a place, then the slot at this Madrid time; the
        conversation's id and the turn that booked."""
        self._leads += 1
        number = self._leads
        new = NewLead("api", f"lead-{number}", "drive", NOW, {"first_name": first_name})
        lead = await self.app[STORAGE].run(
            lambda tx: tx.leads.add(new, f"RAPP{number:02d}", NOW)[0].id
        )
        service = self.app[CONVERSATIONS]
        started = await service.start(
            lead, channel="web", channel_user_id=f"chat-{number}", language=language
        )
        conversation = started.conversation_id
        await service.handle(conversation, OptionPicked("visit", f"place:{place}"))
        slot = f"{place}|{utc(local):%Y%m%dT%H%M}Z"
        result = await service.handle(conversation, OptionPicked("visit", slot))
        assert any(isinstance(e, SendText) and "/a/" in e.text for e in result.effects), result
        return conversation, result

    async def bookings(self) -> list[tuple[int | None, str, datetime, str, str]]:
        """(conversation, location, starts_at, status, booked_by) of every booking, by id."""
        query = select(
            APPOINTMENTS.c.conversation_id,
            APPOINTMENTS.c.location,
            APPOINTMENTS.c.starts_at,
            APPOINTMENTS.c.status,
            APPOINTMENTS.c.booked_by,
        ).order_by(APPOINTMENTS.c.id)
        async with self.app[DATABASE].reading() as connection:
            return [tuple(row) for row in (await connection.execute(query)).all()]

    async def booking_of(self, conversation: int) -> int:
        query = select(APPOINTMENTS.c.id).where(
            APPOINTMENTS.c.conversation_id == conversation, APPOINTMENTS.c.status == "booked"
        )
        async with self.app[DATABASE].reading() as connection:
            return int((await connection.execute(query)).scalar_one())

    async def said(self, conversation: int) -> list[str]:
        """What the bot said to the prospect, in order."""
        query = (
            select(MESSAGES.c.text)
            .where(MESSAGES.c.conversation_id == conversation, MESSAGES.c.author == "bot")
            .order_by(MESSAGES.c.id)
        )
        async with self.app[DATABASE].reading() as connection:
            return list((await connection.execute(query)).scalars())

    async def audit(self, conversation: int) -> list[tuple[str, str]]:
        query = (
            select(AUDIT.c.action, AUDIT.c.actor)
            .where(AUDIT.c.conversation_id == conversation)
            .order_by(AUDIT.c.id)
        )
        async with self.app[DATABASE].reading() as connection:
            return [(row.action, row.actor) for row in (await connection.execute(query)).all()]

    async def page(self, path: str, status: int = 200) -> str:
        response = await self.console.request("GET", path, self.rep)
        text = await response.text()
        assert response.status == status, text
        return html.unescape(text)

    async def post(self, path: str, **form: str) -> Any:
        form.setdefault("csrf_token", self.rep.csrf or "")
        return await self.console.request("POST", path, self.rep, csrf=False, data=form)


@asynccontextmanager
async def running_desk(
    aiohttp_client: AiohttpClient, tmp_path: Path, kind: str
) -> AsyncIterator[Desk]:
    script = tmp_path / "drive.yaml"
    script.write_text(SOURCE, encoding="utf-8")
    async with database_url(kind, tmp_path) as url:
        app = create_app(settings_for(url, scripts=[script]))
        clock = FakeClock(NOW)
        app[CLOCK] = clock  # bookings, notice and calendar links on the test's time
        app[CONSOLE_CLOCK] = clock
        app[PASSWORDS] = Passwords(CHEAP)
        client = await aiohttp_client(app, cookie_jar=DummyCookieJar())
        try:
            console = Console(client, clock)
            await console.add_rep("marta@example.com", name="Marta Gil")
            yield Desk(console, await console.logged_in("marta@example.com"))
        finally:
            await client.close()


@pytest.fixture(params=["sqlite", "postgresql"])
async def desk(
    request: pytest.FixtureRequest, aiohttp_client: AiohttpClient, tmp_path: Path
) -> AsyncIterator[Desk]:
    async with running_desk(aiohttp_client, tmp_path, request.param) as running:
        yield running


def listed(text: str) -> list[tuple[int, str]]:
    """(appointment id, status) of the page's bookings, in order."""
    found = re.findall(r'data-appointment="(\d+)" data-status="(\w+)"', text)
    return [(int(appointment), status) for appointment, status in found]


def visit(text: str, appointment: int) -> str:
    found = re.search(rf'<article[^>]*data-appointment="{appointment}".*?</article>', text, re.S)
    assert found is not None, f"appointment {appointment} is not on the page"
    return found.group(0)


def section(text: str, key: str) -> str:
    found = re.search(rf'<section class="place" id="place-{key}">.*?</section>', text, re.S)
    assert found is not None, f"no section for {key}"
    return found.group(0)


def alert(text: str) -> str:
    found = re.search(r'role="alert" id="alert">([^<]*)<', text)
    return found.group(1) if found else ""


# -- who may use it -----------------------------------------------------------------------


async def test_nobody_gets_in_without_a_login_and_no_change_without_the_csrf_token(
    desk: Desk,
) -> None:
    conversation, _ = await desk.book("Kim", "centro", "2026-01-07T10:00")
    appointment = await desk.booking_of(conversation)
    nobody = await desk.console.request("GET", f"{PAGE}?day=2026-01-07")
    assert nobody.status == 303
    assert urlsplit(nobody.headers["Location"]).path == "/console/login"
    assert parse_qs(urlsplit(nobody.headers["Location"]).query)["next"] == [
        f"{PAGE}?day=2026-01-07"
    ]
    before = await desk.bookings()
    for action in ("cancel", "move"):
        forged = await desk.post(
            f"{PAGE}/{appointment}/{action}",
            csrf_token="x" * 43,
            date="2026-01-08",
            time="10:00",
            location="centro",
        )
        assert forged.status == 403, action
        bare = await desk.console.request(
            "POST", f"{PAGE}/{appointment}/{action}", desk.rep, csrf=False
        )
        assert bare.status == 403, action
    assert await desk.bookings() == before
    assert not any("moved" in line or "sorry" in line for line in await desk.said(conversation))


# -- the day's list -----------------------------------------------------------------------


async def test_a_days_bookings_per_place_in_the_calendars_time_zone(desk: Desk) -> None:
    kim, _ = await desk.book("Kim", "centro", "2026-01-07T10:00")
    lou, _ = await desk.book("Lou", "norte", "2026-01-07T12:00")
    max_, _ = await desk.book("Max", "centro", "2026-01-08T10:00")
    kim_id, lou_id, max_id = [await desk.booking_of(c) for c in (kim, lou, max_)]

    text = await desk.page(f"{PAGE}?day=2026-01-07")
    assert "Wednesday, 07 January 2026" in text
    assert listed(text) == [(kim_id, "booked"), (lou_id, "booked")]  # not Thursday's Max
    downtown = section(text, "test_drive:centro")
    assert "Downtown" in downtown
    assert "Calle Mayor 1" in downtown
    assert "times in Europe/Madrid" in downtown
    card = visit(downtown, kim_id)
    assert "10:00–11:00" in card  # 09:00 UTC: the calendar's wall clock is shown
    assert f'href="/console/conversations/{kim}">Kim</a>' in card
    assert "Web chat" in card
    assert "Booked" in card
    # The day's free times leave out nothing but full slots: Kim's 10:00 has a seat left.
    assert "Free: 09:00, 10:00, 11:00, 12:00" in downtown
    assert "Lou" in section(text, "test_drive:norte")
    # The day picker: the days either side, keeping the place filter.
    assert f'href="{PAGE}?day=2026-01-06" rel="prev"' in text
    assert f'href="{PAGE}?day=2026-01-08" rel="next"' in text
    north_only = await desk.page(f"{PAGE}?day=2026-01-07&place=test_drive:norte")
    assert listed(north_only) == [(lou_id, "booked")]
    assert f'href="{PAGE}?day=2026-01-08&place=test_drive%3Anorte" rel="next"' in north_only
    assert listed(await desk.page(f"{PAGE}?day=2026-01-08")) == [(max_id, "booked")]
    # Today, when no day is asked for: Monday in Madrid.
    assert "Monday, 05 January 2026" in await desk.page(PAGE)

    as_json = await desk.console.request(
        "GET", f"{PAGE}?day=2026-01-07", desk.rep, headers={"Accept": "application/json"}
    )
    body = await as_json.json()
    assert body["day"] == "2026-01-07"
    [centro, norte] = body["places"]
    assert (centro["location"], centro["timezone"]) == ("centro", "Europe/Madrid")
    [entry] = centro["appointments"]
    assert (entry["id"], entry["name"], entry["channel"]) == (kim_id, "Kim", "web")
    assert entry["starts_at"] == "2026-01-07T09:00:00+00:00"
    assert entry["local_time"] == "2026-01-07T10:00"
    assert [a["name"] for a in norte["appointments"]] == ["Lou"]


async def test_a_day_or_place_the_page_cannot_show_is_refused_in_words(desk: Desk) -> None:
    bad_day = await desk.page(f"{PAGE}?day=yesterday", status=400)
    assert "day must be a date like 2026-01-31, not 'yesterday'" in bad_day
    far = await desk.page(f"{PAGE}?day=9999-12-31", status=400)
    assert "day must be between 2000-01-01 and 2999-12-31" in far
    nowhere = await desk.page(f"{PAGE}?place=test_drive:mars", status=400)
    assert "unknown place 'test_drive:mars'" in nowhere


# -- moving -------------------------------------------------------------------------------


async def test_a_rep_moves_a_booking_to_a_free_slot_and_the_prospect_is_told(desk: Desk) -> None:
    kim, _ = await desk.book("Kim", "centro", "2026-01-07T10:00")
    appointment = await desk.booking_of(kim)
    moved = await desk.post(
        f"{PAGE}/{appointment}/move",
        date="2026-01-08",
        time="15:00",
        location="norte",
        day="2026-01-07",
        place="",
    )
    assert moved.status == 303, await moved.text()
    assert moved.headers["Location"] == f"{PAGE}?day=2026-01-08&done=moved"
    assert await desk.bookings() == [
        (kim, "centro", utc("2026-01-07T10:00"), "cancelled", "prospect"),
        (kim, "norte", utc("2026-01-08T15:00"), "booked", "rep"),
    ]
    told = (await desk.said(kim))[-1]
    assert told.startswith("Your appointment has been moved to Thursday, January 8, 2026")
    assert "/a/" in told  # with the new calendar link
    assert ("appointment_moved", "Marta Gil (rep 1)") in await desk.audit(kim)

    text = await desk.page(moved.headers["Location"])
    assert "Appointment moved; the prospect has been told." in text
    new = await desk.booking_of(kim)
    assert "15:00–16:00" in visit(section(text, "test_drive:norte"), new)
    assert listed(await desk.page(f"{PAGE}?day=2026-01-07")) == [(appointment, "cancelled")]


async def test_a_move_into_a_full_slot_or_no_slot_is_refused_in_words_and_changes_nothing(
    desk: Desk,
) -> None:
    kim, _ = await desk.book("Kim", "centro", "2026-01-07T10:00")
    for name in ("Ana", "Ben"):  # both seats of noon
        await desk.book(name, "centro", "2026-01-07T12:00")
    appointment = await desk.booking_of(kim)
    before, said = await desk.bookings(), await desk.said(kim)
    form = {"date": "2026-01-07", "location": "centro", "day": "2026-01-07", "place": ""}
    cases = [
        ("12:00", 409, "Every seat of that slot is taken."),
        ("12:30", 400, "That time is not a future slot of the calendar at that place."),
        ("25:00", 400, "The time must be like 14:30, not '25:00'."),
    ]
    for at, status, reason in cases:
        refused = await desk.post(f"{PAGE}/{appointment}/move", time=at, **form)
        text = html.unescape(await refused.text())
        assert refused.status == status, (at, text)
        assert alert(text) == reason
        assert listed(text)[0] == (appointment, "booked")  # the day's list, as it was
    past = await desk.post(
        f"{PAGE}/{appointment}/move", **{**form, "date": "2026-01-05", "time": "09:00"}
    )
    assert past.status == 400
    elsewhere = await desk.post(
        f"{PAGE}/{appointment}/move", time="15:00", **form | {"location": "mars"}
    )
    assert alert(html.unescape(await elsewhere.text())) == (
        "Unknown place 'test_drive:mars': pick one from the list."
    )
    assert await desk.bookings() == before
    assert await desk.said(kim) == said  # the prospect heard nothing
    assert not any(action == "appointment_moved" for action, _ in await desk.audit(kim))

    unknown = await desk.post(f"{PAGE}/999/move", time="15:00", **form)
    assert unknown.status == 404
    assert "No booked appointment 999" in alert(html.unescape(await unknown.text()))
    as_json = await desk.console.request(
        "POST",
        f"{PAGE}/{appointment}/move",
        desk.rep,
        json={"date": "2026-01-07", "time": "12:00", "location": "centro"},
    )
    assert as_json.status == 409
    assert (await as_json.json())["error"]["code"] == "slot_full"


# -- cancelling ---------------------------------------------------------------------------


async def test_a_rep_cancels_a_booking_and_the_prospect_is_told(desk: Desk) -> None:
    kim, _ = await desk.book("Kim", "centro", "2026-01-07T10:00")
    appointment = await desk.booking_of(kim)
    form = {"day": "2026-01-07", "place": "test_drive:centro"}
    cancelled = await desk.post(f"{PAGE}/{appointment}/cancel", **form)
    assert cancelled.status == 303, await cancelled.text()
    back = cancelled.headers["Location"]
    assert urlsplit(back).path == PAGE
    assert parse_qs(urlsplit(back).query) == {
        "day": ["2026-01-07"],
        "place": ["test_drive:centro"],
        "done": ["cancelled"],
    }
    assert await desk.bookings() == [
        (kim, "centro", utc("2026-01-07T10:00"), "cancelled", "prospect")
    ]
    assert (await desk.said(kim))[-1].startswith("We're sorry: your appointment on Wednesday")
    assert ("appointment_cancelled", "Marta Gil (rep 1)") in await desk.audit(kim)
    text = await desk.page(back)
    assert "Appointment cancelled; the prospect has been told." in text
    card = visit(text, appointment)
    assert "Cancelled by a rep" in card
    assert "/cancel" not in card  # nothing left to do with it
    # Twice: refused in words, and the prospect is not told again.
    said = await desk.said(kim)
    again = await desk.post(f"{PAGE}/{appointment}/cancel", **form)
    assert again.status == 404
    assert alert(html.unescape(await again.text())) == f"No booked appointment {appointment}."
    assert await desk.said(kim) == said


async def test_an_erased_leads_booking_stays_listed_without_a_name_or_actions(desk: Desk) -> None:
    kim, _ = await desk.book("Kim", "centro", "2026-01-07T10:00")
    appointment = await desk.booking_of(kim)
    await SqlPrivacy(desk.app[DATABASE]).erase(1, actor="test", now=NOW)
    card = visit(await desk.page(f"{PAGE}?day=2026-01-07"), appointment)
    assert "(erased)" in card
    assert "Kim" not in card
    assert "Cancelled by erasure" in card
    assert "<form" not in card
    refused = await desk.post(f"{PAGE}/{appointment}/cancel", day="2026-01-07")
    assert refused.status == 404
