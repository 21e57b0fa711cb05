from datetime import UTC, datetime, time, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.answers.dates import parse_when
from bot.answers.result import Parsed, ParseResult, Rejected

# Thursday 26 November 2026, 10:00 UTC: 11:00 in Madrid, 05:00 in New York.
NOW = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)
MADRID = "Europe/Madrid"


def when(text: str, **kwargs: Any) -> ParseResult:
    options: dict[str, Any] = {"timezone": MADRID, "languages": ("en",), "with_time": True}
    return parse_when(text, now=NOW, **(options | kwargs))


@pytest.mark.parametrize(
    ("text", "languages", "value", "display"),
    [
        ("next friday 3pm", ("en",), "2026-11-27T15:00:00+01:00", "Friday 27 November 2026, 15:00"),
        ("tomorrow at 10", ("en",), "2026-11-27T10:00:00+01:00", "Friday 27 November 2026, 10:00"),
        (
            "Tomorrow at 10:30",
            ("en",),
            "2026-11-27T10:30:00+01:00",
            "Friday 27 November 2026, 10:30",
        ),
        ("4 Dec 15:00", ("en",), "2026-12-04T15:00:00+01:00", "Friday 4 December 2026, 15:00"),
        ("2026-12-04 9am", ("en",), "2026-12-04T09:00:00+01:00", "Friday 4 December 2026, 09:00"),
        ("in 2 hours", ("en",), "2026-11-26T13:00:00+01:00", "Thursday 26 November 2026, 13:00"),
        ("3pm", ("en",), "2026-11-26T15:00:00+01:00", "Thursday 26 November 2026, 15:00"),
        (
            "friday at 3pm would be great, thanks",
            ("en",),
            "2026-11-27T15:00:00+01:00",
            "Friday 27 November 2026, 15:00",
        ),
        ("mañana a las 5", ("es",), "2026-11-27T05:00:00+01:00", "Friday 27 November 2026, 05:00"),
        (
            "mañana a las 5 de la tarde",
            ("es",),
            "2026-11-27T17:00:00+01:00",
            "Friday 27 November 2026, 17:00",
        ),
        (
            "el viernes a las 10",
            ("es",),
            "2026-11-27T10:00:00+01:00",
            "Friday 27 November 2026, 10:00",
        ),
        (
            "vendredi à 15h30",
            ("fr",),
            "2026-11-27T15:30:00+01:00",
            "Friday 27 November 2026, 15:30",
        ),
        (
            "morgen um 15 Uhr",
            ("de",),
            "2026-11-27T15:00:00+01:00",
            "Friday 27 November 2026, 15:00",
        ),
        ("amanhã às 9", ("pt-BR",), "2026-11-27T09:00:00+01:00", "Friday 27 November 2026, 09:00"),
        # Summer time: the offset is the one in force on that day, not today's.
        ("2027-07-01 15:00", ("en",), "2027-07-01T15:00:00+02:00", "Thursday 1 July 2027, 15:00"),
    ],
)
def test_parse_datetime(text: str, languages: tuple[str, ...], value: str, display: str) -> None:
    assert when(text, languages=languages) == Parsed(value, display)


@pytest.mark.parametrize(
    ("text", "languages", "value", "display"),
    [
        ("2026-12-04", ("en",), "2026-12-04", "Friday 4 December 2026"),
        ("4 Dec", ("en",), "2026-12-04", "Friday 4 December 2026"),
        ("in 3 days", ("en",), "2026-11-29", "Sunday 29 November 2026"),
        ("tomorrow", ("en",), "2026-11-27", "Friday 27 November 2026"),
        ("today", ("en",), "2026-11-26", "Thursday 26 November 2026"),
        ("next friday 3pm", ("en",), "2026-11-27", "Friday 27 November 2026"),
        ("tomorrow morning", ("en",), "2026-11-27", "Friday 27 November 2026"),
        ("yesterday", ("en",), "2026-11-25", "Wednesday 25 November 2026"),
        ("mañana a las 5", ("es",), "2026-11-27", "Friday 27 November 2026"),
        ("el 4 de diciembre", ("es",), "2026-12-04", "Friday 4 December 2026"),
        ("4 décembre", ("fr", "xx"), "2026-12-04", "Friday 4 December 2026"),
    ],
)
def test_parse_date(text: str, languages: tuple[str, ...], value: str, display: str) -> None:
    assert when(text, languages=languages, with_time=False) == Parsed(value, display)


def test_relative_words_count_in_the_prospects_zone() -> None:
    # At 10:00 UTC it is already Friday on Kiritimati (UTC+14) but still Thursday in New York.
    kiritimati = when("tomorrow", timezone="Pacific/Kiritimati", with_time=False)
    assert kiritimati == Parsed("2026-11-28", "Saturday 28 November 2026")
    new_york = when("tomorrow 3pm", timezone="America/New_York")
    assert new_york == Parsed("2026-11-27T15:00:00-05:00", "Friday 27 November 2026, 15:00")


