"""The `appointment` question in the engine: offer free slots, page on, take a typed wish, book,
remind, reschedule and cancel. Steps of the engine's turn (`bot.engine._Turn`), like handoff.

The engine cannot read the database: the service reads the seats taken into an `Availability`
and passes it to `step()`. Booking is an effect the service carries out in the turn's
transaction; when the slot filled up meanwhile, it runs the turn again with that slot full,
and this module offers other slots instead. What the conversation remembers between turns
(the place chosen, the slots on show, the booking) is `ConversationState.appointment`.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from itertools import islice
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from babel.dates import format_skeleton, format_time

from bot.answers.choice import ChoiceOption, match_choice
from bot.answers.result import JSONValue, Parsed, Rejected
from bot.appointments_wish import match_wish, parse_wish
from bot.calendars import (
    Slot,
    calendar_of,
    capacity_of,
    free_slots,
    location_of,
    slot_at,
    zone_of,
)
from bot.compiled import pick_language
from bot.effects import (
    BookAppointment,
    CancelAppointment,
    InputHint,
    OptionView,
    RecordAnswer,
    ReminderPart,
    ScheduleTimer,
    SendText,
)
from bot.inbound import AppointmentCancelled, AppointmentMoved, SilenceTimerFired, TimerKind
from bot.keywords import Command
from bot.localize import long_datetime
from bot.spec import AppointmentQuestion, CalendarSpec
from bot.state import WITH_PEOPLE, Status

if TYPE_CHECKING:
    from bot.engine import _Turn

MORE = "more"  # the "other times" option
OTHER_PLACE = "place"  # back to the choice of place
PLACE = "place:"  # an option that picks a place
REMINDERS = (
    (TimerKind.APPOINTMENT_DAY, timedelta(days=1)),
    (TimerKind.APPOINTMENT_HOUR, timedelta(hours=1)),
)


@dataclass(frozen=True, slots=True)
class Booked:
    location: str
    starts_at: datetime  # UTC
    ends_at: datetime
    seq: int  # the conversation's booking number: its reminders carry it

    @property
    def slot(self) -> Slot:
        return Slot(self.starts_at, self.ends_at, self.location)


@dataclass(frozen=True, slots=True)
class Progress:
    """`ConversationState.appointment`, typed."""

    location: str | None = None  # the place chosen (or the only one)
    offered: tuple[str, ...] = ()  # slot values on show, in order
    booked: Booked | None = None
    seq: int = 0  # bookings made so far
    back: tuple[str, str | None] | None = None  # (status, question) a reschedule returns to

    @classmethod
    def of(cls, data: Any) -> Progress:
        data = dict(data or {})
        booked = data.get("booked")
        back = data.get("back")
        return cls(
            location=data.get("location"),
            offered=tuple(data.get("offered") or ()),
            booked=Booked(
                booked["location"],
                datetime.fromisoformat(booked["starts_at"]),
                datetime.fromisoformat(booked["ends_at"]),
                int(booked["seq"]),
            )
            if booked
            else None,
            seq=int(data.get("seq", 0)),
            back=(back[0], back[1]) if back else None,
        )

    def to_json(self) -> dict[str, JSONValue]:
        data: dict[str, JSONValue] = {"seq": self.seq, "offered": list(self.offered)}
        if self.location is not None:
            data["location"] = self.location
        if self.booked is not None:
            data["booked"] = {
                "location": self.booked.location,
                "starts_at": self.booked.starts_at.isoformat(),
                "ends_at": self.booked.ends_at.isoformat(),
                "seq": self.booked.seq,
            }
        if self.back is not None:
            data["back"] = [self.back[0], self.back[1]]
        return data


def progress(turn: _Turn) -> Progress:
    return Progress.of(turn.state.appointment)


def _save(turn: _Turn, value: Progress) -> None:
    turn.set(appointment=value.to_json())


def _question(turn: _Turn) -> AppointmentQuestion | None:
    return next((q for q in turn.script.spec.questions if isinstance(q, AppointmentQuestion)), None)


def _calendar(turn: _Turn, question: AppointmentQuestion) -> CalendarSpec:
    return calendar_of(turn.script.spec, question.calendar)


# -- words --------------------------------------------------------------------------------


def _zone(turn: _Turn) -> ZoneInfo:
    return ZoneInfo(turn.state.timezone)


def slot_label(slot: Slot, zone: ZoneInfo, language: str) -> str:
    """ "Tue, Jan 6, 10:00" / "mar, 6 ene, 10:00": a button's worth."""
    local = slot.starts_at.astimezone(zone)
    try:
        day = format_skeleton("MMMEd", local, locale=language.replace("-", "_"))
        clock = format_time(local, format="short", locale=language.replace("-", "_"))
    except (ValueError, LookupError):
        day, clock = format_skeleton("MMMEd", local, locale="en"), f"{local:%H:%M}"
    return f"{day}, {clock}"


