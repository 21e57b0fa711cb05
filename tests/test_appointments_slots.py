"""Slot maths and typed wishes: opening hours, capacity, notice, horizon, closed dates, and
the nights the clocks change, in Europe/Madrid and America/New_York; all pure."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from itertools import islice
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

from bot.appointments_wish import Wish, match_wish, parse_wish
from bot.calendars import (
    Availability,
    Slot,
    day_bounds,
    free_slots,
    opening_slots,
    slot_at,
)
from bot.spec import CalendarSpec

MADRID = ZoneInfo("Europe/Madrid")
NEW_YORK = ZoneInfo("America/New_York")
MONDAY = datetime(2026, 1, 5, 7, 0, tzinfo=UTC)  # 08:00 in Madrid


def calendar(**changes: object) -> CalendarSpec:
    data: dict[str, object] = {
        "id": "visits",
        "hours": {
            "mon": "09:00-12:00",
            "tue": ["09:00-10:00", "16:00-17:00"],
            "sat": "10:00-12:00",
        },
        "slot": "1h",
        "capacity": 2,
        "notice": "0m",
        "horizon": "14d",
        "locations": [{"id": "centro", "name": "Centro"}],
    }
    data.update(changes)
    return CalendarSpec.model_validate(data)


def local_times(slots: list[Slot], zone: ZoneInfo) -> list[str]:
    return [f"{s.starts_at.astimezone(zone):%a %d %H:%M}" for s in slots]


def first(cal: CalendarSpec, n: int, now: datetime = MONDAY, **kw: object) -> list[Slot]:
    taken = kw.pop("availability", Availability())
    assert isinstance(taken, Availability)
    free = free_slots(cal, MADRID, taken, now, locations=["centro"], **kw)  # type: ignore[arg-type]
    return list(islice(free, n))


def test_slots_follow_opening_hours_per_weekday() -> None:
    assert local_times(first(calendar(), 6), MADRID) == [
        "Mon 05 09:00",
        "Mon 05 10:00",
        "Mon 05 11:00",
        "Tue 06 09:00",
        "Tue 06 16:00",
        "Sat 10 10:00",
    ]


def test_slots_are_stored_in_utc_and_end_after_their_length() -> None:
    slot = first(calendar(), 1)[0]
    assert slot.starts_at == datetime(2026, 1, 5, 8, 0, tzinfo=UTC)
    assert slot.ends_at - slot.starts_at == timedelta(hours=1)


def test_a_full_slot_is_skipped_and_one_with_a_seat_left_is_not() -> None:
    nine, ten = first(calendar(), 2)
    taken = Availability(
        {("visits", "centro", nine.starts_at): 2, ("visits", "centro", ten.starts_at): 1}
    )
    assert local_times(first(calendar(), 2, availability=taken), MADRID) == [
        "Mon 05 10:00",
        "Mon 05 11:00",
    ]


def test_a_location_can_have_its_own_capacity() -> None:
    cal = calendar(locations=[{"id": "centro", "name": "Centro", "capacity": 3}])
    nine = first(cal, 1)[0]
    taken = Availability({("visits", "centro", nine.starts_at): 2})
    assert first(cal, 1, availability=taken)[0] == nine


def test_minimum_notice_hides_slots_starting_too_soon() -> None:
    # 08:00 in Madrid with 2h30 of notice: 09:00 and 10:00 are too soon.
    assert local_times(first(calendar(notice="150m"), 1), MADRID) == ["Mon 05 11:00"]


def test_nothing_is_offered_beyond_the_horizon() -> None:
    slots = list(
        free_slots(calendar(horizon="2d"), MADRID, Availability(), MONDAY, locations=["centro"])
    )
    assert local_times(slots, MADRID)[-1] == "Tue 06 16:00"
    assert all(slot.starts_at < MONDAY + timedelta(days=2) for slot in slots)


def test_closed_dates_have_no_slots() -> None:
    slots = first(calendar(closed=[date(2026, 1, 6)]), 4)
    assert local_times(slots, MADRID) == [
        "Mon 05 09:00",
        "Mon 05 10:00",
        "Mon 05 11:00",
        "Sat 10 10:00",
    ]


def test_paging_goes_on_after_the_last_slot_shown() -> None:
    shown = first(calendar(), 3)
    assert local_times(first(calendar(), 2, after=shown[-1].starts_at), MADRID) == [
        "Tue 06 09:00",
        "Tue 06 16:00",
    ]


def test_the_same_wall_clock_time_moves_in_utc_when_summer_time_starts_in_madrid() -> None:
    cal = calendar(hours={"fri": "09:00-10:00", "mon": "09:00-10:00"})
    start = datetime(2026, 3, 27, tzinfo=UTC)  # Friday before the last Sunday of March
    slots = list(opening_slots(cal, "centro", MADRID, start, start + timedelta(days=4)))
    assert [s.starts_at for s in slots] == [
        datetime(2026, 3, 27, 8, 0, tzinfo=UTC),  # 09:00 CET (+01:00)
        datetime(2026, 3, 30, 7, 0, tzinfo=UTC),  # 09:00 CEST (+02:00)
    ]


def test_spring_forward_skips_the_hour_that_does_not_exist() -> None:
    # New York, 8 March 2026: 02:00 jumps to 03:00.
    cal = calendar(hours={"sun": "01:00-04:00"}, slot="30m")
    start = datetime(2026, 3, 8, tzinfo=NEW_YORK)
    slots = list(opening_slots(cal, "centro", NEW_YORK, start, start + timedelta(days=1)))
    assert [f"{s.starts_at.astimezone(NEW_YORK):%H:%M %Z}" for s in slots] == [
        "01:00 EST",
        "01:30 EST",
        "03:00 EDT",
        "03:30 EDT",
    ]
    assert slots[1].starts_at + timedelta(minutes=30) == slots[2].starts_at  # no gap in UTC


def test_fall_back_offers_a_repeated_hour_once() -> None:
    # New York, 1 November 2026: 01:00-02:00 happens twice.
    cal = calendar(hours={"sun": "00:00-03:00"}, slot="1h")
    start = datetime(2026, 11, 1, tzinfo=NEW_YORK)
    slots = list(opening_slots(cal, "centro", NEW_YORK, start, start + timedelta(days=1)))
    assert [f"{s.starts_at.astimezone(NEW_YORK):%H:%M %Z}" for s in slots] == [
        "00:00 EDT",
        "01:00 EDT",
        "02:00 EST",
    ]
    assert len({s.starts_at for s in slots}) == 3


def test_fall_back_in_madrid_keeps_slots_at_their_wall_clock_times() -> None:
    cal = calendar(hours={"sat": "09:00-10:00", "mon": "09:00-10:00"})
    start = datetime(2026, 10, 24, tzinfo=UTC)  # the last Sunday of October is the 25th
    slots = list(opening_slots(cal, "centro", MADRID, start, start + timedelta(days=3)))
    assert [f"{s.starts_at.astimezone(MADRID):%a %H:%M}" for s in slots] == [
        "Sat 09:00",
        "Mon 09:00",
    ]
    assert [s.starts_at.hour for s in slots] == [7, 8]  # +02:00, then +01:00


def test_a_day_is_25_hours_long_when_the_clocks_go_back() -> None:
    start, end = day_bounds(MADRID, date(2026, 10, 25))
    assert end - start == timedelta(hours=25)


def test_slot_at_accepts_only_real_slots() -> None:
    nine = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)
    assert slot_at(calendar(), MADRID, "centro", nine) is not None
    assert slot_at(calendar(), MADRID, "centro", nine + timedelta(minutes=30)) is None
    assert slot_at(calendar(), MADRID, "elsewhere", nine) is None


def test_a_slot_survives_its_option_value() -> None:
    slot = first(calendar(), 1)[0]
    assert Slot.from_value(slot.value, timedelta(hours=1)) == slot
    assert Slot.from_value("centro|tomorrow", timedelta(hours=1)) is None


def test_overlapping_hours_and_unknown_zones_are_refused() -> None:
    with pytest.raises(ValidationError, match="overlap"):
        calendar(hours={"mon": ["09:00-12:00", "11:00-13:00"]})
    with pytest.raises(ValidationError, match="unknown time zone"):
        calendar(timezone="Mars/Olympus")


# -- wishes -------------------------------------------------------------------------------


def wish(text: str, language: str = "en") -> Wish | None:
    return parse_wish(text, now=MONDAY, timezone="Europe/Madrid", languages=[language])


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("tomorrow after 5", Wish(day=date(2026, 1, 6), earliest=datetime(1, 1, 1, 17).time())),
        (
            "next Saturday morning",
            Wish(
                day=date(2026, 1, 10),
                earliest=datetime(1, 1, 1, 6).time(),
                latest=datetime(1, 1, 1, 12).time(),
            ),
        ),
        ("friday at 10", Wish(day=date(2026, 1, 9), at=datetime(1, 1, 1, 10).time())),
        ("before 11am", Wish(latest=datetime(1, 1, 1, 11).time())),
        (
            "mañana por la tarde",
            Wish(
                day=date(2026, 1, 6),
                earliest=datetime(1, 1, 1, 12).time(),
                latest=datetime(1, 1, 1, 18).time(),
            ),
        ),
    ],
)
def test_wishes_are_understood(text: str, expected: Wish) -> None:
    language = "es" if "ñ" in text else "en"
    assert wish(text, language) == expected


@pytest.mark.parametrize("text", ["2", "hello there", ""])
def test_what_is_no_wish_is_none(text: str) -> None:
    assert wish(text) is None


def test_a_wish_finds_the_free_slots_that_fit() -> None:
    cal = calendar(hours={"tue": "09:00-20:00"})
    free = free_slots(cal, MADRID, Availability(), MONDAY, locations=["centro"])
    found = wish("tomorrow after 5")
    assert found is not None
    slots, fits = match_wish(found, free, MADRID, 3)
    assert fits
    assert local_times(slots, MADRID) == ["Tue 06 17:00", "Tue 06 18:00", "Tue 06 19:00"]


def test_a_wish_nothing_fits_gets_the_nearest_free_slots() -> None:
    free = free_slots(calendar(), MADRID, Availability(), MONDAY, locations=["centro"])
    found = wish("saturday at 5pm")  # Saturdays close at 12:00
    assert found is not None
    slots, fits = match_wish(found, free, MADRID, 2)
    assert not fits
    assert local_times(slots, MADRID) == ["Sat 10 10:00", "Sat 10 11:00"]
