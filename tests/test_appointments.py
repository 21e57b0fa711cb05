"""Appointments in the conversation: the engine's flow (offers, paging, wishes, places, booking,
reschedule, cancel, reminders), then the service on the fakes, SQLite and PostgreSQL: bookings
stored with capacity held by the database (50 prospects racing for one slot), reminders fired
by the timer runner, reps' moves and cancels, CRM events, calendar links and erasure."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from icalendar import Calendar

from bot import appointments_service as booking
from bot.appointments_links import appointment_from_token, appointment_link, ics_text
from bot.calendars import Availability
from bot.catalog import LoadedScript, ScriptCatalog
from bot.compiled import CompiledScript
from bot.crm_records import Subscription
from bot.crm_routes import CrmRoutes
from bot.crm_watcher import CrmWatcher
from bot.desk import Rep
from bot.effects import (
    BookAppointment,
    CancelAppointment,
    Effect,
    RecordAnswer,
    ScheduleTimer,
    SendText,
)
from bot.engine import step
from bot.inbound import (
    ConversationStarted,
    Inbound,
    OptionPicked,
    SilenceTimerFired,
    TextReceived,
    TimerKind,
)
from bot.loader import load_script
from bot.ports import Storage
from bot.records import Appointment, NewLead
from bot.scheduler import TimerRunner
from bot.service import ConversationService
from bot.state import ConversationState, Status
from bot.tokens import TokenSigner
from storage.privacy import SqlPrivacy
from storage.transactions import SqlStorage
from tests.backends import BACKENDS, Backend, open_backend
from tests.conftest import FakeClock, fresh_database

NOW = datetime(2026, 1, 5, 10, 0, tzinfo=UTC)  # Monday, 11:00 in Madrid
SIGNER = TokenSigner(b"appointment-tests-secret")
ZONE = ZoneInfo("Europe/Madrid")
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
    closed: [2026-01-06]
    locations:
      - {id: centro, name: {en: Downtown, es: Centro}, address: "Calle Mayor 1"}
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
TWO_PLACES = SOURCE.replace(
    '      - {id: centro, name: {en: Downtown, es: Centro}, address: "Calle Mayor 1"}\n',
    '      - {id: centro, name: {en: Downtown, es: Centro}, address: "Calle Mayor 1"}\n'
    "      - {id: norte, name: North}\n",
)


def slot_value(local: str) -> str:
    """The option value of the slot starting at this Madrid wall-clock time."""
    moment = datetime.fromisoformat(local).replace(tzinfo=ZONE).astimezone(UTC)
    return f"centro|{moment:%Y%m%dT%H%M}Z"


FIRST = slot_value("2026-01-05T13:00")  # 11:00 + 2h notice
WEDNESDAY = slot_value("2026-01-07T10:00")


# -- the engine ---------------------------------------------------------------------------


class Chat:
    """A conversation on the engine alone, with the seats taken given by the test."""

    def __init__(self, source: str = SOURCE, language: str = "en") -> None:
        self.script: CompiledScript = load_script(source)
        self.now = NOW
        self.taken: dict[tuple[str, str, datetime], int] = {}
        first = step(self.script, None, ConversationStarted(language=language), self.now)
        self.state: ConversationState = first.state
        self.effects: tuple[Effect, ...] = first.effects

    def send(self, inbound: Inbound) -> tuple[Effect, ...]:
        moved = step(
            self.script, self.state, inbound, self.now, availability=Availability(self.taken)
        )
        self.state, self.effects = moved.state, moved.effects
        return moved.effects

    def say(self, text: str) -> tuple[Effect, ...]:
        return self.send(TextReceived(text))

    def tap(self, value: str) -> tuple[Effect, ...]:
        return self.send(OptionPicked("visit", value))

    def asked(self) -> SendText:
        return [e for e in self.effects if isinstance(e, SendText) and e.options][-1]


def texts(effects: tuple[Effect, ...]) -> list[str]:
    return [e.text for e in effects if isinstance(e, SendText)]


def test_the_question_offers_the_next_free_slots_and_other_times() -> None:
    chat = Chat()
    offer = chat.asked()
    assert offer.text == "When would you like to come?"
    assert [o.value for o in offer.options] == [
        FIRST,
        slot_value("2026-01-05T14:00"),
        slot_value("2026-01-05T15:00"),
        "more",
    ]
    assert offer.options[0].label == "Mon, Jan 5, 1:00\u202fPM"
    assert offer.options[-1].label == "Other times"


def test_other_times_pages_forward_past_closed_dates() -> None:
    chat = Chat()
    chat.tap("more")
    assert [o.value for o in chat.asked().options][:3] == [
        slot_value("2026-01-05T16:00"),
        slot_value("2026-01-05T17:00"),
        slot_value("2026-01-07T09:00"),  # Tuesday the 6th is closed
    ]


def test_a_tap_books_confirms_and_sets_reminders_then_the_flow_goes_on() -> None:
    chat = Chat()
    effects = chat.tap(WEDNESDAY)
    booked = [e for e in effects if isinstance(e, BookAppointment)]
    assert len(booked) == 1
    assert booked[0].starts_at == datetime(2026, 1, 7, 9, 0, tzinfo=UTC)
    assert booked[0].capacity == 2
    assert not booked[0].replaces
    assert texts(effects)[0].startswith(
        "You're booked: Wednesday, January 7, 2026, 10:00\u202fAM, Downtown (Calle Mayor 1)."
    )
    reminders = [(e.kind, e.at) for e in effects if isinstance(e, ScheduleTimer)]
    assert (TimerKind.APPOINTMENT_DAY, datetime(2026, 1, 6, 9, 0, tzinfo=UTC)) in reminders
    assert (TimerKind.APPOINTMENT_HOUR, datetime(2026, 1, 7, 8, 0, tzinfo=UTC)) in reminders
    assert chat.state.question == "name"
    answer = next(e for e in effects if isinstance(e, RecordAnswer))
    assert answer.value == {
        "calendar": "test_drive",
        "location": "centro",
        "starts_at": "2026-01-07T09:00:00Z",
        "ends_at": "2026-01-07T10:00:00Z",
    }


def test_a_typed_number_picks_the_slot_shown_with_it() -> None:
    chat = Chat()
    effects = chat.say("2")
    assert next(e for e in effects if isinstance(e, BookAppointment)).starts_at == datetime(
        2026, 1, 5, 13, 0, tzinfo=UTC
    )


def test_a_typed_wish_offers_the_free_slots_that_fit() -> None:
    chat = Chat()
    chat.say("wednesday after 4")
    offer = chat.asked()
    assert offer.text.startswith("Here's what we have then:")
    assert [o.value for o in offer.options][:2] == [
        slot_value("2026-01-07T16:00"),
        slot_value("2026-01-07T17:00"),
    ]


def test_a_wish_nothing_fits_offers_the_nearest_times() -> None:
    chat = Chat()
    chat.say("saturday morning")  # closed at weekends
    assert chat.asked().text.startswith("Nothing is free then")


def test_gibberish_is_asked_again_with_a_hint() -> None:
    chat = Chat()
    chat.say("purple")
    offer = chat.asked()
    assert offer.text.startswith("Please pick one of the times, or tell me a day and time")
    assert [o.value for o in offer.options][-1] == "more"  # the slots are offered again


def test_with_several_places_the_prospect_picks_one_first() -> None:
    chat = Chat(TWO_PLACES)
    assert [o.value for o in chat.asked().options] == ["place:centro", "place:norte"]
    chat.say("north")
    options = [o.value for o in chat.asked().options]
    assert options[0].startswith("norte|")
    assert options[-2:] == ["more", "place"]
    chat.tap("place")
    assert chat.asked().text == "Where would you like to come?"


def test_a_slot_taken_since_it_was_offered_is_refused_with_others() -> None:
    chat = Chat()
    chat.taken[("test_drive", "centro", datetime(2026, 1, 7, 9, 0, tzinfo=UTC))] = 2
    effects = chat.tap(WEDNESDAY)
    assert not any(isinstance(e, BookAppointment) for e in effects)
    assert chat.asked().text.startswith("Sorry, that time has just been taken.")
    assert WEDNESDAY not in [o.value for o in chat.asked().options]


def test_the_confirmation_is_in_the_prospects_language() -> None:
    chat = Chat(language="es")
    assert chat.asked().options[0].label.startswith("lun, 5 ene")
    effects = chat.tap(WEDNESDAY)
    assert texts(effects)[0].startswith("Reservado: miércoles, 7 de enero de 2026, 10:00, Centro")


def test_the_time_is_shown_in_the_prospects_time_zone_when_it_differs() -> None:
    script = load_script(SOURCE)
    started = ConversationStarted(timezone="America/New_York")
    state = step(script, None, started, NOW).state
    effects = step(script, state, OptionPicked("visit", WEDNESDAY), NOW).effects
    assert "4:00\u202fAM (EST)" in texts(effects)[0]


def test_reschedule_offers_other_times_and_books_in_place_of_the_old_one() -> None:
    chat = Chat()
    chat.tap(WEDNESDAY)
    chat.say("Ana")
    assert chat.state.status is Status.COMPLETED
    effects = chat.say("reschedule")
    assert texts(effects)[0].startswith("Sure, let's find another time.")
    assert WEDNESDAY not in [o.value for o in chat.asked().options]  # theirs already
    effects = chat.tap(FIRST)
    new = next(e for e in effects if isinstance(e, BookAppointment))
    assert new.replaces
    assert not any(isinstance(e, SendText) and e.text == "Thanks!" for e in effects)
    assert chat.state.status is Status.COMPLETED
    assert chat.state.question is None


def test_cancel_appointment_cancels_and_cancel_alone_still_opts_out() -> None:
    chat = Chat()
    chat.tap(WEDNESDAY)
    effects = chat.say("cancel appointment")
    cancel = next(e for e in effects if isinstance(e, CancelAppointment))
    assert cancel.starts_at == datetime(2026, 1, 7, 9, 0, tzinfo=UTC)
    assert texts(effects)[0].startswith("Your appointment on Wednesday, January 7, 2026")
    assert chat.state.question == "name"  # the flow goes on where it was
    assert "Your name?" in texts(effects)
    chat.say("cancel")
    assert chat.state.status is Status.OPTED_OUT


def test_the_keywords_are_ordinary_text_without_an_appointment() -> None:
    chat = Chat()
    chat.say("reschedule")
    assert chat.state.question == "visit"
    assert "tell me a day and time" in texts(chat.effects)[0]


def test_reminders_fire_for_the_current_booking_only() -> None:
    chat = Chat()
    chat.tap(WEDNESDAY)
    chat.now = datetime(2026, 1, 6, 9, 0, tzinfo=UTC)
    effects = chat.send(SilenceTimerFired(TimerKind.APPOINTMENT_DAY, 1))
    assert texts(effects) == [
        "Reminder: your appointment is on Wednesday, January 7, 2026, 10:00\u202fAM, "
        "Downtown (Calle Mayor 1). To change it, type RESCHEDULE."
    ]
    assert effects[0].reminder is not None  # type: ignore[union-attr]
    chat.say("reschedule")
    chat.tap(slot_value("2026-01-08T10:00"))
    assert chat.send(SilenceTimerFired(TimerKind.APPOINTMENT_HOUR, 1)) == ()  # the old booking's


# -- the service, on every backend ---------------------------------------------------------


@pytest.fixture(params=BACKENDS)
async def backend(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Backend]:
    async with open_backend(request.param, tmp_path) as opened:
        yield opened


class World:
    def __init__(self, storage: Storage, source: str = SOURCE, **service: Any) -> None:
        self.storage = storage
        self.clock = FakeClock(NOW)
        self.catalog = ScriptCatalog([LoadedScript(load_script(source), source)])
        self.service = self.worker(storage, **service)
        self._leads = 0

    def worker(self, storage: Storage, **service: Any) -> ConversationService:
        return ConversationService(
            storage,
            self.catalog,
            self.clock,
            appointment_links=lambda i: appointment_link(
                "https://bot.example", SIGNER, i, self.clock()
            ),
            **service,
        )

    async def start(self) -> int:
        self._leads += 1
        number = self._leads
        new = NewLead("api", f"a-{number}", "drive", self.clock(), {})
        lead = await self.storage.run(lambda tx: tx.leads.add(new, f"RAPPT{number}", NOW)[0].id)
        result = await self.service.start(lead, channel="web", channel_user_id=f"chat-{number}")
        return result.conversation_id

    async def appointments(self) -> list[Appointment]:
        return await self.storage.run(
            lambda tx: tx.appointments.between(NOW, NOW + timedelta(days=30))
        )


def booked(found: list[Appointment]) -> list[Appointment]:
    return [a for a in found if a.status == "booked"]


async def test_a_booking_is_stored_and_its_confirmation_links_to_its_calendar_file(
    backend: Backend,
) -> None:
    world = World(backend.storage)
    conversation = await world.start()
    result = await world.service.handle(conversation, OptionPicked("visit", WEDNESDAY))
    [made] = booked(await world.appointments())
    assert (made.calendar, made.location, made.seat) == ("test_drive", "centro", 1)
    assert made.starts_at == datetime(2026, 1, 7, 9, 0, tzinfo=UTC)
    assert made.conversation_id == conversation
    effect = next(e for e in result.effects if isinstance(e, BookAppointment))
    assert effect.appointment_id == made.id
    confirmation = texts(result.effects)[0]
    link = confirmation.rsplit("Add it to your calendar: ", 1)[1]
    assert link.startswith("https://bot.example/a/")
    assert link.endswith(".ics")
    token = link.removeprefix("https://bot.example/a/")
    assert appointment_from_token(SIGNER, token, NOW) == made.id
    sent = [line for line in await backend.transcript(conversation) if line[0] == "bot"]
    assert any(link in text for _, text, _ in sent)


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
async def test_fifty_prospects_race_for_one_slot_of_two_seats(kind: str, tmp_path: Path) -> None:
    """Two workers (services over storages of their own) on one database: exactly two
    bookings, and the 48 others are offered other slots."""
    async with fresh_database(kind, tmp_path) as database:
        first, second = SqlStorage(database), SqlStorage(database)
        try:
            world = World(first)
            other = world.worker(second)
            conversations = [await world.start() for _ in range(50)]
            picks = [
                (world.service if index % 2 else other).handle(
                    conversation, OptionPicked("visit", WEDNESDAY)
                )
                for index, conversation in enumerate(conversations)
            ]
            results = await asyncio.gather(*picks)
            made = booked(await world.appointments())
            assert len(made) == 2
            assert sorted(a.seat or 0 for a in made) == [1, 2]
            won = [r for r in results if any(isinstance(e, BookAppointment) for e in r.effects)]
            lost = [r for r in results if r not in won]
            assert (len(won), len(lost)) == (2, 48)
            for result in lost:
                offer = [e for e in result.effects if isinstance(e, SendText) and e.options][-1]
                assert offer.text.startswith("Sorry, that time has just been taken.")
                assert WEDNESDAY not in [o.value for o in offer.options]
                assert result.state is not None
                assert result.state.question == "visit"
        finally:
            await first.close()
            await second.close()


async def test_fifty_prospects_race_on_the_fakes(tmp_path: Path) -> None:
    async with open_backend("memory", tmp_path) as backend:
        await _race_alone(backend)


async def _race_alone(backend: Backend) -> None:
    world = World(backend.storage)
    conversations = [await world.start() for _ in range(50)]
    picks = [world.service.handle(c, OptionPicked("visit", WEDNESDAY)) for c in conversations]
    await asyncio.gather(*picks)
    assert len(booked(await world.appointments())) == 2


async def test_reminders_go_out_a_day_and_an_hour_before(backend: Backend) -> None:
    world = World(backend.storage)
    conversation = await world.start()
    await world.service.handle(conversation, OptionPicked("visit", WEDNESDAY))
    await world.service.handle(conversation, TextReceived("Ana"))  # completes: timers stay
    runner = TimerRunner(backend.storage, world.service, world.clock)
    assert await runner.run_once() == 0
    world.clock.now = datetime(2026, 1, 6, 9, 0, tzinfo=UTC)  # a day before
    assert await runner.run_once() == 1
    world.clock.now = datetime(2026, 1, 7, 8, 0, tzinfo=UTC)  # an hour before
    assert await runner.run_once() == 1
    world.clock.advance(days=1)
    assert await runner.run_once() == 0
    reminders = [
        item["payload"]
        for item in await backend.outbox()
        if item["payload"]["text"].startswith("Reminder:")
    ]
    assert len(reminders) == 2
    assert all(payload["reminder"] == "nudge" for payload in reminders)


async def test_reschedule_and_cancel_free_the_seats(backend: Backend) -> None:
    world = World(backend.storage)
    conversation = await world.start()
    await world.service.handle(conversation, OptionPicked("visit", WEDNESDAY))
    await world.service.handle(conversation, TextReceived("reschedule"))
    result = await world.service.handle(conversation, OptionPicked("visit", FIRST))
    cancelled = [e for e in result.effects if isinstance(e, CancelAppointment)]
    assert [e.starts_at for e in cancelled] == [datetime(2026, 1, 7, 9, 0, tzinfo=UTC)]
    found = await world.appointments()
    assert [(a.starts_at.hour, a.status, a.seat) for a in found] == [
        (12, "booked", 1),
        (9, "cancelled", None),
    ]
    await world.service.handle(conversation, TextReceived("cancel appointment"))
    assert booked(await world.appointments()) == []


async def test_a_rep_moves_and_cancels_and_the_prospect_is_told(backend: Backend) -> None:
    world = World(backend.storage)
    conversation = await world.start()
    await world.service.handle(conversation, OptionPicked("visit", WEDNESDAY))
    [made] = booked(await world.appointments())
    rep = Rep(7, "Marta")
    thursday = datetime(2026, 1, 8, 15, 0, tzinfo=UTC)
    with pytest.raises(booking.NotASlotError):
        await world.service.move_appointment(
            made.id, location="centro", starts_at=thursday.replace(minute=30), rep=rep
        )
    result = await world.service.move_appointment(
        made.id, location="centro", starts_at=thursday, rep=rep
    )
    assert texts(result.effects)[0].startswith(
        "Your appointment has been moved to Thursday, January 8, 2026, 4:00\u202fPM"
    )
    assert "/a/" in texts(result.effects)[0]
    [moved] = booked(await world.appointments())
    assert (moved.starts_at, moved.booked_by) == (thursday, "rep")
    assert result.state is not None
    assert result.state.question == "name"  # the flow is untouched
    result = await world.service.cancel_appointment(moved.id, rep=rep)
    assert texts(result.effects)[0].startswith("We're sorry: your appointment on Thursday")
    assert booked(await world.appointments()) == []
    with pytest.raises(booking.UnknownAppointmentError):
        await world.service.cancel_appointment(moved.id, rep=rep)
    lines = await backend.transcript(conversation)
    assert any("moved to Thursday" in text for _, text, _ in lines)


async def test_a_rep_cannot_move_into_a_full_slot(backend: Backend) -> None:
    world = World(backend.storage)
    mine, *others = [await world.start() for _ in range(3)]
    await world.service.handle(mine, OptionPicked("visit", FIRST))
    for conversation in others:
        await world.service.handle(conversation, OptionPicked("visit", WEDNESDAY))
    [made] = [a for a in booked(await world.appointments()) if a.conversation_id == mine]
    with pytest.raises(booking.SlotFullError):
        await world.service.move_appointment(
            made.id,
            location="centro",
            starts_at=datetime(2026, 1, 7, 9, 0, tzinfo=UTC),
            rep=Rep(1, "Marta"),
        )
    assert [a.starts_at for a in booked(await world.appointments()) if a.id == made.id] == [
        made.starts_at
    ]


async def test_the_crm_hears_of_bookings_and_cancellations() -> None:
    async with open_backend("memory", Path()) as backend:
        routes = CrmRoutes()
        wanted = frozenset({"appointment.booked", "appointment.cancelled"})
        routes.replace([Subscription(1, "crm", "https://crm.example", wanted, "settings")])
        world = World(backend.storage, watchers=[CrmWatcher(routes)])
        conversation = await world.start()
        await world.service.handle(conversation, OptionPicked("visit", WEDNESDAY))
        await world.service.handle(conversation, TextReceived("cancel appointment"))
        events = backend.memory.data.crm.events
        assert [e.event for e in events] == ["appointment.booked", "appointment.cancelled"]
        body = events[0].body["appointment"]
        assert body == {
            "id": 1,
            "calendar": "test_drive",
            "location": "centro",
            "starts_at": "2026-01-07T09:00:00Z",
            "ends_at": "2026-01-07T10:00:00Z",
            "status": "booked",
            "by": "prospect",
        }
        assert events[1].body["appointment"]["status"] == "cancelled"
        assert events[1].body["appointment"]["id"] == 1


def test_the_calendar_file_is_one_event_in_utc() -> None:
    made = Appointment(
        5, 1, 1, "drive", "visit", "test_drive", "centro",
        datetime(2026, 1, 7, 9, 0, tzinfo=UTC), datetime(2026, 1, 7, 10, 0, tzinfo=UTC),
        "booked", 1, "prospect", NOW,
    )  # fmt: skip
    script = load_script(SOURCE).spec
    event = Calendar.from_ical(ics_text(made, script, "es", NOW)).walk("VEVENT")[0]
    assert event.decoded("dtstart") == made.starts_at
    assert event.decoded("dtend") == made.ends_at
    assert str(event["location"]) == "Centro, Calle Mayor 1"
    assert str(event["summary"]) == "Test drive"
    assert str(event["status"]) == "CONFIRMED"
    gone = replace(made, status="cancelled")
    cancelled = Calendar.from_ical(ics_text(gone, script, "en", NOW)).walk("VEVENT")[0]
    assert (str(cancelled["status"]), cancelled["sequence"]) == ("CANCELLED", 1)


def test_an_appointment_token_is_not_a_lead_token() -> None:
    link = appointment_link("https://bot.example", SIGNER, 42, NOW)
    token = link.rsplit("/", 1)[1]
    assert appointment_from_token(SIGNER, token, NOW) == 42
    with pytest.raises(Exception, match="altered"):
        SIGNER.verify(token.removesuffix(".ics"), NOW)


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
async def test_erasing_a_person_cancels_their_coming_booking(kind: str, tmp_path: Path) -> None:
    async with fresh_database(kind, tmp_path) as database:
        storage = SqlStorage(database)
        try:
            world = World(storage)
            conversation = await world.start()
            await world.service.handle(conversation, OptionPicked("visit", WEDNESDAY))
            erasure = await SqlPrivacy(database).erase(1, actor="test", now=NOW)
            assert erasure.removed["appointments_cancelled"] == 1
            [row] = await world.appointments()
            assert (row.status, row.seat, row.conversation_id) == ("cancelled", None, None)
            assert row.cancelled_by == "erased"
        finally:
            await storage.close()


def test_a_script_must_define_the_calendar_it_books() -> None:
    with pytest.raises(Exception, match="which `calendars` does not define"):
        load_script(SOURCE.replace("calendar: test_drive", "calendar: elsewhere"))
