"""The service's side of appointments, inside a turn's transaction: read the seats taken for the
engine, make the bookings a turn asked for (or run the turn again when a slot filled up
meanwhile), and a rep's move or cancel of a booking."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import datetime

from bot.calendars import Availability, Slot, calendar_of, capacity_of, slot_at, zone_of
from bot.compiled import CompiledScript
from bot.effects import BookAppointment, CancelAppointment, Effect, SendText
from bot.engine import Transition
from bot.errors import BotError
from bot.messages import fill
from bot.ports import Transaction
from bot.records import Appointment, Conversation, NewAppointment

BOOKED = "booked"
_MAX_TRIES = 4  # a turn books one slot; each try marks one more full


class AppointmentError(BotError):
    """A rep's change to an appointment that cannot be made; nothing was changed."""


class UnknownAppointmentError(AppointmentError):
    pass


class NotASlotError(AppointmentError):
    """The time is not one of the calendar's slots at that place."""


class SlotFullError(AppointmentError):
    """Every seat of the slot is taken."""


def availability(tx: Transaction, script: CompiledScript, now: datetime) -> Availability | None:
    """The seats taken in the script's calendars, from now to the furthest horizon; None for a
    script without calendars (one query per turn for those with)."""
    calendars = script.spec.calendars
    if not calendars:
        return None
    until = now + max(calendar.horizon for calendar in calendars)
    return Availability(tx.appointments.seats_taken([c.id for c in calendars], now, until))


def settle(
    tx: Transaction,
    conversation: Conversation,
    transition: Transition,
    again: Callable[[Availability], Transition],
    *,
    seen: Availability | None,
    now: datetime,
    link: Callable[[int], str] | None = None,
) -> Transition:
    """Carry out the turn's bookings and cancellations. A slot that filled up since `seen` was
    read: the turn runs `again` with it full (the prospect is offered other slots), so what
    returns holds only bookings that were made, each with its id (and link in its message)."""
    seen = seen or Availability()
    for _ in range(_MAX_TRIES):
        booking = next((e for e in transition.effects if isinstance(e, BookAppointment)), None)
        if booking is None:
            return _cancel(tx, conversation, transition, now)
        made = tx.appointments.book(_new(conversation, booking), booking.capacity, now)
        if made is not None:
            return _cancel(
                tx,
                conversation,
                _booked(tx, conversation, transition, made, link=link, now=now),
                now,
            )
        if booking.by != "prospect":
            raise SlotFullError("every seat of that slot is taken")
        slot = Slot(booking.starts_at, booking.ends_at, booking.location)
        seen = seen.with_full(booking.calendar, slot, booking.capacity)
        transition = again(seen)
    raise SlotFullError("the slots kept filling up; try again")


def _new(conversation: Conversation, booking: BookAppointment) -> NewAppointment:
    return NewAppointment(
        lead_id=conversation.lead_id,
        conversation_id=conversation.id,
        script_id=conversation.script_id,
        question_id=booking.question_id,
        calendar=booking.calendar,
        location=booking.location,
        starts_at=booking.starts_at,
        ends_at=booking.ends_at,
        booked_by=booking.by,
    )


def _booked(
    tx: Transaction,
    conversation: Conversation,
    transition: Transition,
    made: Appointment,
    *,
    link: Callable[[int], str] | None,
    now: datetime,
) -> Transition:
    """The turn's effects with the booking's id, its link added to the confirmation (the
    message before it), and the booking it replaced cancelled."""
    effects: list[Effect] = []
    for effect in transition.effects:
        if not isinstance(effect, BookAppointment):
            effects.append(effect)
            continue
        if link is not None and effect.link_text and effects and isinstance(effects[-1], SendText):
            confirmation = effects[-1]
            line = fill(effect.link_text, {"link": link(made.id)})
            effects[-1] = replace(confirmation, text=f"{confirmation.text}\n{line}")
        effects.append(replace(effect, appointment_id=made.id))
        if effect.replaces:
            for old in tx.appointments.cancel_booked(
                conversation.id, by=effect.by, now=now, keep=made.id
            ):
                effects.append(_cancelled(old, effect.by))
    return Transition(transition.state, tuple(effects))


def _cancel(
    tx: Transaction, conversation: Conversation, transition: Transition, now: datetime
) -> Transition:
    """Carry out the turn's CancelAppointment: each cancelled booking named by its id."""
    if not any(isinstance(e, CancelAppointment) for e in transition.effects):
        return transition
    effects: list[Effect] = []
    for effect in transition.effects:
        if isinstance(effect, CancelAppointment) and effect.appointment_id is None:
            gone = tx.appointments.cancel_booked(conversation.id, by=effect.by, now=now)
            effects.extend(_cancelled(old, effect.by) for old in gone)
        else:
            effects.append(effect)
    return Transition(transition.state, tuple(effects))


def _cancelled(old: Appointment, by: str) -> CancelAppointment:
    return CancelAppointment(
        old.question_id, old.calendar, old.location, old.starts_at, by, old.id, old.ends_at
    )


def checked_move(
    tx: Transaction,
    script: CompiledScript,
    appointment: Appointment,
    *,
    location: str,
    starts_at: datetime,
    now: datetime,
) -> None:
    """Raise unless a rep may move `appointment` there: a slot of the calendar at that place,
    in the future, with a free seat."""
    try:
        calendar = calendar_of(script.spec, appointment.calendar)
    except KeyError:
        raise NotASlotError(f"the script has no calendar {appointment.calendar!r}") from None
    slot = slot_at(calendar, zone_of(script.spec, calendar), location, starts_at)
    if slot is None or slot.starts_at <= now:
        raise NotASlotError("that time is not a future slot of the calendar at that place")
    taken = tx.appointments.seats_taken([calendar.id], slot.starts_at, slot.ends_at)
    if taken.get((calendar.id, location, slot.starts_at), 0) >= capacity_of(calendar, location):
        raise SlotFullError("every seat of that slot is taken")


def booked(tx: Transaction, appointment_id: int) -> Appointment:
    found = tx.appointments.get(appointment_id)
    if found is None or found.status != BOOKED or found.conversation_id is None:
        raise UnknownAppointmentError(f"no booked appointment {appointment_id}")
    return found