def when_text(
    starts_at: datetime, zone: ZoneInfo, language: str, *, calendar_zone: ZoneInfo
) -> str:
    """The full date and time in the prospect's zone, naming the zone when it is not the
    calendar's (a prospect abroad booking a visit back home)."""
    local = starts_at.astimezone(zone)
    text = long_datetime(local.replace(tzinfo=None), language)
    if zone.key != calendar_zone.key:
        text += f" ({local.tzname()})"
    return text


def place_text(calendar: CalendarSpec, location_id: str, language: str, default: str) -> str:
    place = location_of(calendar, location_id)
    if place is None:
        return location_id
    name = pick_language(place.name, language, default)
    return f"{name} ({place.address})" if place.address else name


def _words(turn: _Turn, question: AppointmentQuestion, booked: Slot) -> dict[str, object]:
    calendar = _calendar(turn, question)
    default = turn.script.spec.default_language
    zone = zone_of(turn.script.spec, calendar)
    return {
        "when": when_text(booked.starts_at, _zone(turn), turn.language, calendar_zone=zone),
        "place": place_text(calendar, booked.location, turn.language, default),
    }


# -- asking -------------------------------------------------------------------------------


def offer(
    turn: _Turn,
    question: AppointmentQuestion,
    text: str | None = None,
    *,
    after: datetime | None = None,
    slots: list[Slot] | None = None,
    note: str | None = None,
) -> None:
    """Ask for a place first when there are several, else show free slots: the next ones
    (after `after`), or `slots` when given."""
    calendar = _calendar(turn, question)
    state = progress(turn)
    places = calendar.locations
    location = state.location or (places[0].id if len(places) == 1 else None)
    if location is None:
        _ask_place(turn, question, calendar, text)
        return
    if slots is None:
        slots = _next_free(turn, calendar, location, question.offer, after=after, state=state)
        if not slots and after is not None:
            note = turn.script.message("appointment_wrapped", turn.language)
            slots = _next_free(turn, calendar, location, question.offer, after=None, state=state)
    if not slots:
        turn.say(turn.script.message("appointment_none", turn.language))
        _save(turn, replace(state, offered=()))
        turn.give_up(question)
        return
    zone = _zone(turn)
    options = [OptionView(slot.value, slot_label(slot, zone, turn.language)) for slot in slots]
    options.append(OptionView(MORE, turn.script.message("appointment_more", turn.language)))
    if len(places) > 1:
        label = turn.script.message("appointment_other_place", turn.language)
        options.append(OptionView(OTHER_PLACE, label))
    shown = text if text is not None else turn.render(question.prompt)
    if note:
        shown = f"{note}\n{shown}"
    _save(turn, replace(state, location=location, offered=tuple(s.value for s in slots)))
    turn.emit(SendText(shown, tuple(options), question.id, InputHint.CHOICE))
    turn.asked = True


def _next_free(
    turn: _Turn,
    calendar: CalendarSpec,
    location: str,
    count: int,
    *,
    after: datetime | None,
    state: Progress,
) -> list[Slot]:
    mine = (state.booked.slot,) if state.booked is not None else ()
    free = free_slots(
        calendar,
        zone_of(turn.script.spec, calendar),
        turn.availability,
        turn.now,
        locations=[location],
        after=after,
        exclude=mine,
    )
    return list(islice(free, count))


def _ask_place(
    turn: _Turn, question: AppointmentQuestion, calendar: CalendarSpec, text: str | None
) -> None:
    default = turn.script.spec.default_language
    options = tuple(
        OptionView(PLACE + place.id, pick_language(place.name, turn.language, default))
        for place in calendar.locations
    )
    if text is None:
        prompt = question.location_prompt
        text = (
            pick_language(prompt, turn.language, default)
            if prompt is not None
            else turn.script.message("appointment_location", turn.language)
        )
    _save(turn, replace(progress(turn), location=None, offered=()))
    turn.emit(SendText(text, options, question.id, InputHint.CHOICE))
    turn.asked = True