def test_now_in_another_zone_gives_the_same_answer() -> None:
    other = NOW.astimezone(timezone(timedelta(hours=-7)))
    assert parse_when(
        "tomorrow at 10", now=other, timezone=MADRID, languages=("en",), with_time=True
    ) == when("tomorrow at 10")


@pytest.mark.parametrize(
    ("text", "kwargs", "expected"),
    [
        ("", {}, Rejected("date")),
        ("asdf", {}, Rejected("date")),
        ("next week", {}, Rejected("date")),
        ("December", {"with_time": False}, Rejected("date")),
        ("2027", {"with_time": False}, Rejected("date")),
        ("tomorrow " * 30, {}, Rejected("date")),
        ("call me back", {}, Rejected("date")),
        ("friday or monday", {"with_time": False}, Rejected("date")),
        ("tomorrow", {}, Rejected("time_missing")),
        ("2026-12-04", {}, Rejected("time_missing")),
        ("in 3 days", {}, Rejected("time_missing")),
        ("tomorrow morning", {}, Rejected("time_missing")),
        ("yesterday at 5pm", {"future_only": True}, Rejected("past")),
        ("yesterday", {"future_only": True, "with_time": False}, Rejected("past")),
        (
            "today",
            {"future_only": True, "with_time": False},
            Parsed("2026-11-26", "Thursday 26 November 2026"),
        ),
        ("in 30 days at 10am", {"within_days": 14}, Rejected("too_far", {"days": 14})),
        ("in 30 days", {"within_days": 14, "with_time": False}, Rejected("too_far", {"days": 14})),
        (
            "in 14 days",
            {"within_days": 14, "with_time": False},
            Parsed("2026-12-10", "Thursday 10 December 2026"),
        ),
        (
            "saturday 10am",
            {"weekdays": frozenset(range(5))},
            Rejected("weekday", {"days": "Monday to Friday"}),
        ),
        (
            "saturday",
            {"weekdays": frozenset({0, 2, 4}), "with_time": False},
            Rejected("weekday", {"days": "Monday, Wednesday and Friday"}),
        ),
        (
            "friday",
            {"weekdays": frozenset({5, 6}), "with_time": False},
            Rejected("weekday", {"days": "Saturday and Sunday"}),
        ),
        (
            "tomorrow at 8pm",
            {"hours": (time(9), time(18))},
            Rejected("hours", {"start": "09:00", "end": "18:00"}),
        ),
        (
            "tomorrow at 8:59",
            {"hours": (time(9), time(18))},
            Rejected("hours", {"start": "09:00", "end": "18:00"}),
        ),
        (
            "tomorrow at 6pm",
            {"hours": (time(9), time(18))},
            Parsed("2026-11-27T18:00:00+01:00", "Friday 27 November 2026, 18:00"),
        ),
        (
            "tomorrow at 11pm",
            {"hours": (time(22), time(6))},
            Parsed("2026-11-27T23:00:00+01:00", "Friday 27 November 2026, 23:00"),
        ),
        (
            "tomorrow at 7am",
            {"hours": (time(22), time(6, 30))},
            Rejected("hours", {"start": "22:00", "end": "06:30"}),
        ),
    ],
)
def test_parse_when_checks(text: str, kwargs: dict[str, Any], expected: ParseResult) -> None:
    assert when(text, **kwargs) == expected


def test_naive_now_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        parse_when(
            "tomorrow", now=NOW.replace(tzinfo=None), timezone=MADRID, languages=(), with_time=False
        )


@settings(max_examples=50, deadline=None)
@given(st.text() | st.text(min_size=1000, max_size=10_000), st.booleans())
def test_parse_when_never_raises(text: str, with_time: bool) -> None:
    result = when(
        text,
        languages=("es", "fr"),
        with_time=with_time,
        future_only=True,
        within_days=30,
        weekdays=frozenset(range(5)),
        hours=(time(9), time(18)),
    )
    assert isinstance(result, Parsed | Rejected)


@settings(max_examples=50, deadline=None)
@given(
    st.lists(
        st.sampled_from(
            [
                "tomorrow",
                "at",
                "10",
                "3pm",
                "in",
                "days",
                "2026-12-04",
                "Dec",
                "4",
                "h",
                "uhr",
                "de la tarde",
                "a las",
                "next",
                "friday",
                ":",
                "99",
                "-",
                "0",
            ]
        ),
        max_size=6,
    ).map(" ".join)
)
def test_parse_when_never_raises_on_date_like_text(text: str) -> None:
    assert isinstance(when(text, languages=("es", "de")), Parsed | Rejected)
