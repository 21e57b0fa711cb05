"""Rewrite clock times that dateparser misreads into the "HH:MM" form it reads reliably.

dateparser ignores a bare hour ("tomorrow at 10", "mañana a las 5", "um 15 Uhr") and misreads
"15h" or "5 de la tarde", so such times are spelled out as 24-hour "HH:MM" before parsing.
"""

from __future__ import annotations

import re

# Words that put a number of hours in the future ("in 3h"), so "3h" there is not 03:00.
_RELATIVE = frozenset({"in", "en", "dans", "em", "tra", "fra", "binnen", "within", "nach", "over"})
_PM = (
    r"de la tarde|de la noche|da tarde|da noite|du soir|de l'apr[eè]s-midi|del pomeriggio"
    r"|di sera|della sera|abends|nachmittags|'s avonds|'s middags"
    r"|in the afternoon|in the evening|at night"
)
_AM = (
    r"de la ma[nñ]ana|da manh[aã]|du matin|di mattina|del mattino|morgens|vormittags"
    r"|'s ochtends|in the morning"
)
_TIME = (
    r"(?P<hour>\d{1,2})(?:(?P<separator>[:.h])(?P<minute>\d{2}))?"
    r"(?P<mark>\s?(?:h|hrs?|uhr|uur|o'?clock)\b)?"
    rf"(?:\s*(?:(?P<pm>{_PM})|(?P<am>{_AM})))?"
    # Leave "5pm", "10 a.m." and longer numbers to dateparser.
    r"(?!\s*(?:[:.]?\d|[ap]\.?\s?m\b))"
)
# An hour after a preposition: "at 10", "a las 5", "à 15h", "um 15 Uhr", "alle 9", "om 8".
_AFTER_PREPOSITION = re.compile(
    r"\b(?P<prep>at|around|a\s+las|a\s+la|à|vers|um|gegen|alle(?:\s+ore)?|om|rond|às|as)\s+"
    + _TIME,
    re.IGNORECASE,
)
# An hour with its own marker: "15h", "15h30", "15 Uhr", "5 de la tarde".
_MARKED = re.compile(r"(?<![\d:.])\b" + _TIME, re.IGNORECASE)


def spell_out_clock_times(text: str) -> str:
    """`text` with hours that dateparser would miss rewritten as "HH:MM"."""
    text = _AFTER_PREPOSITION.sub(_rewrite, text)
    return _MARKED.sub(_rewrite_marked, text)


def _rewrite_marked(match: re.Match[str]) -> str:
    marked = match["mark"] or match["pm"] or match["am"] or match["separator"] in {"h", "H"}
    if not marked:
        return match[0]
    words = match.string[: match.start()].split()
    if words and words[-1].casefold() in _RELATIVE:
        return match[0]
    return _rewrite(match)


def _rewrite(match: re.Match[str]) -> str:
    hour, minute = int(match["hour"]), int(match["minute"] or 0)
    if match["pm"] and hour < 12:
        hour += 12
    if hour > 23 or minute > 59:
        return match[0]
    preposition = match.groupdict().get("prep")
    prefix = f"{preposition} " if preposition else ""
    return f"{prefix}{hour:02d}:{minute:02d}"
