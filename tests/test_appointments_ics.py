"""GET /a/{token}.ics on the real app: the link a booking's confirmation carries serves one valid
iCalendar event in the prospect's language, a cancelled booking as STATUS:CANCELLED; a link that
is not ours, was altered or expired, and a booking erased or unknown, get a JSON error."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from icalendar import Calendar
from pytest_aiohttp import AiohttpClient

from bot.appointments_links import appointment_link
from bot.desk import Rep
from bot.effects import SendText
from bot.service import TurnResult
from storage.privacy import SqlPrivacy
from tests.test_appointments_console import Desk, running_desk, utc
from webhooks.keys import CONVERSATIONS, DATABASE, SETTINGS, SIGNER


@pytest.fixture(params=["sqlite", "postgresql"])
async def desk(
    request: pytest.FixtureRequest, aiohttp_client: AiohttpClient, tmp_path: Path
) -> AsyncIterator[Desk]:
    async with running_desk(aiohttp_client, tmp_path, request.param) as running:
        yield running


def link_path(result: TurnResult) -> str:
    """The path of the calendar link in the booking's confirmation."""
    texts = " ".join(e.text for e in result.effects if isinstance(e, SendText))
    found = re.search(r"https?://\S+?(/a/[A-Za-z0-9_-]+\.ics)", texts)
    assert found is not None, texts
    return found.group(1)


async def fetch(desk: Desk, path: str) -> tuple[int, str, str]:
    response = await desk.console.client.get(path)
    return response.status, response.headers.get("Content-Type", ""), await response.text()


async def error_code(desk: Desk, path: str, status: int) -> str:
    response = await desk.console.client.get(path)
    assert response.status == status, await response.text()
    code: str = (await response.json())["error"]["code"]
    return code


async def test_the_confirmations_link_serves_one_valid_event(desk: Desk) -> None:
    _, result = await desk.book("Kim", "centro", "2026-01-07T10:00", language="es")
    path = link_path(result)
    assert path.endswith(".ics")
    response = await desk.console.client.get(path)  # no login: the token is the authority
    assert response.status == 200, await response.text()
    assert response.content_type == "text/calendar"
    assert response.charset == "utf-8"
    assert response.headers["Content-Disposition"].startswith("attachment; filename=")
    assert response.headers["Content-Disposition"].endswith('.ics"')
    ics = Calendar.from_ical(await response.text())
    [event] = ics.walk("VEVENT")
    assert event.decoded("dtstart") == utc("2026-01-07T10:00")
    assert event.decoded("dtend") == utc("2026-01-07T11:00")
    assert str(event["summary"]) == "Test drive"
    assert str(event["location"]) == "Centro, Calle Mayor 1"  # in the prospect's language
    assert str(event["status"]) == "CONFIRMED"


async def test_a_cancelled_or_moved_booking_is_served_cancelled(desk: Desk) -> None:
    kim, kims = await desk.book("Kim", "centro", "2026-01-07T10:00")
    lou, lous = await desk.book("Lou", "norte", "2026-01-07T12:00")
    service = desk.app[CONVERSATIONS]
    rep = Rep(1, "Marta Gil")
    await service.cancel_appointment(await desk.booking_of(kim), rep=rep)
    moved = await service.move_appointment(
        await desk.booking_of(lou), location="norte", starts_at=utc("2026-01-08T12:00"), rep=rep
    )
    for path in (link_path(kims), link_path(lous)):
        status, content_type, text = await fetch(desk, path)
        assert (status, content_type) == (200, "text/calendar; charset=utf-8")
        [event] = Calendar.from_ical(text).walk("VEVENT")
        assert (str(event["status"]), event["sequence"]) == ("CANCELLED", 1)
    [event] = Calendar.from_ical((await fetch(desk, link_path(moved)))[2]).walk("VEVENT")
    assert (str(event["status"]), event.decoded("dtstart")) == (
        "CONFIRMED",
        utc("2026-01-08T12:00"),
    )


async def test_a_link_that_is_not_ours_or_expired_gets_a_clear_error(desk: Desk) -> None:
    _, result = await desk.book("Kim", "centro", "2026-01-07T10:00")
    path = link_path(result)
    token = path.removeprefix("/a/").removesuffix(".ics")
    altered = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
    assert await error_code(desk, f"/a/{altered}.ics", 404) == "link_invalid"
    assert await error_code(desk, "/a/not-a-token.ics", 404) == "link_invalid"
    assert await error_code(desk, f"/a/{'x' * 300}.ics", 404) == "link_invalid"
    # A lead's chat token is signed with another key: no calendar link.
    lead_token = desk.app[SIGNER].sign(1, desk.console.clock())
    assert await error_code(desk, f"/a/{lead_token}.ics", 404) == "link_invalid"
    # Ours, but for a booking that never was.
    base = desk.app[SETTINGS].base_url
    never = appointment_link(base, desk.app[SIGNER], 999, desk.console.clock())
    assert await error_code(desk, "/a/" + never.split("/a/", 1)[1], 404) == "not_found"
    assert (await fetch(desk, path))[0] == 200
    desk.console.clock.advance(days=401)  # calendar links live 400 days
    assert await error_code(desk, path, 410) == "link_expired"


async def test_an_erased_booking_is_gone(desk: Desk) -> None:
    _, result = await desk.book("Kim", "centro", "2026-01-07T10:00")
    path = link_path(result)
    assert (await fetch(desk, path))[0] == 200
    await SqlPrivacy(desk.app[DATABASE]).erase(1, actor="test", now=desk.console.clock())
    assert await error_code(desk, path, 404) == "not_found"
