"""Dates, days and numbers in the conversation's language, with Babel's CLDR data."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime
from functools import lru_cache

from babel import Locale, UnknownLocaleError
from babel.dates import format_date, format_time, get_day_names
from babel.lists import format_list
from babel.numbers import format_decimal


@lru_cache(maxsize=64)
def _locale(language: str) -> Locale:
    try:
        return Locale.parse(language, sep="-")
    except (UnknownLocaleError, ValueError):
        return Locale.parse("en")


def long_date(day: date, language: str) -> str:
    """ "Saturday, November 28, 2026" / "sábado, 28 de noviembre de 2026"."""
    return format_date(day, format="full", locale=_locale(language))


def long_datetime(moment: datetime, language: str) -> str:
    locale = _locale(language)
    return f"{format_date(moment.date(), format='full', locale=locale)}, " + format_time(
        moment.time(), format="short", locale=locale
    )


# How a run of days reads; CLDR has no pattern for it. Other languages fall back to a list.
_DAY_RANGE = {
    "en": "{first} to {last}",
    "es": "de {first} a {last}",
    "fr": "du {first} au {last}",
    "de": "{first} bis {last}",
    "pt": "de {first} a {last}",
    "it": "da {first} a {last}",
}


def day_list(weekdays: Iterable[int], language: str) -> str:
    """0 = Monday: [0, 2] -> "Monday and Wednesday"; [0..4] -> "Monday to Friday"."""
    locale = _locale(language)
    names = get_day_names("wide", locale=locale)
    pattern = _DAY_RANGE.get(locale.language)
    runs: list[list[int]] = []
    for day in sorted(set(weekdays)):
        if runs and day == runs[-1][-1] + 1:
            runs[-1].append(day)
        else:
            runs.append([day])
    parts: list[str] = []
    for run in runs:
        if pattern is not None and len(run) >= 3:
            parts.append(pattern.format(first=names[run[0]], last=names[run[-1]]))
        else:
            parts.extend(names[day] for day in run)
    return format_list(parts, locale=locale)


def number(value: float, language: str) -> str:
    """10000.0 -> "10,000" / "10.000": no stray ".0" on whole numbers."""
    shown: float | int = int(value) if float(value).is_integer() else value
    return format_decimal(shown, locale=_locale(language))
