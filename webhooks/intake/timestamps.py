"""When a prospect submitted, from the forms sources write it in."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_UNIX = re.compile(r"([0-9]{1,13})(?:\.[0-9]+)?")
# 10**11 seconds is the year 5138; a count that large is milliseconds (TikTok uses both units).
_MILLISECONDS_FROM = 10**11
_LONGEST_ISO = 64  # longer text is not a timestamp; skip parsing it


def parse_time(value: object) -> datetime | None:
    """A UTC datetime from unix seconds or milliseconds (as text: numbers arrive as their literal
    digits) or from ISO 8601, including Google's "YYYY-MM-DD HH:MM:SS+HH:MM"; None when the
    value is none of these, or names no time zone (a guessed zone would be hours wrong)."""
    if not isinstance(value, str):
        return None
    text = value.strip()
    unix = _UNIX.fullmatch(text)
    if unix:
        count = int(unix.group(1))
        if count >= _MILLISECONDS_FROM:
            return _EPOCH + timedelta(milliseconds=count)
        return _EPOCH + timedelta(seconds=count)
    if len(text) > _LONGEST_ISO:
        return None
    try:
        parsed = datetime.fromisoformat(text)
        if parsed.utcoffset() is None:
            return None
        return parsed.astimezone(UTC)
    except (ValueError, OverflowError):
        return None
