"""Slot maths: a calendar's slots as wall-clock times in its zone, which are free, and where.

Slots are cut from the opening hours on the local calendar (09:00, 09:30... whatever the
offset that day), then turned into UTC instants, which is how they are stored and compared.
On the night the clocks spring forward, a wall-clock time that does not exist is no slot; on
the night they fall back, a time that happens twice is one slot, the first time it happens.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from bot.spec import CalendarSpec, LocationSpec, Script, WeeklyHours

_WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
SlotKey = tuple[str, str, datetime]  # (calendar, location, starts_at in UTC)


@dataclass(frozen=True, slots=True, order=True)
class Slot:
    starts_at: datetime  # UTC
    ends_at: datetime  # UTC: starts_at + the slot's length, whatever the clocks did
    location: str

    @property
    def value(self) -> str:
        """How an option names the slot (short: Telegram's callback data is 64 bytes)."""
        return f"{self.location}|{self.starts_at.astimezone(UTC):%Y%m%dT%H%M}Z"

    @classmethod
    def from_value(cls, value: str, length: timedelta) -> Slot | None:
        location, _, moment = value.partition("|")
        try:
            starts = datetime.strptime(moment, "%Y%m%dT%H%MZ").replace(tzinfo=UTC)
        except ValueError:
            return None
        return cls(starts, starts + length, location)


@dataclass(frozen=True, slots=True)
class Availability:
    """Seats taken per slot, as the turn's transaction read them (the engine cannot read)."""

    taken: Mapping[SlotKey, int] = field(default_factory=dict)

    def seats_taken(self, calendar: str, slot: Slot) -> int:
        return self.taken.get((calendar, slot.location, slot.starts_at), 0)

    def with_full(self, calendar: str, slot: Slot, capacity: int) -> Availability:
        """This availability, with `slot` full: it filled up after it was read."""
        return Availability({**self.taken, (calendar, slot.location, slot.starts_at): capacity})


NOTHING_BOOKED = Availability()


def calendar_of(script: Script, calendar_id: str) -> CalendarSpec:
    for calendar in script.calendars:
        if calendar.id == calendar_id:
            return calendar
    raise KeyError(calendar_id)


def zone_of(script: Script, calendar: CalendarSpec) -> ZoneInfo:
    return ZoneInfo(calendar.timezone or script.timezone)


def location_of(calendar: CalendarSpec, location_id: str) -> LocationSpec | None:
    return next((place for place in calendar.locations if place.id == location_id), None)


def capacity_of(calendar: CalendarSpec, location_id: str) -> int:
    place = location_of(calendar, location_id)
    return place.capacity if place is not None and place.capacity else calendar.capacity


def _hours(calendar: CalendarSpec, location_id: str) -> WeeklyHours:
    place = location_of(calendar, location_id)
    return place.hours if place is not None and place.hours is not None else calendar.hours


def _instant(wall: datetime, zone: ZoneInfo) -> datetime | None:
    """The UTC instant of a wall-clock time, None when the clocks skip it (spring forward).
    fold=0: a time that happens twice (fall back) is taken the first time."""
    aware = wall.replace(tzinfo=zone, fold=0)
    instant = aware.astimezone(UTC)
    if instant.astimezone(zone).replace(tzinfo=None) != wall:
        return None
    return instant


def _day_slots(
    calendar: CalendarSpec, location_id: str, zone: ZoneInfo, day: date
) -> Iterator[Slot]:
    if day in calendar.closed:
        return
    weekday = _WEEKDAYS[day.weekday()]
    for opens, closes in sorted(_hours(calendar, location_id).get(weekday, [])):  # type: ignore[call-overload]
        wall, end = datetime.combine(day, opens), datetime.combine(day, closes)
        while wall + calendar.slot <= end:
            starts = _instant(wall, zone)
            if starts is not None:
                yield Slot(starts, starts + calendar.slot, location_id)
            wall += calendar.slot


def opening_slots(
    calendar: CalendarSpec, location_id: str, zone: ZoneInfo, start: datetime, end: datetime
) -> Iterator[Slot]:
    """Every slot of the place starting in [start, end), in time order."""
    day = start.astimezone(zone).date()
    last = end.astimezone(zone).date()
    while day <= last:
        for slot in _day_slots(calendar, location_id, zone, day):
            if start <= slot.starts_at < end:
                yield slot
        day += timedelta(days=1)


def bookable_window(calendar: CalendarSpec, now: datetime) -> tuple[datetime, datetime]:
    """Slots start no sooner than the minimum notice and no later than the horizon."""
    return now + calendar.notice, now + calendar.horizon


def free_slots(
    calendar: CalendarSpec,
    zone: ZoneInfo,
    availability: Availability,
    now: datetime,
    *,
    locations: Iterable[str],
    after: datetime | None = None,
    exclude: Iterable[Slot] = (),
) -> Iterator[Slot]:
    """The free slots of these places (merged in time order) within notice and horizon, those
    starting after `after` only; lazily, so asking for the next three costs three."""
    start, end = bookable_window(calendar, now)
    if after is not None:
        start = max(start, after + timedelta(microseconds=1))
    skipped = {(slot.location, slot.starts_at) for slot in exclude}
    runs = [opening_slots(calendar, place, zone, start, end) for place in locations]
    for slot in heapq.merge(*runs):
        if (slot.location, slot.starts_at) in skipped:
            continue
        if availability.seats_taken(calendar.id, slot) < capacity_of(calendar, slot.location):
            yield slot


def slot_at(
    calendar: CalendarSpec, zone: ZoneInfo, location_id: str, starts_at: datetime
) -> Slot | None:
    """The place's slot starting at this instant, if opening hours have one (a rep's move)."""
    if location_of(calendar, location_id) is None:
        return None
    starts = starts_at.astimezone(UTC)
    day = starts.astimezone(zone).date()
    return next(
        (s for s in _day_slots(calendar, location_id, zone, day) if s.starts_at == starts), None
    )


def day_bounds(zone: ZoneInfo, day: date) -> tuple[datetime, datetime]:
    """A local day as UTC instants [start, end): 23 or 25 hours long when the clocks change."""
    start = datetime.combine(day, time(0), tzinfo=zone).astimezone(UTC)
    end = datetime.combine(day + timedelta(days=1), time(0), tzinfo=zone).astimezone(UTC)
    return start, end