# -- answers ------------------------------------------------------------------------------


def on_option(turn: _Turn, question: AppointmentQuestion, value: str) -> None:
    calendar = _calendar(turn, question)
    state = progress(turn)
    if value == MORE:
        last = Slot.from_value(state.offered[-1], calendar.slot) if state.offered else None
        offer(turn, question, after=last.starts_at if last else None)
        return
    if value == OTHER_PLACE:
        _save(turn, replace(state, location=None, offered=()))
        offer(turn, question)
        return
    if value.startswith(PLACE):
        place = value[len(PLACE) :]
        if location_of(calendar, place) is None:
            turn.answer(question, Rejected("choice"), "prospect")
            return
        _save(turn, replace(state, location=place))
        offer(turn, question)
        return
    picked = Slot.from_value(value, calendar.slot)
    zone = zone_of(turn.script.spec, calendar)
    real = slot_at(calendar, zone, picked.location, picked.starts_at) if picked else None
    if real is None:
        turn.answer(question, Rejected("appointment"), "prospect")
        return
    free = free_slots(
        calendar,
        zone,
        turn.availability,
        turn.now,
        locations=[real.location],
        after=real.starts_at - timedelta(microseconds=1),
    )
    if next(free, None) != real:  # taken since it was offered, or no longer bookable
        taken = turn.script.message("appointment_taken", turn.language)
        offer(turn, question, note=taken)
        return
    book(turn, question, real, by="prospect")


def on_text(turn: _Turn, question: AppointmentQuestion, text: str) -> None:
    """A typed choice (a number, a place's or a slot's name), else a wish for a day or time."""
    calendar = _calendar(turn, question)
    state = progress(turn)
    default = turn.script.spec.default_language
    if state.location is None and len(calendar.locations) > 1:
        places = [
            ChoiceOption(
                PLACE + place.id,
                pick_language(place.name, turn.language, default),
                tuple(
                    [place.id] + ([] if isinstance(place.name, str) else list(place.name.values()))
                ),
            )
            for place in calendar.locations
        ]
        found = match_choice(text, places)
        if isinstance(found, Parsed):
            on_option(turn, question, str(found.value))
        else:
            turn.answer(question, Rejected("choice"), "prospect")
        return
    zone = _zone(turn)
    shown = [
        ChoiceOption(value, slot_label(slot, zone, turn.language))
        for value in state.offered
        if (slot := Slot.from_value(value, calendar.slot)) is not None
    ]
    shown.append(ChoiceOption(MORE, turn.script.message("appointment_more", turn.language)))
    if len(calendar.locations) > 1:
        label = turn.script.message("appointment_other_place", turn.language)
        shown.append(ChoiceOption(OTHER_PLACE, label))
    found = match_choice(text, shown)
    if isinstance(found, Parsed):
        on_option(turn, question, str(found.value))
        return
    wish = parse_wish(text, now=turn.now, timezone=turn.state.timezone, languages=[turn.language])
    if wish is None or state.location is None:
        turn.answer(question, Rejected("appointment"), "prospect")
        return
    mine = (state.booked.slot,) if state.booked is not None else ()
    free = free_slots(
        calendar,
        zone_of(turn.script.spec, calendar),
        turn.availability,
        turn.now,
        locations=[state.location],
        exclude=mine,
    )
    slots, fits = match_wish(wish, free, zone, question.offer)
    key = "appointment_matches" if fits else "appointment_nearest"
    offer(turn, question, slots=slots, note=turn.script.message(key, turn.language))


