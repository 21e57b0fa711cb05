"""A typed wish for an appointment ("tomorrow after 5", "next Saturday morning"), understood
with dateparser in the prospect's time zone, and the free slots nearest to it."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from itertools import islice
from zoneinfo import ZoneInfo

from bot.answers.dates import dateparser_languages, read_date
from bot.calendars import Slot

_MAX_TEXT = 200  # a wish is short; dateparser is slow on long text
_MAX_CANDIDATES = 5000  # free slots looked at: a year of a busy calendar

# Parts of the day, after accents are folded. Spanish "mañana" and German "morgen" alone
# mean "tomorrow": only their "in the morning" forms are a part of the day.
_PARTS: tuple[tuple[re.Pattern[str], time, time], ...] = (
    (
        re.compile(
            r"\b(?:in the morning|morning|por la manana|en la manana|de manana|du matin|matin"
            r"|morgens|vormittags?|fruh|pela manha|de manha|a manha)\b"
        ),
        time(6),
        time(12),
    ),
    (
        re.compile(
            r"\b(?:in the afternoon|afternoon|por la tarde|en la tarde|de la tarde|apres midi"
            r"|nachmittags?|a tarde|de tarde|pela tarde)\b"
        ),
        time(12),
        time(18),
    ),
    (
        re.compile(
            r"\b(?:in the evening|evening|tonight|por la noche|de la noche|soir|ce soir|abends?"
            r"|a noite|de noite)\b"
        ),
        time(17),
        time(23, 59),
    ),
)
_HOUR = r"(?P<hour>\d{1,2})(?:[:.h](?P<minute>\d{2}))?\s*(?P<mark>am|pm|a m|p m|h|uhr)?\b"
_AFTER = re.compile(
    r"\b(?:after|from|since|despues de(?: las?)?|a partir de(?: las?)?|desde(?: las?)?"
    r"|apres|des|nach|ab|depois d[ao]s?|a partir d[ao]s?)\s+" + _HOUR
)
_BEFORE = re.compile(
    r"\b(?:before|until|till|by|antes de(?: las?)?|hasta(?: las?)?|avant|vor|bis|antes d[ao]s?"
    r"|ate)\s+" + _HOUR
)
_AT = re.compile(
    r"(?:\b(?:at|around|a las?|a|vers|um|gegen|as)\s+" + _HOUR + r")"
    r"|(?:\b(?P<hour2>\d{1,2})(?::(?P<minute2>\d{2})\s*(?P<mark2>am|pm)?|\s*(?P<mark3>am|pm))\b)"
)


@dataclass(frozen=True, slots=True)
class Wish:
    day: date | None = None  # in the prospect's zone
    not_before: date | None = None  # "next week"
    earliest: time | None = None
    latest: time | None = None  # slots start before this
    at: time | None = None


def _fold(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    bare = "".join(char for char in decomposed if not unicodedata.combining(char))
    return re.sub(r"\s+", " ", re.sub(r"[^\w:.\s]", " ", bare)).strip()


def _clock(hour: str, minute: str | None, mark: str | None) -> time | None:
    hours, minutes = int(hour), int(minute or 0)
    mark = (mark or "").replace(" ", "")
    if mark == "pm" and hours < 12:
        hours += 12
    elif mark == "am" and hours == 12:
        hours = 0
    elif not mark and 1 <= hours <= 7:
        hours += 12  # "after 5": nobody books a visit at five in the morning
    if hours > 23 or minutes > 59:
        return None
    return time(hours, minutes)


def parse_wish(text: str, *, now: datetime, timezone: str, languages: Sequence[str]) -> Wish | None:
    """What the prospect asked for, or None when the text names no day nor time."""
    folded = _fold(text)
    if not folded or len(folded) > _MAX_TEXT or folded.isdigit():
        return None
    earliest = latest = at = None
    for pattern, start, end in _PARTS:
        if pattern.search(folded):
            earliest, latest = start, end
            folded = pattern.sub(" ", folded)
    if match := _AFTER.search(folded):
        earliest = _clock(match["hour"], match["minute"], match["mark"])
        folded = folded.replace(match[0], " ")
    if match := _BEFORE.search(folded):
        latest = _clock(match["hour"], match["minute"], match["mark"])
        folded = folded.replace(match[0], " ")
    if match := _AT.search(folded):
        if match["hour"] is not None:
            at = _clock(match["hour"], match["minute"], match["mark"])
        else:
            at = _clock(match["hour2"], match["minute2"], match["mark2"] or match["mark3"])
        folded = folded.replace(match[0], " ")
    day, not_before = _day(folded.strip(), now, timezone, languages)
    if day is None and not_before is None and (earliest, latest, at) == (None, None, None):
        return None
    return Wish(day, not_before, earliest, latest, at)


def _day(
    text: str, now: datetime, timezone: str, languages: Sequence[str]
) -> tuple[date | None, date | None]:
    if not re.search(r"[^\W\d_]", text):
        return None, None
    local_now = now.astimezone(ZoneInfo(timezone))
    data = read_date(text, local_now, timezone, dateparser_languages(languages))
    if data is None or data.date_obj is None:
        return None, None
    day = data.date_obj.astimezone(ZoneInfo(timezone)).date()
    if data.period in ("week", "month", "year"):
        return None, day - timedelta(days=day.weekday()) if data.period == "week" else day
    return day, None


def match_wish(
    wish: Wish, free: Iterable[Slot], zone: ZoneInfo, limit: int
) -> tuple[list[Slot], bool]:
    """The free slots that fit the wish (the nearest to its time first when it names one),
    or, when none fits, the nearest ones to it; and whether they fit."""
    candidates = list(islice(free, _MAX_CANDIDATES))
    fitting = [slot for slot in candidates if _fits(wish, slot.starts_at.astimezone(zone))]
    if fitting:
        if wish.at is not None:
            wanted = _minutes(wish.at)
            fitting.sort(key=lambda s: abs(_minutes(s.starts_at.astimezone(zone).time()) - wanted))
            return sorted(fitting[:limit]), True
        return fitting[:limit], True
    target = _target(wish, candidates, zone)
    if target is None:
        return candidates[:limit], False
    nearest = sorted(candidates, key=lambda slot: abs(slot.starts_at - target))[:limit]
    return sorted(nearest), False


def _minutes(moment: time) -> int:
    return moment.hour * 60 + moment.minute


def _fits(wish: Wish, local: datetime) -> bool:
    if wish.day is not None and local.date() != wish.day:
        return False
    if wish.not_before is not None and local.date() < wish.not_before:
        return False
    if wish.earliest is not None and local.time() < wish.earliest:
        return False
    if wish.latest is not None and local.time() >= wish.latest:
        return False
    return (
        wish.at is None
        or wish.day is None
        or abs(_minutes(local.time()) - _minutes(wish.at)) <= 120
    )


def _target(wish: Wish, candidates: Sequence[Slot], zone: ZoneInfo) -> datetime | None:
    if not candidates:
        return None
    day = wish.day or wish.not_before or candidates[0].starts_at.astimezone(zone).date()
    moment = wish.at or wish.earliest or wish.latest or time(12)
    return datetime.combine(day, moment, tzinfo=zone)
