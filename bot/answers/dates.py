"""Dates and appointment times in the prospect's words and time zone, via dateparser."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from dateparser.data import language_order
from dateparser.date import DateData, DateDataParser
from dateparser.search import search_dates

from bot.answers.clock import spell_out_clock_times
from bot.answers.result import Parsed, ParseResult, Rejected

# A date or time fits in a short reply; dateparser is slow, so longer text is not tried.
_MAX_TEXT = 200
_SUPPORTED_LANGUAGES = frozenset(language_order)
# English names, whatever the conversation's language: the engine localizes messages, and
# strftime would depend on the process locale.
_DAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_MONTH_NAMES = (
    *("January", "February", "March", "April", "May", "June", "July", "August"),
    *("September", "October", "November", "December"),
)
# Periods that name a span rather than a day ("next week", "December", "2027").
_VAGUE_PERIODS = frozenset({"week", "month", "year"})


def parse_when(
    text: str,
    *,
    now: datetime,
    timezone: str,
    languages: Sequence[str],
    with_time: bool,
    future_only: bool = False,
    within_days: int | None = None,
    weekdays: frozenset[int] | None = None,  # 0 = Monday ... 6 = Sunday
    hours: tuple[time, time] | None = None,
) -> ParseResult:
    """Accept a day (`with_time=False`) or a day and time of day (`with_time=True`).

    `now` must be timezone-aware; relative words ("tomorrow") count from `now` as seen in the
    prospect's `timezone`, and the answer is given in that zone.
    """
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    zone = ZoneInfo(timezone)
    local_now = now.astimezone(zone)
    stripped = text.strip()
    if not stripped or len(stripped) > _MAX_TEXT:
        return Rejected("date")
    found = _parse(stripped, local_now, timezone, dateparser_languages(languages))
    if found is None or found.date_obj is None or found.period in _VAGUE_PERIODS:
        return Rejected("date")
    when = found.date_obj.astimezone(zone).replace(second=0, microsecond=0)
    day = when.date()
    if with_time and found.period != "time":
        return Rejected("time_missing")
    if with_time:
        problem = _check_moment(when, now, future_only=future_only, within_days=within_days)
    else:
        problem = _check_day(day, local_now.date(), future_only=future_only, within=within_days)
    if problem is not None:
        return problem
    if weekdays is not None and day.weekday() not in weekdays:
        return Rejected("weekday", {"days": _day_list(weekdays)})
    if with_time and hours is not None and not _within_hours(when.time(), hours):
        return Rejected("hours", {"start": f"{hours[0]:%H:%M}", "end": f"{hours[1]:%H:%M}"})
    if with_time:
        return Parsed(when.isoformat(), f"{_long_date(day)}, {when:%H:%M}")
    return Parsed(day.isoformat(), _long_date(day))


def dateparser_languages(languages: Sequence[str]) -> list[str]:
    """The given languages that dateparser knows ("pt-BR" becomes "pt"), then English."""
    chosen: list[str] = []
    for tag in (*languages, "en"):
        base = tag.replace("_", "-").split("-")[0].lower()
        for candidate in (tag, base):
            if candidate in _SUPPORTED_LANGUAGES:
                if candidate not in chosen:
                    chosen.append(candidate)
                break
    return chosen


def _parse(text: str, local_now: datetime, timezone: str, languages: list[str]) -> DateData | None:
    return read_date(spell_out_clock_times(text), local_now, timezone, languages)


def read_date(
    text: str, local_now: datetime, timezone: str, languages: list[str]
) -> DateData | None:
    """What dateparser makes of `text` (`local_now` in `timezone`; `languages` as
    `dateparser_languages` gives them): the whole reply, else the one date found inside it."""
    settings: dict[str, Any] = {
        "TIMEZONE": timezone,
        "RETURN_AS_TIMEZONE_AWARE": True,
        "RELATIVE_BASE": local_now.replace(tzinfo=None),
        "PREFER_DATES_FROM": "future",
        # Makes the period "time" exactly when the text gave a time of day, which is how
        # "tomorrow" (no time) is told apart from "tomorrow at 10".
        "RETURN_TIME_AS_PERIOD": True,
    }
    with warnings.catch_warnings():
        # dateparser and the time zone libraries under it warn about their own deprecations;
        # pytest turns warnings into errors, and these say nothing about the prospect's reply.
        for category in (DeprecationWarning, PendingDeprecationWarning, FutureWarning):
            warnings.filterwarnings(
                "ignore", category=category, module=r"(dateparser|tzlocal|pytz|dateutil)(\.|$)"
            )
        parser = DateDataParser(languages=languages, settings=settings)
        data = parser.get_date_data(text)
        if data.date_obj is not None:
            return data
        # Chatter around the date ("friday at 3pm would be great"): take the one date in it.
        matches = search_dates(text, languages=languages, settings=settings)
        if matches is None or len(matches) != 1:
            return None
        return parser.get_date_data(matches[0][0])


def _check_moment(
    when: datetime, now: datetime, *, future_only: bool, within_days: int | None
) -> Rejected | None:
    if future_only and when <= now:
        return Rejected("past")
    if within_days is not None and when - now > timedelta(days=within_days):
        return Rejected("too_far", {"days": within_days})
    return None


def _check_day(day: date, today: date, *, future_only: bool, within: int | None) -> Rejected | None:
    if future_only and day < today:
        return Rejected("past")
    if within is not None and (day - today).days > within:
        return Rejected("too_far", {"days": within})
    return None


def _within_hours(moment: time, hours: tuple[time, time]) -> bool:
    start, end = hours
    # A window such as 22:00-06:00 runs past midnight.
    if start <= end:
        return start <= moment <= end
    return moment >= start or moment <= end


def _day_list(weekdays: frozenset[int]) -> str:
    """English names of the allowed days: "Monday to Friday", "Saturday and Sunday"."""
    days = sorted(day for day in weekdays if 0 <= day <= 6)
    names = [_DAY_NAMES[day] for day in days]
    if len(days) >= 3 and days == list(range(days[0], days[-1] + 1)):
        return f"{names[0]} to {names[-1]}"
    if len(names) <= 2:
        return " and ".join(names)
    return ", ".join(names[:-1]) + " and " + names[-1]


def _long_date(day: date) -> str:
    return f"{_DAY_NAMES[day.weekday()]} {day.day} {_MONTH_NAMES[day.month - 1]} {day.year}"