def book(turn: _Turn, question: AppointmentQuestion, slot: Slot, *, by: str) -> None:
    """Confirm, book (the service makes it so, or runs the turn again), and remind later."""
    calendar = _calendar(turn, question)
    state = progress(turn)
    words = _words(turn, question, slot)
    value: dict[str, JSONValue] = {
        "calendar": calendar.id,
        "location": slot.location,
        "starts_at": _iso(slot.starts_at),
        "ends_at": _iso(slot.ends_at),
    }
    display = f"{words['when']}, {words['place']}"
    turn.answers[question.id] = value
    turn.emit(RecordAnswer(question.id, value, display, by))
    key = "appointment_booked" if by == "prospect" else "appointment_moved"
    turn.say(turn.script.message(key, turn.language, words))
    turn.emit(
        BookAppointment(
            question_id=question.id,
            calendar=calendar.id,
            location=slot.location,
            starts_at=slot.starts_at,
            ends_at=slot.ends_at,
            capacity=capacity_of(calendar, slot.location),
            replaces=state.booked is not None,
            by=by,
            link_text=turn.script.message("appointment_link", turn.language),
        )
    )
    seq = state.seq + 1
    for kind, before in REMINDERS:
        if slot.starts_at - before > turn.now:
            turn.emit(ScheduleTimer(kind, slot.starts_at - before, seq))
    booked = Booked(slot.location, slot.starts_at, slot.ends_at, seq)
    _save(turn, replace(state, offered=(), booked=booked, seq=seq, back=None))
    if by != "prospect":
        return  # a rep moved it: the conversation stays where it was
    if state.back is not None:
        _return(turn, state.back)
        return
    turn.go(turn.next_after(question), question.id)


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _return(turn: _Turn, back: tuple[str, str | None]) -> None:
    """After a reschedule (or its cancelling): back where the conversation was."""
    status, question = back
    turn.set(status=Status(status), question=question, attempts=0)
    if turn.state.status is Status.ACTIVE and question is not None:
        turn.ask_again()


# -- commands, reminders and reps --------------------------------------------------------


def on_command(turn: _Turn, command: Command) -> bool:
    """ "reschedule" / "cancel appointment"; False when there is nothing to act on (then the
    words are an ordinary reply)."""
    question = _question(turn)
    state = progress(turn)
    if question is None or state.booked is None:
        return False
    if command is Command.RESCHEDULE:
        if turn.state.question != question.id:
            back = (turn.state.status.value, turn.state.question)
            _save(turn, replace(state, back=back, offered=()))
            turn.set(status=Status.ACTIVE, question=question.id, attempts=0, confirming=False)
        turn.say(turn.script.message("appointment_reschedule", turn.language))
        offer(turn, question)
        return True
    if command is Command.CANCEL_APPOINTMENT:
        _cancel(turn, question, state, by="prospect", key="appointment_cancelled")
        if state.back is not None:
            _return(turn, state.back)
        elif turn.state.status is Status.ACTIVE and turn.state.question is not None:
            turn.ask_again()  # the conversation goes on where it was
        return True
    return False


def _cancel(
    turn: _Turn, question: AppointmentQuestion, state: Progress, *, by: str, key: str
) -> None:
    assert state.booked is not None
    calendar = _calendar(turn, question)
    booked = state.booked
    words = _words(turn, question, booked.slot)
    turn.emit(CancelAppointment(question.id, calendar.id, booked.location, booked.starts_at, by))
    turn.answers[question.id] = None
    turn.emit(RecordAnswer(question.id, None, "", by))
    _save(turn, replace(state, booked=None, back=None, offered=()))
    turn.say(turn.script.message(key, turn.language, words))


def on_reminder(turn: _Turn, fired: SilenceTimerFired) -> None:
    """A day or an hour before: a reminder's message (a channel's window rules apply)."""
    question = _question(turn)
    booked = progress(turn).booked
    if question is None or booked is None or fired.seq != booked.seq:
        return  # moved, rescheduled or cancelled since
    if turn.state.status in WITH_PEOPLE or turn.now >= booked.starts_at:
        return
    text = turn.script.message(
        "appointment_reminder", turn.language, _words(turn, question, booked.slot)
    )
    turn.emit(SendText(text, reminder=ReminderPart.NUDGE))


def on_moved(turn: _Turn, event: AppointmentMoved) -> None:
    question = _question(turn)
    if question is None:
        return
    calendar = _calendar(turn, question)
    slot = slot_at(calendar, zone_of(turn.script.spec, calendar), event.location, event.starts_at)
    if slot is not None:
        book(turn, question, slot, by="rep")


def on_rep_cancelled(turn: _Turn, event: AppointmentCancelled) -> None:
    question = _question(turn)
    state = progress(turn)
    if question is None or state.booked is None:
        return
    _cancel(turn, question, state, by="rep", key="appointment_cancelled_by_us")
    if state.back is not None:
        _return(turn, state.back)
